"""Quotas, name uniqueness and campaign changes under concurrent calls to two server
processes sharing one database (a SQLite file, or PostgreSQL): each race leaves one
consistent answer and exact counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import (
    DeleteCampaignRequest,
    GetCampaignRequest,
    GetQuotaRequest,
    ListCampaignsRequest,
    PauseCampaignRequest,
    ResumeCampaignRequest,
    UpdateCampaignRequest,
)
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess
from tests.service.change_mix import (
    ADDED,
    KINDS,
    PAUSED,
    Change,
    ChangeMix,
    every_change,
    history_problems,
    stored_campaigns,
)

QUOTA = 5
#: Changes each thread of a mix makes.
MIXED_CHANGES = 15


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


def add_one(stub: CampaignServiceStub, name: str, *, paused: bool = False) -> int:
    campaign = example_campaign(name)
    if paused:
        campaign.init_status = pb.INIT_STATUS_PAUSED
    return stub.AddCampaign(add_request(campaign), timeout=60).id


def outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        return error.code().name if isinstance(error, grpc.Call) else repr(error)
    return "OK"


def race(*calls: Callable[[], object]) -> list[str]:
    """Run the calls at once; their outcomes in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(outcome, calls))


def test_changes_naming_one_etag_are_applied_once(two_servers: list[CampaignServiceStub]) -> None:
    campaign_id = add_one(two_servers[0], "contended")

    def update(index: int) -> Callable[[], object]:
        campaign = example_campaign("contended")
        campaign.description = f"writer {index}"
        request = UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=campaign)
        request.etag = "1"
        return lambda: two_servers[index % 2].UpdateCampaign(request, timeout=60)

    outcomes = Counter(race(*(update(i) for i in range(10))))
    assert outcomes == {"OK": 1, "ABORTED": 9}
    stored = two_servers[1].GetCampaign(
        GetCampaignRequest(vdn_id=1, campaign_id=campaign_id), timeout=60
    )
    assert stored.campaign.version == 2


def test_changes_without_etag_are_all_applied(two_servers: list[CampaignServiceStub]) -> None:
    campaign_id = add_one(two_servers[0], "busy")
    pause = PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    resume = ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    calls = [
        partial(stub.PauseCampaign, pause, timeout=60)
        if i % 2 == 0
        else partial(stub.ResumeCampaign, resume, timeout=60)
        for i, stub in enumerate(two_servers * 4)
    ]
    outcomes = race(*calls)
    stored = two_servers[0].GetCampaign(
        GetCampaignRequest(vdn_id=1, campaign_id=campaign_id), timeout=60
    )
    # Every accepted change is counted, none lost; each refusal is a status conflict.
    assert set(outcomes) <= {"OK", "FAILED_PRECONDITION"}
    assert stored.campaign.version == 1 + outcomes.count("OK")
    # An accepted pause needs an executing campaign, a resume a paused one: they alternate.
    odd = outcomes.count("OK") % 2 == 1
    assert stored.campaign.status == (
        pb.CAMPAIGN_STATUS_PAUSED if odd else pb.CAMPAIGN_STATUS_EXECUTING
    )


def test_a_delete_racing_a_resume_leaves_one_consistent_outcome(
    two_servers: list[CampaignServiceStub],
) -> None:
    for index in range(QUOTA - 1):  # within the active quota whatever the outcomes
        campaign_id = add_one(two_servers[0], f"raced {index}", paused=True)
        resumed, deleted = race(
            partial(
                two_servers[0].ResumeCampaign,
                ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id),
                timeout=60,
            ),
            partial(
                two_servers[1].DeleteCampaign,
                DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id),
                timeout=60,
            ),
        )
        get = partial(
            two_servers[0].GetCampaign,
            GetCampaignRequest(vdn_id=1, campaign_id=campaign_id),
            timeout=60,
        )
        if deleted == "OK":
            assert (resumed, outcome(get)) == ("NOT_FOUND", "NOT_FOUND")
        else:
            assert (resumed, deleted) == ("OK", "FAILED_PRECONDITION")
            assert get().campaign.status == pb.CAMPAIGN_STATUS_EXECUTING


def test_a_rename_racing_an_add_of_that_name_leaves_one(
    two_servers: list[CampaignServiceStub],
) -> None:
    for index in range(QUOTA // 2):  # two campaigns a round, within the active quota
        campaign_id = add_one(two_servers[0], f"before {index}")
        wanted = f"wanted {index}"
        rename = UpdateCampaignRequest(
            vdn_id=1, campaign_id=campaign_id, campaign=example_campaign(wanted)
        )
        outcomes = race(
            partial(two_servers[0].UpdateCampaign, rename, timeout=60),
            partial(two_servers[1].AddCampaign, add_request(example_campaign(wanted)), timeout=60),
        )
        assert sorted(outcomes) == ["ALREADY_EXISTS", "OK"]
        listed = two_servers[0].ListCampaigns(
            ListCampaignsRequest(vdn_id=1, name_contains=wanted), timeout=60
        )
        assert listed.total_size == 1


def test_adds_racing_a_delete_at_the_limit_keep_the_count_exact(
    two_servers: list[CampaignServiceStub],
) -> None:
    ids = [add_one(two_servers[0], f"full {i}", paused=True) for i in range(QUOTA)]
    delete = DeleteCampaignRequest(vdn_id=1, campaign_id=ids[0])
    adds = [
        partial(stub.AddCampaign, add_request(example_campaign(f"new {i}")), timeout=60)
        for i, stub in enumerate(two_servers * 4)
    ]
    deleted, *added = race(partial(two_servers[1].DeleteCampaign, delete, timeout=60), *adds)
    assert deleted == "OK"
    assert set(added) <= {"OK", "RESOURCE_EXHAUSTED"}
    assert added.count("OK") <= 1
    quota = two_servers[0].GetQuota(GetQuotaRequest(vdn_id=1), timeout=60).families[0]
    assert quota.active_campaigns == QUOTA - 1 + added.count("OK")
    assert quota.campaigns == quota.active_campaigns


def test_two_processes_number_a_tenants_changes_without_a_gap(
    two_servers: list[CampaignServiceStub],
) -> None:
    """Changes made at once through both processes: the history numbers exactly those that
    were acknowledged, 1..N, in commit order, each with its kind, campaign and version."""
    added = add_in_parallel(two_servers, [f"numbered {i}" for i in range(24)])
    listing = two_servers[0].ListCampaigns(ListCampaignsRequest(vdn_id=1, page_size=100))
    ids = [record.id for record in listing.campaigns]
    paused = race(
        *(
            partial(
                two_servers[index % 2].PauseCampaign,
                PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id),
                timeout=60,
            )
            for index, campaign_id in enumerate(ids * 2)  # each twice: one of the two is refused
        )
    )
    assert (added["OK"], paused.count("OK")) == (QUOTA, len(ids))
    # Then every kind of change, from threads on both processes, at the quota's edge.
    mix = ChangeMix(changes=MIXED_CHANGES, live=QUOTA)
    for campaign_id in ids:
        mix.acknowledge(Change(ADDED, campaign_id, 1))
        mix.acknowledge(Change(PAUSED, campaign_id, 2))
    with mix.running(two_servers * 2):
        mix.join()
    assert mix.answers.cut == {}  # every change was answered
    records = every_change(two_servers[1], page_size=7)
    assert [change.sequence for change in records] == list(
        range(1, len(mix.answers.acknowledged) + 1)
    )
    assert history_problems(records, stored_campaigns(two_servers[0]), mix.answers) == []
    assert {change.kind for change in records} == set(KINDS)
