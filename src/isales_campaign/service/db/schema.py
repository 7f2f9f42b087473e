"""The tables. Alembic migrations (in `migrations/`) create them; keep both in step."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    text,
)

metadata = MetaData()

#: SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("vdn_id", Integer, primary_key=True, autoincrement=False),
    Column("time_zone", String(64), nullable=False),
    # The largest sequence the pruning of the tenant's change history took away (0: none): the
    # next change continues after it when no record is left.
    Column("pruned_sequence", BigInteger, nullable=False, server_default=text("0")),
)

app_keys = Table(
    "app_keys",
    metadata,
    Column("access_key", String(128), primary_key=True),
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), nullable=False),
    # The verifier needs the secret itself (HMAC), so it cannot be hashed.
    Column("secret_key", String(256), nullable=False),
)

skill_queues = Table(
    "skill_queues",
    metadata,
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), primary_key=True),
    Column("skill_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), nullable=False),
    Column("name", String(32), nullable=False),
    # 1 skill queue (device types 2, 5, 6), 2 IVR (device types 1, 3).
    Column("family", SmallInteger, nullable=False),
    Column("device_type", SmallInteger, nullable=False),
    # 2 executing or 3 paused; "completed" (4) follows from end_at.
    Column("status", SmallInteger, nullable=False),
    # UTC, without zone.
    Column("begin_at", DateTime, nullable=False),
    Column("end_at", DateTime, nullable=False),
    # The whole Campaign message, serialized: the source of truth.
    Column("config", LargeBinary, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Copied from config for the list filter.
    Column("cc_id", Integer, nullable=True),
    # Set when the campaign moved to the history; it then counts against nothing.
    Column("archived_at", DateTime, nullable=True),
    # The quota counts (live campaigns per family, and those not ended) read this index only.
    Index(
        "ix_campaigns_live_vdn_id_family_end_at",
        "vdn_id",
        "family",
        "end_at",
        "archived_at",  # always NULL here, but it makes the index cover the counts
        sqlite_where=text("archived_at IS NULL"),
        postgresql_where=text("archived_at IS NULL"),
    ),
    Index("ix_campaigns_vdn_id_created_at_id", "vdn_id", "created_at", "id"),
    # Names are unique among live campaigns only: the history frees them.
    Index(
        "uq_campaigns_live_name",
        "vdn_id",
        "name",
        unique=True,
        sqlite_where=text("archived_at IS NULL"),
        postgresql_where=text("archived_at IS NULL"),
    ),
    # Deleted ids are never given again (SQLite reuses the largest otherwise).
    sqlite_autoincrement=True,
)

#: Each tenant's live campaigns per family, kept by triggers on `campaigns` (revision 0009):
#: `live` counts those not archived, `ended` those of them that ended by `ended_through`.
campaign_counts = Table(
    "campaign_counts",
    metadata,
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), primary_key=True),
    Column("family", SmallInteger, primary_key=True, autoincrement=False),
    Column("live", Integer, nullable=False),
    Column("ended", Integer, nullable=False),
    Column("ended_through", DateTime, nullable=False),
)

#: Keys of adds that callers may retry, for a day; kept when the campaign changes or goes.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), primary_key=True),
    Column("key", String(64), primary_key=True),
    # SHA-256 of the Campaign the add was asked for: a reused key must ask the same.
    Column("request_digest", LargeBinary(32), nullable=False),
    Column("campaign_id", Id, nullable=False),
    # The status the add answered.
    Column("status", SmallInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_idempotency_keys_vdn_id_created_at", "vdn_id", "created_at"),
)

#: Secrets every replica shares, made by the migrations (name "page_tokens": the key that
#: signs page tokens).
service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary(32), nullable=False),
)

#: One row per change made to a tenant's campaign, written in the change's transaction. No
#: foreign key to campaigns: a campaign's history outlives it.
campaign_changes = Table(
    "campaign_changes",
    metadata,
    Column("vdn_id", Integer, ForeignKey("tenants.vdn_id"), primary_key=True),
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("campaign_id", BigInteger, nullable=False),
    # ChangeKind's number.
    Column("kind", SmallInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("change_time", DateTime, nullable=False),
    # The Actor message, serialized.
    Column("actor", LargeBinary, nullable=False),
    # The Campaign message and the stored status after the change (as they were, for a
    # deletion or archiving).
    Column("config", LargeBinary, nullable=False),
    Column("status", SmallInteger, nullable=False),
    # For a modification: the changed fields' paths, comma-separated.
    Column("changed_fields", String, nullable=False, server_default=text("''")),
    Index("ix_campaign_changes_vdn_id_campaign_id_sequence", "vdn_id", "campaign_id", "sequence"),
    # A rowid table on SQLite (since revision 0008): a record is appended to the table's last
    # page, and only small entries go among its tenant's in the indexes.
)
