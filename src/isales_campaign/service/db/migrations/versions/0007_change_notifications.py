"""Every recorded change tells the servers that listen (PostgreSQL's NOTIFY), whichever
process recorded it: watchers of other replicas hear of it within moments, and no server
polls while nothing changes. SQLite has no such thing: its servers watch the file's data
version (see `db.change_signals`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from isales_campaign.service.db.change_signals import CHANNEL

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Delivered when the transaction commits, never for one rolled back; the same tenant's
    # notices within one transaction are delivered once.
    op.execute(
        f"""
        CREATE FUNCTION notify_campaign_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.vdn_id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER campaign_changes_notify AFTER INSERT ON campaign_changes"
        " FOR EACH ROW EXECUTE FUNCTION notify_campaign_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER campaign_changes_notify ON campaign_changes")
    op.execute("DROP FUNCTION notify_campaign_change()")
