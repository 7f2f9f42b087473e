"""Fixtures of the service's tests: clients of servers on a clock the tests set by hand, and
one server per module for the contract's rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.config import Settings
from isales_campaign.service.server import start_server
from tests.conftest import FixedClock, ServerFactory, seed_database
from tests.service.helpers import MORNING, StubFactory


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MORNING)


@pytest.fixture
def stub_with(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    clock: FixedClock,
) -> StubFactory:
    """A client of a fresh server on `clock`, with these settings."""

    def factory(**settings: object) -> CampaignServiceStub:
        running = make_server(database_url, clock=clock, **settings)
        return CampaignServiceStub(channel_to(running.port))

    return factory


@pytest.fixture
def client(stub_with: StubFactory) -> CampaignServiceStub:
    """A client of a fresh server with the default settings, on `clock`."""
    return stub_with()


@pytest.fixture(scope="module")
def rules_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CampaignServiceStub]:
    """A client of a server on a seeded SQLite database, shared by the tests of a module."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('rules')) / 'isales.db'}"
    seed_database(url)
    running = start_server(
        replace(Settings(), database_url=url, grpc_listen="127.0.0.1:0"), migrate=False
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield CampaignServiceStub(channel)
    channel.close()
    running.stop(0)
