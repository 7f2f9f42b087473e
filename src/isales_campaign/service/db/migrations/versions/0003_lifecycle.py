"""The campaign lifecycle: history (archived campaigns), names unique among live campaigns,
idempotency keys in their own table, a list index, ids never reused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
from typing import Literal

import sqlalchemy as sa
from alembic import op
from google.protobuf.message import DecodeError
from isales.campaign.v2.campaign_pb2 import Campaign

from isales_campaign.service.errors import MigrationRefused

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LIVE = sa.text("archived_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("vdn_id", sa.Integer, sa.ForeignKey("tenants.vdn_id"), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("request_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "ix_idempotency_keys_vdn_id_created_at", "idempotency_keys", ["vdn_id", "created_at"]
    )
    connection = op.get_bind()
    keyed = connection.execute(
        sa.text(
            "SELECT vdn_id, idempotency_key, config, id, status, created_at FROM campaigns "
            "WHERE idempotency_key IS NOT NULL"
        )
    ).all()
    if keyed:
        connection.execute(
            sa.text(
                "INSERT INTO idempotency_keys "
                "(vdn_id, key, request_digest, campaign_id, status, created_at) "
                "VALUES (:vdn_id, :key, :digest, :id, :status, :created_at)"
            ),
            [
                {
                    "vdn_id": row.vdn_id,
                    "key": row.idempotency_key,
                    "digest": hashlib.sha256(bytes(row.config)).digest(),
                    "id": row.id,
                    "status": row.status,
                    "created_at": row.created_at,
                }
                for row in keyed
            ],
        )
    with op.batch_alter_table(
        "campaigns", recreate=_recreate(), table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint("uq_campaigns_vdn_id_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
        batch.drop_constraint("uq_campaigns_vdn_id_name", type_="unique")
        batch.add_column(sa.Column("cc_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime, nullable=True))
    _copy_cc_ids(connection)
    op.create_index(
        "uq_campaigns_live_name",
        "campaigns",
        ["vdn_id", "name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index(
        "ix_campaigns_vdn_id_created_at_id", "campaigns", ["vdn_id", "created_at", "id"]
    )
    # The quota counts skip the history: an index of live campaigns answers them alone.
    op.drop_index("ix_campaigns_vdn_id_family_end_at", table_name="campaigns")
    op.create_index(
        "ix_campaigns_live_vdn_id_family_end_at",
        "campaigns",
        ["vdn_id", "family", "end_at", "archived_at"],  # archived_at: covers the counts
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def _recreate() -> Literal["always", "never"]:
    """SQLite drops a constraint only by rebuilding the table, which is also how it gets
    AUTOINCREMENT; PostgreSQL alters in place, which keeps the id sequence (a rebuilt table
    would get a new one, starting at 1)."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "never"


def _copy_cc_ids(connection: sa.Connection) -> None:
    """The list filters on `cc_id`: copy it out of the stored configurations (streamed, so a
    large table is not held in memory; only the campaigns with a center are)."""
    found = []
    rows = connection.execute(
        sa.text("SELECT id, config FROM campaigns").execution_options(yield_per=1000)
    )
    try:
        for row in rows:
            campaign = Campaign()
            try:
                campaign.ParseFromString(bytes(row.config))
            except DecodeError:  # not a configuration this version wrote: nothing to copy
                continue
            if campaign.HasField("cc_id"):
                found.append({"id": row.id, "cc_id": campaign.cc_id})
    finally:
        rows.close()  # a server-side cursor on PostgreSQL: the DDL below needs it gone
    if found:
        connection.execute(sa.text("UPDATE campaigns SET cc_id = :cc_id WHERE id = :id"), found)


def downgrade() -> None:
    connection = op.get_bind()
    _refuse_to_lose_data(connection)
    op.drop_index("ix_campaigns_live_vdn_id_family_end_at", table_name="campaigns")
    op.create_index(
        "ix_campaigns_vdn_id_family_end_at", "campaigns", ["vdn_id", "family", "end_at"]
    )
    op.drop_index("ix_campaigns_vdn_id_created_at_id", table_name="campaigns")
    op.drop_index("uq_campaigns_live_name", table_name="campaigns")
    with op.batch_alter_table("campaigns", recreate=_recreate()) as batch:
        batch.drop_column("archived_at")
        batch.drop_column("cc_id")
        batch.create_unique_constraint("uq_campaigns_vdn_id_name", ["vdn_id", "name"])
        batch.add_column(sa.Column("idempotency_key", sa.String(64), nullable=True))
        batch.create_unique_constraint(
            "uq_campaigns_vdn_id_idempotency_key", ["vdn_id", "idempotency_key"]
        )
    # Each key goes back onto the campaign its add made (one add, one key, one campaign).
    connection.execute(
        sa.text(
            "UPDATE campaigns SET idempotency_key = (SELECT k.key FROM idempotency_keys k"
            " WHERE k.vdn_id = campaigns.vdn_id AND k.campaign_id = campaigns.id)"
        )
    )
    op.drop_table("idempotency_keys")


def _refuse_to_lose_data(connection: sa.Connection) -> None:
    """0002 has no place for the history, nor for the key of a campaign that is gone."""
    archived = connection.scalar(
        sa.text("SELECT count(*) FROM campaigns WHERE archived_at IS NOT NULL")
    )
    orphaned = connection.scalar(
        sa.text(
            "SELECT count(*) FROM idempotency_keys k WHERE NOT EXISTS (SELECT 1 FROM campaigns c"
            " WHERE c.vdn_id = k.vdn_id AND c.id = k.campaign_id)"
        )
    )
    lost = []
    if archived:
        lost.append(f"{archived} archived campaign(s) (the history)")
    if orphaned:
        lost.append(
            f"{orphaned} idempotency key(s) of deleted campaigns (kept 24 hours after their add)"
        )
    if lost:
        raise MigrationRefused(
            f"revision 0002 has no place for {' and '.join(lost)}; they would be lost"
        )
