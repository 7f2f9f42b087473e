"""A connection kept between the turns of SQLite's reads or writes (`db.kept_connection`):
the same one each turn, with its page cache, until a failure drops it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.kept_connection import KeptConnection


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_database_engine(sqlite_url, pool_size=2)
    yield engine
    engine.dispose()


def _cache_size(connection: object) -> int:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    try:
        cursor.execute("PRAGMA cache_size")
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


def test_each_turn_gets_the_connection_the_last_one_kept(engine: Engine) -> None:
    kept = KeptConnection(engine, cache_kib=4096)
    first = kept.take()
    dbapi = first.dbapi_connection
    assert _cache_size(first) == -4096
    kept.keep(first)
    second = kept.take()
    assert second.dbapi_connection is dbapi
    kept.keep(second)
    kept.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_dropped_connection_is_closed_and_the_next_turn_gets_a_new_one(engine: Engine) -> None:
    kept = KeptConnection(engine)
    first = kept.take()
    dbapi = first.dbapi_connection
    first.cursor().execute("BEGIN IMMEDIATE")  # what a failed commit may leave behind
    kept.drop(first)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        dbapi.cursor()  # type: ignore[union-attr]
    second = kept.take()
    assert second.dbapi_connection is not dbapi
    second.cursor().execute("BEGIN IMMEDIATE")  # the dropped transaction holds no lock
    second.rollback()
    kept.keep(second)
    kept.close()


def test_a_broken_connection_is_not_kept(engine: Engine) -> None:
    kept = KeptConnection(engine)
    first = kept.take()
    dbapi = first.dbapi_connection
    first.invalidate()  # as a rollback that failed leaves it
    kept.keep(first)
    assert kept.take().dbapi_connection is not dbapi
