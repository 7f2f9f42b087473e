"""Quotas and name uniqueness under concurrent calls to two server processes sharing one
database (a SQLite file, or PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess

QUOTA = 5


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[list[CampaignServiceStub]]:
    seed_database(database_url)
    servers = [
        ServerProcess(
            tmp_path / f"server-{i}.log",
            ISALES_DATABASE_URL=database_url,
            ISALES_MAX_ACTIVE_TASKS=str(QUOTA),
        )
        for i in range(2)
    ]
    channels = [grpc.insecure_channel(f"127.0.0.1:{s.port}") for s in servers]
    yield [CampaignServiceStub(c) for c in channels]
    for channel in channels:
        channel.close()
    for server in servers:
        assert server.stop() == 0, server.log_text()


def add_in_parallel(stubs: list[CampaignServiceStub], names: list[str]) -> Counter[str]:
    """Send one AddCampaign per name, alternating servers, all at once."""

    def add(index: int) -> str:
        stub = stubs[index % len(stubs)]
        try:
            stub.AddCampaign(add_request(example_campaign(names[index])), timeout=60)
        except grpc.RpcError as error:
            return error.code().name if isinstance(error, grpc.Call) else repr(error)
        return "OK"

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return Counter(pool.map(add, range(len(names))))


def test_quota_holds_across_processes(two_servers: list[CampaignServiceStub]) -> None:
    outcomes = add_in_parallel(two_servers, [f"campaign {i}" for i in range(24)])
    assert outcomes == {"OK": QUOTA, "RESOURCE_EXHAUSTED": 24 - QUOTA}


def test_exactly_one_of_the_same_name_succeeds(two_servers: list[CampaignServiceStub]) -> None:
    outcomes = add_in_parallel(two_servers, ["one name"] * 12)
    assert outcomes == {"OK": 1, "ALREADY_EXISTS": 11}


def test_parallel_retries_with_one_idempotency_key_add_once(
    two_servers: list[CampaignServiceStub],
) -> None:
    request = add_request(example_campaign("retried"))
    request.idempotency_key = "retry-me"

    def add(index: int) -> tuple[int, bool]:
        response = two_servers[index % 2].AddCampaign(request, timeout=60)
        return response.id, response.replayed

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(add, range(10)))
    assert len({campaign_id for campaign_id, _ in answers}) == 1
    assert sorted(replayed for _, replayed in answers) == [False] + [True] * 9
