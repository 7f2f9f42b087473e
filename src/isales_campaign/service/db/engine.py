"""Engines for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from isales_campaign.config import MAX_PORT, ConfigError
from isales_campaign.service.db.watchdog import Watchdog
from isales_campaign.service.errors import DatabaseUnreachable

#: Execution option of connections that only read (see `read_only`).
READ_ONLY = "isales_read_only"


def read_only(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite it does not take the write lock."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def ping(engine: Engine) -> None:
    """Whether the database answers: raises when it does not."""
    with read_only(engine) as connection:
        connection.exec_driver_sql("SELECT 1")


#: The databases the service runs on (SQLAlchemy's backend names), each with its one driver.
DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
#: What ISALES_DATABASE_URL looks like, for the refusals.
_URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def normalize_url(url: str) -> URL:
    """The URL of a database the service runs on (`postgresql://` and `postgres://` select
    the psycopg 3 driver); ConfigError, naming ISALES_DATABASE_URL, for any other."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
        port = parsed.port
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"ISALES_DATABASE_URL is not a database URL ({_URL_FORMS}): {_masked_text(url)!r}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in DRIVERS:
        raise ConfigError(
            f"ISALES_DATABASE_URL names a database the service does not run on ({backend}): "
            f"use SQLite or PostgreSQL, {_URL_FORMS}"
        )
    if driver not in ("", DRIVERS[backend]):
        raise ConfigError(
            f"ISALES_DATABASE_URL names the driver {driver}, which the service does not use: "
            f"write {backend}:// ({DRIVERS[backend]} is used)"
        )
    if port is not None and not 1 <= port <= MAX_PORT:
        raise ConfigError(f"ISALES_DATABASE_URL has a port out of range: {port}")
    return parsed.set(drivername=f"{backend}+{DRIVERS[backend]}")


def shown(url: URL) -> str:
    """`url` as an operator wrote it, its password masked: for messages and logs."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    """Connect once; DatabaseUnreachable, saying why in one line, when the database cannot
    be opened (no server at the address, no such database, a refused login)."""
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        cause = " ".join(str(error.orig).split()) or type(error.orig).__name__
        password = str(engine.url.password or "")
        if len(password) >= 4:  # drivers do not repeat it; should one, it is masked too
            cause = cause.replace(password, "***")
        raise DatabaseUnreachable(
            f"cannot open the database of ISALES_DATABASE_URL ({shown(engine.url)}): {cause}"
        ) from None


def _masked_text(url: str) -> str:
    """A URL that does not parse, with what looks like a password masked."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


#: The waits of an engine made without a timeout (migrations, tools), where a driver or the
#: pool needs a number.
DEFAULT_WAIT_SECONDS = 30.0


def create_database_engine(
    url: str, *, pool_size: int = 16, timeout: float | None = None
) -> Engine:
    """An engine whose every wait is bounded by `timeout` seconds when it is given: getting a
    connection from the pool, connecting, a statement, a lock (None: as the drivers do, for
    migrations and tools)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool_size, timeout)
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        # SQLAlchemy's ping on checkout would run before the watchdog watches: unbounded.
        pool_pre_ping=timeout is None,
        pool_recycle=1800,
        pool_timeout=DEFAULT_WAIT_SECONDS if timeout is None else timeout,
        connect_args={} if timeout is None else _postgresql_bounds(timeout),
    )
    if timeout is not None and parsed.get_driver_name() == "psycopg":
        # The server's own bounds come first; the watchdog is for a server that keeps none.
        Watchdog(timeout + 1).attach(engine)
    return engine


def _postgresql_bounds(timeout: float) -> dict[str, Any]:
    """libpq settings that make a connection give up within `timeout`: on connecting, on a
    statement or a lock the server waits for, and on a peer that vanished (TCP keepalives,
    unacknowledged data)."""
    millis = max(1, round(timeout * 1000))
    return {
        "connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
        "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(timeout)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": millis,
    }


def _sqlite_engine(url: URL, pool_size: int, timeout: float | None) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnreachable(
                f"cannot open the database of ISALES_DATABASE_URL ({shown(url)}): cannot "
                f"create its folder {str(folder)!r}: {error.strerror or error}"
            ) from None
    busy_seconds = DEFAULT_WAIT_SECONDS if timeout is None else timeout
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=busy_seconds,
        connect_args={"check_same_thread": False, "timeout": busy_seconds},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it is acknowledged, even in WAL mode.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock at the start: the quota check and the
        # insert then run serialized across every process sharing the file.
        # Readers do not wait for it (WAL lets them read alongside a writer).
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
