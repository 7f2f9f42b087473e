"""Repair of the campaigns' id sequence on PostgreSQL, where 0003 as first released rebuilt
the table: its new sequence kept Alembic's temporary name and started again at 1, so adds
collided with the ids already given.

Renames the sequence back to `campaigns_id_seq` and moves it past every id it may have given:
the campaigns kept, the campaigns idempotency keys answer with, and what it gave since. A
database that 0003 altered in place (every new one) already has both: nothing changes. SQLite
needs no repair (its rebuilt table continues after the largest id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEQUENCE = "campaigns_id_seq"


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    found = connection.scalar(sa.text("SELECT pg_get_serial_sequence('campaigns', 'id')"))
    # `found` is schema-qualified and quoted where needed: `public._alembic_tmp_campaigns_id_seq`.
    name = connection.scalar(
        sa.text("SELECT relname FROM pg_class WHERE oid = CAST(:found AS regclass)"),
        {"found": found},
    )
    if name != SEQUENCE:
        op.execute(f'ALTER SEQUENCE {found} RENAME TO "{SEQUENCE}"')
    given = [
        connection.scalar(sa.text("SELECT max(id) FROM campaigns")),
        connection.scalar(sa.text("SELECT max(campaign_id) FROM idempotency_keys")),
        connection.scalar(
            sa.select(sa.column("last_value"))
            .select_from(sa.table(SEQUENCE))
            .where(sa.column("is_called"))
        ),
    ]
    largest = max((value for value in given if value is not None), default=None)
    if largest is not None:  # the next id is largest + 1
        connection.execute(
            sa.text("SELECT setval(CAST(:sequence AS regclass), :largest)"),
            {"sequence": SEQUENCE, "largest": largest},
        )


def downgrade() -> None:
    """Nothing to undo: 0003 works with the repaired sequence as with a new one."""
