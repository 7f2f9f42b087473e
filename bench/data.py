"""Databases for the bench: a SQLite file (the default, durable settings) or a fresh
PostgreSQL database per run, migrated, seeded, and optionally preloaded with campaigns."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from bench import payloads
from isales_campaign.service.db.engine import create_database_engine, normalize_url
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.db.schema import campaigns, tenants
from isales_campaign.service.seed import apply_seed, parse_seed

SCALE_TENANTS = payloads.SCALE_TENANTS
#: One preloaded campaign in this many ends in the future (counts toward the quota).
ACTIVE_EVERY = 5
_CHUNK = 10_000
#: The configuration of every campaign the bench loads: the documented example's.
_CONFIG = payloads.example_request().campaign.SerializeToString(deterministic=True)


@contextmanager
def database(kind: str, work_dir: Path, admin_url: str | None) -> Iterator[str]:
    """The URL of a new, empty database; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{work_dir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    assert admin_url is not None
    admin = normalize_url(admin_url)
    name = f"isales_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def prepare(url: str, preload: int = 0, *, tenant_holds: int = 0) -> float:
    """Migrate, seed the bench tenants, insert `preload` campaigns, and `tenant_holds` running
    ones into VDN 1; returns the seconds taken."""
    started = time.perf_counter()
    engine = create_database_engine(url, pool_size=1)
    try:
        migrate_to(engine)
        apply_seed(engine, parse_seed(payloads.seed_document()))
        if preload:
            _preload(engine, preload)
        if tenant_holds:
            _fill_one_tenant(engine, tenant_holds)
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _campaign_row(
    vdn_id: int, name: str, begin_at: datetime, end_at: datetime, now: datetime
) -> dict[str, object]:
    """A running skill-queue campaign's row, with the documented example's configuration."""
    return {
        "vdn_id": vdn_id,
        "name": name,
        "family": 1,
        "device_type": 2,
        "status": 2,
        "begin_at": begin_at,
        "end_at": end_at,
        "config": _CONFIG,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _preload(engine: Engine, count: int) -> None:
    """`count` campaigns over SCALE_TENANTS tenants, with one real serialized config."""
    now = datetime.now(UTC).replace(tzinfo=None)
    extra = [
        {"vdn_id": vdn, "time_zone": "UTC"}
        for vdn in range(payloads.TENANTS + 1, SCALE_TENANTS + 1)
    ]
    with engine.begin() as connection:
        if extra:
            connection.execute(tenants.insert(), extra)
        for first in range(0, count, _CHUNK):
            rows = []
            for i in range(first, min(first + _CHUNK, count)):
                # Most have ended (history); in every tenant one in ACTIVE_EVERY still runs.
                end_at = now + timedelta(days=1 + i % 30)
                if (i // SCALE_TENANTS) % ACTIVE_EVERY:
                    end_at = now - timedelta(days=1 + i % 365)
                vdn_id, name = 1 + i % SCALE_TENANTS, f"preload-{i:08d}"
                rows.append(_campaign_row(vdn_id, name, end_at - timedelta(days=2), end_at, now))
            connection.execute(campaigns.insert(), rows)
    _settle(engine)


def fill_one_tenant(url: str, count: int) -> None:
    """`count` campaigns in VDN 1 of a migrated database, all running for another month."""
    engine = create_database_engine(url, pool_size=1)
    try:
        _fill_one_tenant(engine, count)
    finally:
        engine.dispose()


def _fill_one_tenant(engine: Engine, count: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    begin_at, end_at = now - timedelta(days=1), now + timedelta(days=30)
    with engine.begin() as connection:
        for first in range(0, count, _CHUNK):
            names = (f"held-{i}" for i in range(first, min(first + _CHUNK, count)))
            rows = [_campaign_row(1, name, begin_at, end_at, now) for name in names]
            connection.execute(campaigns.insert(), rows)
    _settle(engine)


def _settle(engine: Engine) -> None:
    """Measure a steady state on PostgreSQL: the bulk load's vacuum, statistics and checkpoint
    happen now, not by autovacuum in the middle of a measured run. (SQLite checkpoints its
    WAL at commit.)"""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE campaigns")
        connection.exec_driver_sql("VACUUM ANALYZE tenants")
        with contextlib.suppress(DBAPIError):  # not a superuser: a later checkpoint will do
            connection.exec_driver_sql("CHECKPOINT")
