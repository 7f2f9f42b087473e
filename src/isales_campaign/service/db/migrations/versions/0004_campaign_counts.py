"""Live campaigns per tenant and family, counted by triggers: the quota check and the list's
count then read one row, however many campaigns a tenant keeps.

The triggers keep the counts for every writer of `campaigns`, this service or an operator's
SQL. (A later migration that rebuilds `campaigns` on SQLite drops them with the old table
and must create them again.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# One live campaign more, or less, for a (vdn_id, family); {row} is NEW or OLD.
_SQLITE_MORE = (
    "INSERT INTO campaign_counts (vdn_id, family, live) "
    "SELECT NEW.vdn_id, NEW.family, 1 WHERE NEW.archived_at IS NULL "  # WHERE: see SQLite's upsert
    "ON CONFLICT (vdn_id, family) DO UPDATE SET live = live + 1;"
)
_SQLITE_LESS = (
    "UPDATE campaign_counts SET live = live - 1 "
    "WHERE OLD.archived_at IS NULL AND vdn_id = OLD.vdn_id AND family = OLD.family;"
)
_SQLITE_TRIGGERS = {
    "campaigns_count_insert": f"AFTER INSERT ON campaigns BEGIN {_SQLITE_MORE} END",
    "campaigns_count_delete": f"AFTER DELETE ON campaigns BEGIN {_SQLITE_LESS} END",
    "campaigns_count_update": (
        "AFTER UPDATE OF vdn_id, family, archived_at ON campaigns "
        f"BEGIN {_SQLITE_LESS} {_SQLITE_MORE} END"
    ),
}
_POSTGRESQL_FUNCTION = """
CREATE FUNCTION campaigns_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.archived_at IS NULL THEN
            UPDATE campaign_counts SET live = live - 1
            WHERE vdn_id = OLD.vdn_id AND family = OLD.family;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.archived_at IS NULL THEN
            INSERT INTO campaign_counts (vdn_id, family, live)
            VALUES (NEW.vdn_id, NEW.family, 1)
            ON CONFLICT (vdn_id, family) DO UPDATE SET live = campaign_counts.live + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""
_POSTGRESQL_TRIGGER = (
    "CREATE TRIGGER campaigns_count "
    "AFTER INSERT OR DELETE OR UPDATE OF vdn_id, family, archived_at ON campaigns "
    "FOR EACH ROW EXECUTE FUNCTION campaigns_count()"
)


def upgrade() -> None:
    op.create_table(
        "campaign_counts",
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), primary_key=True),
        sa.Column("family", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("live", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRESQL_FUNCTION)
        op.execute(_POSTGRESQL_TRIGGER)
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    # Counted after the triggers exist, in their transaction: a change that raced them has
    # committed before (creating a trigger waits for it) and is counted here, a later one
    # waits for this commit and goes through the triggers; none is missed or counted twice.
    op.execute(
        "INSERT INTO campaign_counts (vdn_id, family, live) "
        "SELECT vdn_id, family, count(*) FROM campaigns WHERE archived_at IS NULL "
        "GROUP BY vdn_id, family"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER campaigns_count ON campaigns")
        op.execute("DROP FUNCTION campaigns_count()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("campaign_counts")
