"""Secrets of the service that every replica shares: the key that signs page tokens.

Made here, at random, so that no setting is needed and every replica of a deployment reads the
same key from the database it shares.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.LargeBinary(32), nullable=False),
    )
    op.bulk_insert(table, [{"name": "page_tokens", "secret": secrets.token_bytes(32)}])


def downgrade() -> None:
    """Page tokens given until then are no longer accepted: their lists start again."""
    op.drop_table("service_secrets")
