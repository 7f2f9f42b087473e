"""Tenants, their app keys and skill queues, and campaigns.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("vdn_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
    )
    op.create_table(
        "app_keys",
        sa.Column("access_key", sa.String(128), primary_key=True),
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), nullable=False),
        sa.Column("secret_key", sa.String(256), nullable=False),
    )
    op.create_table(
        "skill_queues",
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), primary_key=True),
        sa.Column("skill_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100), nullable=False),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("family", sa.SmallInteger, nullable=False),
        sa.Column("device_type", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("begin_at", sa.DateTime, nullable=False),
        sa.Column("end_at", sa.DateTime, nullable=False),
        sa.Column("config", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("vdn_id", "name", name="uq_campaigns_vdn_id_name"),
    )
    op.create_index(
        "ix_campaigns_vdn_id_family_end_at", "campaigns", ["vdn_id", "family", "end_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaigns_vdn_id_family_end_at", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_table("skill_queues")
    op.drop_table("app_keys")
    op.drop_table("tenants")
