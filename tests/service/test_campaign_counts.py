"""The live campaigns per tenant and family that the quota check and the list's count read
(`campaign_counts`): counted when the migration creates them, then kept by the database for
every writer of `campaigns`, this service or plain SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import upgrade
from isales_campaign.service.db.schema import campaign_counts, campaigns, tenants


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def _insert(connection: Connection, vdn_id: int, name: str, family: int, archived: bool) -> int:
    return int(
        connection.execute(
            text(
                "INSERT INTO campaigns (vdn_id, name, family, device_type, status, begin_at,"
                " end_at, config, version, created_at, updated_at, archived_at) VALUES"
                " (:vdn_id, :name, :family, 2, 3, '2026-01-01 00:00:00', '2026-01-02 00:00:00',"
                " :config, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', :archived)"
                " RETURNING id"
            ),
            {
                "vdn_id": vdn_id,
                "name": name,
                "family": family,
                "config": b"cfg",
                "archived": "2026-01-03 00:00:00" if archived else None,
            },
        ).scalar_one()
    )


def _kept(connection: Connection) -> dict[tuple[int, int], int]:
    """The counts as kept, without the pairs that have no live campaign left."""
    rows = connection.execute(select(campaign_counts)).all()
    return {(row.vdn_id, row.family): row.live for row in rows if row.live}


def _counted(connection: Connection) -> dict[tuple[int, int], int]:
    """The counts as the campaigns are."""
    rows = connection.execute(
        select(campaigns.c.vdn_id, campaigns.c.family, func.count())
        .where(campaigns.c.archived_at.is_(None))
        .group_by(campaigns.c.vdn_id, campaigns.c.family)
    ).all()
    return {(vdn_id, family): count for vdn_id, family, count in rows}


def test_the_migration_counts_the_campaigns_already_stored(engine: Engine) -> None:
    upgrade(engine, "0003")
    with engine.begin() as connection:
        connection.execute(tenants.insert(), [{"vdn_id": 1, "time_zone": "UTC"}])
        connection.execute(tenants.insert(), [{"vdn_id": 2, "time_zone": "UTC"}])
        for index in range(3):
            _insert(connection, 1, f"skill-{index}", 1, archived=False)
        _insert(connection, 1, "ivr", 2, archived=False)
        _insert(connection, 1, "history", 1, archived=True)
        _insert(connection, 2, "other", 1, archived=False)
    upgrade(engine)
    with engine.connect() as connection:
        assert _kept(connection) == {(1, 1): 3, (1, 2): 1, (2, 1): 1}


def test_every_write_of_campaigns_keeps_the_counts(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(tenants.insert(), [{"vdn_id": 1, "time_zone": "UTC"}])
        connection.execute(tenants.insert(), [{"vdn_id": 2, "time_zone": "UTC"}])
    live = [(1, "a", 1), (1, "b", 1), (1, "c", 2), (2, "d", 1)]
    ids = {}
    with engine.begin() as connection:
        for vdn_id, name, family in live:
            ids[name] = _insert(connection, vdn_id, name, family, archived=False)
        ids["old"] = _insert(connection, 1, "old", 1, archived=True)
        assert _kept(connection) == {(1, 1): 2, (1, 2): 1, (2, 1): 1}
    archive = "UPDATE campaigns SET archived_at = :at WHERE id = :id"
    changes: list[tuple[str, dict[str, object]]] = [
        # archived, archived again (no change), brought back
        (archive, {"at": "2026-02-01 00:00:00", "id": ids["a"]}),
        (archive, {"at": "2026-02-02 00:00:00", "id": ids["a"]}),
        (archive, {"at": None, "id": ids["old"]}),
        # moved to another family and to another tenant
        ("UPDATE campaigns SET family = 2 WHERE id = :id", {"id": ids["b"]}),
        ("UPDATE campaigns SET vdn_id = 2 WHERE id = :id", {"id": ids["c"]}),
        # a change of something else, then deletes of a live and an archived campaign
        ("UPDATE campaigns SET version = version + 1 WHERE vdn_id = 1", {}),
        ("DELETE FROM campaigns WHERE id = :id", {"id": ids["d"]}),
        ("DELETE FROM campaigns WHERE id = :id", {"id": ids["a"]}),
    ]
    for change, values in changes:
        with engine.begin() as connection:
            connection.execute(text(change), values)
            assert _kept(connection) == _counted(connection), (change, values)
    with engine.connect() as connection:
        assert _kept(connection) == {(1, 1): 1, (1, 2): 1, (2, 2): 1}


def test_a_write_rolled_back_leaves_the_counts(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(tenants.insert(), [{"vdn_id": 1, "time_zone": "UTC"}])
        _insert(connection, 1, "kept", 1, archived=False)
    with engine.connect() as connection:
        _insert(connection, 1, "gone", 1, archived=False)
        assert _kept(connection) == {(1, 1): 2}
        connection.rollback()
        assert _kept(connection) == {(1, 1): 1}
