"""On SQLite, the change history becomes a rowid table: a record (its configuration, about a
kilobyte) is appended to the table's last page, and only small entries go among the
tenant's in the two indexes. Kept in the primary key's b-tree (WITHOUT ROWID, revision 0006),
a record landed on a page of its tenant's, four to a page, and a change's record cost three
times the CPU (WITHOUT ROWID is for rows under a twentieth of a page). PostgreSQL keeps its
rows in a heap already: nothing changes there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEX = "ix_campaign_changes_vdn_id_campaign_id_sequence"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_rowid=False)


def _rebuild(*, with_rowid: bool) -> None:
    """The table made anew in the given layout, its records copied over, in sequence order."""
    op.drop_index(_INDEX, "campaign_changes")
    op.rename_table("campaign_changes", "_campaign_changes_before")
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
        sqlite_with_rowid=with_rowid,
    )
    op.execute(
        "INSERT INTO campaign_changes (vdn_id, sequence, campaign_id, kind, version,"
        " change_time, actor, config, status, changed_fields)"
        " SELECT vdn_id, sequence, campaign_id, kind, version, change_time, actor, config,"
        " status, changed_fields FROM _campaign_changes_before ORDER BY vdn_id, sequence"
    )
    op.drop_table("_campaign_changes_before")
    op.create_index(_INDEX, "campaign_changes", ["vdn_id", "campaign_id", "sequence"])
