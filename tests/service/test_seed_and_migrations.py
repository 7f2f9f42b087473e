"""Operating the database: migrations and seed files, through the `isales` command."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from isales.campaign.v2.campaign_pb2 import Campaign
from sqlalchemy import func, inspect, select, text

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import is_current, migrate_to
from isales_campaign.service.db.schema import (
    app_keys,
    campaigns,
    idempotency_keys,
    metadata,
    skill_queues,
    tenants,
)
from isales_campaign.service.errors import SeedError
from isales_campaign.service.seed import parse_seed
from tests.processes import isales
from tests.service.helpers import SEED


def test_migrate_is_idempotent(database_url: str) -> None:
    assert isales("migrate", database_url=database_url).returncode == 0
    assert isales("migrate", database_url=database_url).returncode == 0
    engine = create_database_engine(database_url, pool_size=1)
    try:
        assert is_current(engine)
        migrate_to(engine)  # nothing left to do
        names = set(inspect(engine).get_table_names())
        assert {"tenants", "app_keys", "skill_queues", "campaigns", "alembic_version"} <= names
    finally:
        engine.dispose()


def test_seed_is_idempotent(database_url: str, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(SEED)
    for _ in range(2):
        result = isales("seed", str(seed_file), database_url=database_url)
        assert result.returncode == 0, result.stderr
    # A changed seed updates in place.
    seed_file.write_text(SEED.replace('name = "second"', 'name = "renamed"'))
    assert isales("seed", str(seed_file), database_url=database_url).returncode == 0
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(tenants.c.time_zone)) == "Europe/Berlin"
            assert connection.scalar(select(func.count()).select_from(app_keys)) == 1
            queues = dict(
                connection.execute(select(skill_queues.c.skill_id, skill_queues.c.name)).all()
            )
            assert queues == {2: "defaultAudioSkill", 3: "renamed"}
    finally:
        engine.dispose()
    assert "sk-7" not in result.stderr  # secrets stay out of logs


OTHER_TENANT = """
[[tenants]]
vdn_id = 8
[[tenants.app_keys]]
access_key = "ak-8"
secret_key = "sk-8"
[[tenants.skill_queues]]
id = 2
name = "defaultAudioSkill"
"""


def test_seed_is_authoritative_for_the_tenants_it_lists(database_url: str, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(SEED + OTHER_TENANT)
    assert isales("seed", str(seed_file), database_url=database_url).returncode == 0
    # VDN 7 rotates its key and drops queue 3; VDN 8 is not in the file this time.
    rotated = SEED.replace('"ak-7"', '"ak-7-new"').split("[[tenants.skill_queues]]\nid = 3")[0]
    seed_file.write_text(rotated)
    result = isales("seed", str(seed_file), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert '"revoked_keys":1' in result.stderr
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            keys = set(connection.execute(select(app_keys.c.access_key, app_keys.c.vdn_id)))
            queues = set(connection.execute(select(skill_queues.c.vdn_id, skill_queues.c.skill_id)))
    finally:
        engine.dispose()
    assert keys == {("ak-7-new", 7), ("ak-8", 8)}
    assert queues == {(7, 2), (8, 2)}


def test_a_key_moves_between_tenants_of_one_file(database_url: str, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text(SEED + OTHER_TENANT)
    assert isales("seed", str(seed_file), database_url=database_url).returncode == 0
    # ak-7 moves to VDN 8, which the file lists first.
    moved = OTHER_TENANT.replace('"ak-8"', '"ak-7"') + SEED.replace('"ak-7"', '"ak-7-new"')
    seed_file.write_text(moved)
    result = isales("seed", str(seed_file), database_url=database_url)
    assert result.returncode == 0, result.stderr
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            keys = set(connection.execute(select(app_keys.c.access_key, app_keys.c.vdn_id)))
    finally:
        engine.dispose()
    assert keys == {("ak-7", 8), ("ak-7-new", 7)}


def test_bad_seed_file_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.toml"
    seed_file.write_text('[[tenants]]\nvdn_id = 1\ntime_zone = "Mars/Olympus"\n')
    result = isales("seed", str(seed_file), database_url=sqlite_url)
    assert result.returncode == 2
    assert "Mars/Olympus" in result.stderr


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"tenants": [{"vdn_id": 0}]}, "vdn_id"),
        ({"tenants": [{"vdn_id": "1"}]}, "vdn_id"),
        ({"tenants": [{"vdn_id": 1, "skill_queues": [{"id": 1001, "name": "x"}]}]}, "id"),
        ({"tenants": [{"vdn_id": 1, "app_keys": [{"access_key": "a"}]}]}, "secret_key"),
        (
            {
                "tenants": [
                    {"vdn_id": 1, "app_keys": [{"access_key": "a", "secret_key": "s"}]},
                    {"vdn_id": 2, "app_keys": [{"access_key": "a", "secret_key": "t"}]},
                ]
            },
            "two VDNs",
        ),
        ({"tenants": {"vdn_id": 1}}, "array"),
        ({"tenants": [{"vdn_id": 3}, {"vdn_id": 3}]}, "VDN 3 is listed twice"),
    ],
)
def test_seed_validation(document: dict[str, object], message: str) -> None:
    with pytest.raises(SeedError, match=message):
        parse_seed(document)


def test_bad_configuration_is_reported() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "isales_campaign.cli", "migrate"],
        env={"ISALES_MAX_ACTIVE_TASKS": "many", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "ISALES_MAX_ACTIVE_TASKS" in result.stderr


def test_upgrade_keeps_existing_campaigns_and_their_idempotency_keys(database_url: str) -> None:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine, "0002")
        with engine.begin() as connection:
            connection.execute(tenants.insert().values(vdn_id=1, time_zone="UTC"))
            connection.execute(
                text(
                    "INSERT INTO campaigns (vdn_id, name, family, device_type, status, begin_at,"
                    " end_at, config, version, created_at, updated_at, idempotency_key) VALUES"
                    " (1, 'old', 1, 2, 3, '2026-01-01 00:00:00', '2026-01-02 00:00:00', :config,"
                    " 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'key-1')"
                ),
                {"config": b"cfg"},
            )
            centered = Campaign(name="centered", cc_id=7).SerializeToString()
            connection.execute(
                text(
                    "INSERT INTO campaigns (vdn_id, name, family, device_type, status, begin_at,"
                    " end_at, config, version, created_at, updated_at) VALUES"
                    " (1, 'centered', 1, 2, 3, '2026-01-01 00:00:00', '2026-01-02 00:00:00',"
                    " :config, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"config": centered},
            )
        migrate_to(engine)
        assert is_current(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    campaigns.c.id, campaigns.c.name, campaigns.c.archived_at, campaigns.c.cc_id
                ).order_by(campaigns.c.id)
            ).all()
            keys = connection.execute(select(idempotency_keys)).all()
        # Kept, live; the center copied out of the configuration for the list filter.
        assert [tuple(r)[1:] for r in rows] == [("old", None, None), ("centered", None, 7)]
        [key] = keys
        assert (key.vdn_id, key.key, key.campaign_id, key.status) == (1, "key-1", rows[0].id, 3)
        assert bytes(key.request_digest) == hashlib.sha256(b"cfg").digest()
    finally:
        engine.dispose()


def test_the_migrations_create_the_schema_the_code_declares(database_url: str) -> None:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        migrate_to(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []
