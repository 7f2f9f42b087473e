"""The change history: a record of every change to a campaign, numbered per tenant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from isales_campaign.service.errors import MigrationRefused

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place on both databases: SQLite adds a column with a constant default without
    # rebuilding the table (a rebuild of tenants would break the keys that refer to it).
    op.add_column(
        "tenants",
        sa.Column("pruned_sequence", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "campaign_changes",
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("campaign_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("change_time", sa.DateTime, nullable=False),
        sa.Column("actor", sa.LargeBinary, nullable=False),
        sa.Column("config", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("changed_fields", sa.String, nullable=False, server_default=sa.text("''")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_campaign_changes_vdn_id_campaign_id_sequence",
        "campaign_changes",
        ["vdn_id", "campaign_id", "sequence"],
    )


def downgrade() -> None:
    """Refused while any change is recorded: the older schema has no place for the history."""
    recorded = op.get_bind().scalar(sa.text("SELECT count(*) FROM campaign_changes"))
    if recorded:
        raise MigrationRefused(
            f"revision 0005 has no place for the change history ({recorded} change(s))"
        )
    op.drop_index("ix_campaign_changes_vdn_id_campaign_id_sequence", "campaign_changes")
    op.drop_table("campaign_changes")
    op.execute("ALTER TABLE tenants DROP COLUMN pruned_sequence")  # SQLite 3.35+: in place
