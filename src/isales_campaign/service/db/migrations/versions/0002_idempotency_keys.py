"""Idempotency keys of adds, unique per VDN.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from isales_campaign.service.errors import MigrationRefused

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(64), nullable=True))
        batch.create_unique_constraint(
            "uq_campaigns_vdn_id_idempotency_key", ["vdn_id", "idempotency_key"]
        )


def downgrade() -> None:
    keyed = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM campaigns WHERE idempotency_key IS NOT NULL")
    )
    if keyed:
        raise MigrationRefused(
            f"revision 0001 has no place for the idempotency keys of {keyed} campaign(s);"
            " they would be lost"
        )
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("uq_campaigns_vdn_id_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
