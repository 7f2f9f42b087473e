"""AddCampaign end to end over gRPC, on SQLite and on PostgreSQL: the rules that need the
clock, the tenant's configuration or the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import GetCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select

from isales_campaign.config import Deployment
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaigns
from tests.conftest import FixedClock, ServerFactory
from tests.examples import add_request, example_campaign, ivr_campaign
from tests.rpc_errors import Failure, failure_of


def rejected(stub: CampaignServiceStub, campaign: pb.Campaign, vdn_id: int = 1) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(add_request(campaign, vdn_id), timeout=10)
    return failure_of(caught.value)


def stored_rows(database_url: str) -> list[dict[str, object]]:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(campaigns))]
    finally:
        engine.dispose()


def tomorrow(name: str) -> pb.Campaign:
    """A campaign starting tomorrow: valid whatever day it already is in VDN 2's zone."""
    return example_campaign(name, today=date.today() + timedelta(days=1))


StubFactory = Callable[..., CampaignServiceStub]


@pytest.fixture
def stub_with(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> StubFactory:
    def factory(**options: object) -> CampaignServiceStub:
        running = make_server(database_url, **options)
        return CampaignServiceStub(channel_to(running.port))

    return factory


def test_documented_example_is_stored(stub: CampaignServiceStub, database_url: str) -> None:
    campaign = example_campaign()
    response = stub.AddCampaign(add_request(campaign), timeout=10)
    assert response.id > 0
    assert response.status == pb.CAMPAIGN_STATUS_EXECUTING
    [row] = stored_rows(database_url)
    assert row["id"] == response.id
    assert row["name"] == "test0827shwocase1"
    assert row["vdn_id"] == 1
    stored = pb.Campaign.FromString(row["config"])  # type: ignore[arg-type]
    assert stored == campaign


def test_ids_are_distinct_and_paused_campaigns_start_paused(stub: CampaignServiceStub) -> None:
    first = stub.AddCampaign(add_request(example_campaign("first")), timeout=10)
    paused = example_campaign("second")
    paused.init_status = pb.INIT_STATUS_PAUSED
    second = stub.AddCampaign(add_request(paused), timeout=10)
    assert second.id != first.id
    assert second.status == pb.CAMPAIGN_STATUS_PAUSED


def test_strings_are_stored_verbatim(stub: CampaignServiceStub, database_url: str) -> None:
    campaign = example_campaign("x'); DROP TABLE campaigns;--")
    campaign.description = "100% sure, it is \u00e9t\u00e9 {ok} \U0001f600"
    campaign.ClearField("call_policy")
    campaign.retry_policy.CopyFrom(
        pb.RetryPolicy(
            policy_type=pb.POLICY_TYPE_GLOBAL, retry_day=1, retry_times=1, call_interval=1
        )
    )
    stub.AddCampaign(add_request(campaign), timeout=10)
    [row] = stored_rows(database_url)
    assert row["name"] == "x'); DROP TABLE campaigns;--"
    stored = pb.Campaign.FromString(row["config"])  # type: ignore[arg-type]
    assert stored.description == campaign.description


def test_name_must_be_unique_within_a_vdn(stub: CampaignServiceStub) -> None:
    stub.AddCampaign(add_request(example_campaign("same name")), timeout=10)
    failure = rejected(stub, example_campaign("same name"))
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "0200005"
    assert failure.codes_by_field() == {"campaign.name": {"0200005"}}
    # Another tenant may use the same name.
    assert stub.AddCampaign(add_request(tomorrow("same name"), vdn_id=2), timeout=10).id


def test_skill_queue_must_exist(stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.skill_param.skill_id = 99
    failure = rejected(stub, campaign)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "0200017"
    assert failure.codes_by_field() == {"campaign.skill_param.skill_id": {"0200017"}}


def test_unknown_vdn_is_not_found(stub: CampaignServiceStub) -> None:
    failure = rejected(stub, example_campaign(), vdn_id=77)
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "02000007"
    assert failure.codes_by_field() == {"vdn_id": {"02000007"}}


def test_start_time_not_before_today(stub: CampaignServiceStub) -> None:
    campaign = example_campaign(today=date.today() - timedelta(days=1))
    failure = rejected(stub, campaign)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "0200002"
    assert failure.codes_by_field() == {"campaign.str_begin_time": {"0200002"}}


def test_today_is_the_tenants_day(stub_with: StubFactory) -> None:
    # 17:00 UTC on the 26th is 01:00 on the 27th in Shanghai (VDN 2).
    stub = stub_with(clock=FixedClock(datetime(2026, 11, 26, 17, 0, tzinfo=UTC)))
    campaign = example_campaign(today=date(2026, 11, 26))
    campaign.str_begin_time = "2026-11-26 23:00:00"
    assert stub.AddCampaign(add_request(campaign, vdn_id=1), timeout=10).id
    failure = rejected(stub, campaign, vdn_id=2)
    assert failure.reason == "0200002"
    campaign.str_begin_time = "2026-11-27 00:00:00"
    assert stub.AddCampaign(add_request(campaign, vdn_id=2), timeout=10).id


def test_skill_queue_quota(stub_with: StubFactory) -> None:
    stub = stub_with(max_active_tasks=2)
    for i in range(2):
        stub.AddCampaign(add_request(example_campaign(f"skill {i}")), timeout=10)
    failure = rejected(stub, example_campaign("skill 2"))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "0200003"
    assert failure.metadata["limit"] == "2"
    assert failure.metadata["usage"] == "2"
    [quota] = failure.quotas
    assert quota.quota_value == 2
    assert (quota.subject, quota.quota_metric) == ("vdn:1/family:skill-queue", "active_campaigns")
    # The IVR family and other tenants have quotas of their own.
    assert stub.AddCampaign(add_request(ivr_campaign("ivr 0")), timeout=10).id
    assert stub.AddCampaign(add_request(tomorrow("skill 0"), vdn_id=2), timeout=10).id


def test_ivr_quota(stub_with: StubFactory) -> None:
    stub = stub_with(max_active_tasks=1)
    stub.AddCampaign(add_request(ivr_campaign("ivr 0")), timeout=10)
    intelligent = ivr_campaign("ivr 1")
    intelligent.device_type = pb.DEVICE_TYPE_INTELLIGENT_IVR
    failure = rejected(stub, intelligent)
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "0200004"
    assert stub.AddCampaign(add_request(example_campaign("skill")), timeout=10).id


def test_expired_campaigns_leave_the_quota(stub_with: StubFactory) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    stub = stub_with(max_active_tasks=1, clock=clock)
    short = example_campaign("short", today=date(2026, 11, 26))
    short.str_end_time = "2026-11-26 11:00:00"
    stub.AddCampaign(add_request(short), timeout=10)
    assert rejected(stub, example_campaign("next", today=date(2026, 11, 26))).reason == "0200003"
    clock.now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert stub.AddCampaign(add_request(example_campaign("next", today=date(2026, 11, 26)))).id


def test_ended_campaigns_count_towards_the_family_cap(stub_with: StubFactory) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    stub = stub_with(max_campaigns_per_family=2, clock=clock)
    today = date(2026, 11, 26)
    short = example_campaign("short", today=today)
    short.str_end_time = "2026-11-26 11:00:00"
    stub.AddCampaign(add_request(short), timeout=10)
    stub.AddCampaign(add_request(example_campaign("long", today=today)), timeout=10)
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # "short" has ended
    failure = rejected(stub, example_campaign("third", today=today))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "0200003"
    assert "ended ones included" in failure.message
    [quota] = failure.quotas
    assert (quota.subject, quota.quota_metric, quota.quota_value) == (
        "vdn:1/family:skill-queue",
        "campaigns",
        2,
    )
    assert failure.metadata["usage"] == "2"
    for name in ("ivr 0", "ivr 1"):
        stub.AddCampaign(add_request(ivr_campaign(name, today=today)), timeout=10)
    assert rejected(stub, ivr_campaign("ivr 2", today=today)).reason == "0200004"


def test_cc_id_is_mandatory_in_the_op_deployment(stub_with: StubFactory) -> None:
    stub = stub_with(deployment=Deployment.OP)
    failure = rejected(stub, example_campaign())
    assert failure.codes_by_field() == {"campaign.cc_id": {"02000001"}}
    campaign = example_campaign()
    campaign.cc_id = 1
    assert stub.AddCampaign(add_request(campaign), timeout=10).id


def test_domain_and_contract_problems_come_together(stub: CampaignServiceStub) -> None:
    campaign = example_campaign(today=date.today() - timedelta(days=3))
    campaign.name = ""
    failure = rejected(stub, campaign)
    assert failure.reason == "0200001"
    assert failure.codes_by_field() == {
        "campaign.name": {"02000001"},
        "campaign.str_begin_time": {"0200002"},
    }


def test_database_failure_is_unavailable(
    make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server("postgresql://isales@127.0.0.1:9/none", seed=False, migrate=False)
    stub = CampaignServiceStub(channel_to(running.port))
    failure = rejected(stub, example_campaign())
    assert failure.code == grpc.StatusCode.UNAVAILABLE
    assert failure.reason == "0200006"


def test_validate_only_checks_everything_and_stores_nothing(
    stub: CampaignServiceStub, database_url: str
) -> None:
    request = add_request(example_campaign())
    request.validate_only = True
    response = stub.AddCampaign(request, timeout=10)
    assert (response.id, response.status) == (0, pb.CAMPAIGN_STATUS_EXECUTING)
    assert stored_rows(database_url) == []
    # Database rules are checked too.
    stub.AddCampaign(add_request(example_campaign()), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(request, timeout=10)
    assert failure_of(caught.value).reason == "0200005"
    assert len(stored_rows(database_url)) == 1


def test_retries_with_an_idempotency_key_add_once(
    stub: CampaignServiceStub, database_url: str
) -> None:
    request = add_request(example_campaign())
    request.idempotency_key = "order-4711:attempt"
    first = stub.AddCampaign(request, timeout=10)
    again = stub.AddCampaign(request, timeout=10)
    assert (again.id, again.status, again.replayed) == (first.id, first.status, True)
    assert not first.replayed
    assert len(stored_rows(database_url)) == 1
    # Validating a retry tells what the retry would answer.
    request.validate_only = True
    checked = stub.AddCampaign(request, timeout=10)
    assert (checked.id, checked.replayed) == (first.id, True)
    request.validate_only = False
    # The same key for another campaign is a mistake of the caller.
    request.campaign.name = "something else"
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(request, timeout=10)
    failure = failure_of(caught.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.codes_by_field() == {"idempotency_key": {"02000009"}}
    # Keys are per VDN.
    other = add_request(tomorrow("other tenant"), vdn_id=2)
    other.idempotency_key = "order-4711:attempt"
    assert not stub.AddCampaign(other, timeout=10).replayed


def test_a_retry_after_midnight_is_answered_with_its_campaign(stub_with: StubFactory) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 23, 59, 55, tzinfo=UTC))
    stub = stub_with(clock=clock)
    request = add_request(example_campaign(today=date(2026, 11, 26)))  # starts 00:00 that day
    request.idempotency_key = "late-retry"
    first = stub.AddCampaign(request, timeout=10)
    clock.now = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)
    again = stub.AddCampaign(request, timeout=10)
    assert (again.id, again.replayed) == (first.id, True)
    # Without the key the same campaign is judged anew: its start is now before today.
    request.idempotency_key = ""
    assert rejected(stub, request.campaign).reason == "0200002"


def test_idempotency_key_characters(stub: CampaignServiceStub) -> None:
    request = add_request(example_campaign())
    request.idempotency_key = "no spaces allowed"
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(request, timeout=10)
    assert failure_of(caught.value).codes_by_field() == {"idempotency_key": {"02000002"}}


def test_names_typed_two_ways_are_one_name(stub: CampaignServiceStub) -> None:
    campaign = example_campaign("cafe\u0301 cre\u0300me")
    campaign.description = "de\u0301cor"
    decomposed = stub.AddCampaign(add_request(campaign), timeout=10)
    stored = stub.GetCampaign(GetCampaignRequest(vdn_id=1, campaign_id=decomposed.id), timeout=10)
    assert stored.campaign.campaign.name == "caf\u00e9 cr\u00e8me"  # NFC
    assert stored.campaign.campaign.description == "d\u00e9cor"
    failure = rejected(stub, example_campaign("caf\u00e9 cr\u00e8me"))
    assert (failure.code, failure.reason) == (grpc.StatusCode.ALREADY_EXISTS, "0200005")


def test_invisible_characters_cannot_make_a_look_alike_name(stub: CampaignServiceStub) -> None:
    stub.AddCampaign(add_request(example_campaign("ab")), timeout=10)
    for look_alike in ("a\u200bb", "\ufeffab", "ab\u202e", "a\u2028b"):
        failure = rejected(stub, example_campaign(look_alike))
        assert failure.codes_by_field() == {"campaign.name": {"02000002"}}, look_alike


def test_a_refusal_tells_the_whole_usage_above_a_lowered_limit(
    database_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    generous = make_server(database_url)
    for name in ("one", "two", "three"):
        CampaignServiceStub(channel_to(generous.port)).AddCampaign(
            add_request(example_campaign(name)), timeout=10
        )
    # The operator lowers the limit below the usage: counting stops at the limit, but the
    # answer still tells how many there are.
    strict = make_server(database_url, seed=False, migrate=False, max_active_tasks=1)
    failure = rejected(CampaignServiceStub(channel_to(strict.port)), example_campaign("four"))
    assert failure.reason == "0200003"
    assert (failure.metadata["limit"], failure.metadata["usage"]) == ("1", "3")
