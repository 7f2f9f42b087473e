"""Shared fixtures: databases (SQLite and PostgreSQL) and real gRPC servers on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2 import campaign_service_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from isales_campaign.config import Settings
from isales_campaign.service.campaigns import Clock, system_clock
from isales_campaign.service.db.engine import create_database_engine, normalize_url
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.seed import apply_seed, parse_seed
from isales_campaign.service.server import RunningServer, start_server
from tests.processes import killing_leftovers

#: Set by .ci/run: a PostgreSQL server whose user may create databases.
POSTGRES_URL = os.environ.get("ISALES_TEST_DATABASE_URL", "")
#: With this set, a missing PostgreSQL fails the run instead of skipping its tests.
REQUIRE_POSTGRES = os.environ.get("ISALES_REQUIRE_POSTGRES") == "1"

DEFAULT_SEED = {
    "tenants": [
        {
            "vdn_id": 1,
            "time_zone": "UTC",
            "app_keys": [{"access_key": "ak-vdn-1", "secret_key": "sk-vdn-1"}],
            "skill_queues": [{"id": 2, "name": "defaultAudioSkill"}],
        },
        {
            "vdn_id": 2,
            "time_zone": "Asia/Shanghai",
            "app_keys": [{"access_key": "ak-vdn-2", "secret_key": "sk-vdn-2"}],
            "skill_queues": [{"id": 2, "name": "defaultAudioSkill"}],
        },
    ]
}


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """No test leaves a process running, pass or fail."""
    with killing_leftovers():
        yield


@pytest.fixture(scope="session")
def postgres_admin_url_if_any() -> str:
    """The PostgreSQL admin URL, or "" where there is none and none is required."""
    if not POSTGRES_URL and REQUIRE_POSTGRES:
        pytest.fail("ISALES_REQUIRE_POSTGRES=1 but ISALES_TEST_DATABASE_URL is not set")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_admin_url_if_any: str) -> str:
    if not postgres_admin_url_if_any:
        pytest.skip("ISALES_TEST_DATABASE_URL is not set")
    return postgres_admin_url_if_any


def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"isales_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {admin_url} is not usable: {error}")
    try:
        yield normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that uses this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'isales.db'}"
        return
    yield from fresh_postgres_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'isales.db'}"


def seed_database(url: str, document: dict[str, object] | None = None) -> None:
    engine = create_database_engine(url, pool_size=1)
    try:
        migrate_to(engine)
        apply_seed(engine, parse_seed(document or DEFAULT_SEED))
    finally:
        engine.dispose()


class FixedClock:
    """A clock for the service that tests set by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        #: How often the service asked for the time.
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return self.now


ServerFactory = Callable[..., RunningServer]


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Start in-process gRPC servers on free loopback ports; stop them afterwards."""
    started: list[RunningServer] = []

    def factory(
        database_url: str,
        *,
        seed: bool = True,
        migrate: bool = True,
        clock: Clock = system_clock,
        **settings: object,
    ) -> RunningServer:
        if seed:
            seed_database(database_url)
        config = replace(
            Settings(), database_url=database_url, grpc_listen="127.0.0.1:0", grpc_workers=8
        )
        config = replace(config, **settings)  # type: ignore[arg-type]
        running = start_server(config, migrate=migrate and not seed, clock=clock)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop(0)


@pytest.fixture
def channel_to() -> Iterator[Callable[[int], grpc.Channel]]:
    channels: list[grpc.Channel] = []

    def open_channel(port: int) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        channel.close()


@pytest.fixture
def stub(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> campaign_service_pb2_grpc.CampaignServiceStub:
    """A client of a fresh server on a fresh, seeded database (SQLite and PostgreSQL)."""
    running = make_server(database_url)
    return campaign_service_pb2_grpc.CampaignServiceStub(channel_to(running.port))


def database_name(url: str) -> str:
    return make_url(url).database or ""
