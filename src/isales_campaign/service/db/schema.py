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
    UniqueConstraint,
)

metadata = MetaData()

#: SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("vdn_id", Integer, primary_key=True, autoincrement=False),
    Column("time_zone", String(64), nullable=False),
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
    # Set by callers that retry; NULLs never collide.
    Column("idempotency_key", String(64), nullable=True),
    UniqueConstraint("vdn_id", "name", name="uq_campaigns_vdn_id_name"),
    UniqueConstraint("vdn_id", "idempotency_key", name="uq_campaigns_vdn_id_idempotency_key"),
    Index("ix_campaigns_vdn_id_family_end_at", "vdn_id", "family", "end_at"),
)
