"""Each tenant's live campaigns per family are counted in a row of their own, kept by triggers
on `campaigns`: an add reads its quota's counts there instead of counting the family's
campaigns, so its cost no longer grows with the tenant's size or its limits (with the limits
raised, an add to a tenant holding 10,000 campaigns counted them all).

`live` counts the family's campaigns not archived; `ended` those of them that had ended by
`ended_through` (their `end_at` is not after it). Campaigns end with time, not with a write,
so an add counts those that ended since `ended_through` (an index range of the ones that
ended in between) and moves it on (see `db.store`). The triggers keep both counts exact for
every write of every process, this release's or an older one's still running beside it; a
campaign's tenant and family never change (a modification keeps the device type).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# On SQLite, times are text in SQLAlchemy's format, which the triggers compare.
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER campaign_counts_insert AFTER INSERT ON campaigns
    WHEN NEW.archived_at IS NULL
    BEGIN
        INSERT INTO campaign_counts (vdn_id, family, live, ended, ended_through)
        VALUES (NEW.vdn_id, NEW.family, 1, 0, '1970-01-01 00:00:00.000000')
        ON CONFLICT (vdn_id, family) DO UPDATE
        SET live = live + 1, ended = ended + (NEW.end_at <= ended_through);
    END
    """,
    """
    CREATE TRIGGER campaign_counts_delete AFTER DELETE ON campaigns
    WHEN OLD.archived_at IS NULL
    BEGIN
        UPDATE campaign_counts
        SET live = live - 1, ended = ended - (OLD.end_at <= ended_through)
        WHERE vdn_id = OLD.vdn_id AND family = OLD.family;
    END
    """,
    """
    CREATE TRIGGER campaign_counts_update AFTER UPDATE OF end_at, archived_at ON campaigns
    WHEN OLD.end_at IS NOT NEW.end_at OR OLD.archived_at IS NOT NEW.archived_at
    BEGIN
        UPDATE campaign_counts
        SET live = live - 1, ended = ended - (OLD.end_at <= ended_through)
        WHERE OLD.archived_at IS NULL AND vdn_id = OLD.vdn_id AND family = OLD.family;
        INSERT INTO campaign_counts (vdn_id, family, live, ended, ended_through)
        SELECT NEW.vdn_id, NEW.family, 1, 0, '1970-01-01 00:00:00.000000'
        WHERE NEW.archived_at IS NULL
        ON CONFLICT (vdn_id, family) DO UPDATE
        SET live = live + 1, ended = ended + (NEW.end_at <= ended_through);
    END
    """,
)

_POSTGRESQL_FUNCTION = """
    CREATE FUNCTION count_campaigns() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.archived_at IS NULL THEN
            UPDATE campaign_counts
            SET live = live - 1, ended = ended - (OLD.end_at <= ended_through)::integer
            WHERE vdn_id = OLD.vdn_id AND family = OLD.family;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.archived_at IS NULL THEN
            INSERT INTO campaign_counts AS counts (vdn_id, family, live, ended, ended_through)
            VALUES (NEW.vdn_id, NEW.family, 1, 0, '1970-01-01')
            ON CONFLICT (vdn_id, family) DO UPDATE
            SET live = counts.live + 1,
                ended = counts.ended + (NEW.end_at <= counts.ended_through)::integer;
        END IF;
        RETURN NULL;
    END
    $$
"""
_POSTGRESQL_TRIGGERS = (
    "CREATE TRIGGER campaign_counts_insert AFTER INSERT ON campaigns FOR EACH ROW"
    " WHEN (NEW.archived_at IS NULL) EXECUTE FUNCTION count_campaigns()",
    "CREATE TRIGGER campaign_counts_delete AFTER DELETE ON campaigns FOR EACH ROW"
    " WHEN (OLD.archived_at IS NULL) EXECUTE FUNCTION count_campaigns()",
    "CREATE TRIGGER campaign_counts_update AFTER UPDATE OF end_at, archived_at ON campaigns"
    " FOR EACH ROW WHEN (OLD.end_at IS DISTINCT FROM NEW.end_at"
    " OR OLD.archived_at IS DISTINCT FROM NEW.archived_at) EXECUTE FUNCTION count_campaigns()",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No add, change or deletion commits between the count below and the triggers.
        op.execute("LOCK TABLE campaigns IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "campaign_counts",
        sa.Column("vdn_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.SmallInteger(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=False),
        sa.Column("ended_through", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vdn_id"], ["tenants.vdn_id"]),
        sa.PrimaryKeyConstraint("vdn_id", "family"),
    )
    # Counted as ended by now, so that reads and adds count only what ends from now on (a
    # count made by a trigger starts before any campaign ends: 1970, none ended by then).
    now = datetime.now(UTC).replace(tzinfo=None)
    op.execute(
        sa.text(
            "INSERT INTO campaign_counts (vdn_id, family, live, ended, ended_through)"
            " SELECT vdn_id, family, count(*),"
            " count(CASE WHEN end_at <= :now THEN 1 END), :now FROM campaigns"
            " WHERE archived_at IS NULL GROUP BY vdn_id, family"
        ).bindparams(sa.bindparam("now", now, type_=sa.DateTime()))
    )
    if postgresql:
        op.execute(_POSTGRESQL_FUNCTION)
    for trigger in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("campaign_counts_insert", "campaign_counts_delete", "campaign_counts_update"):
        op.execute(f"DROP TRIGGER {name} ON campaigns" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION count_campaigns()")
    op.drop_table("campaign_counts")
