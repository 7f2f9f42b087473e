"""The campaign lifecycle end to end over gRPC, on SQLite and on PostgreSQL: get, list,
update, pause, resume, delete (or archive) and the quotas, as a client observes them.

The service runs on a clock the tests set by hand, so that "today", expiry and creation
times are exact.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import idempotency_keys
from isales_campaign.service.db.store import KEY_SWEEP_INTERVAL
from isales_campaign.service.domain.idempotency import KEY_RETENTION
from tests.conftest import FixedClock, ServerFactory
from tests.examples import add_request, example_campaign, ivr_campaign
from tests.rpc_errors import Failure, failure_of

TODAY = date(2026, 11, 26)
#: The service's clock when a test starts: 10:00 UTC (VDN 1 keeps UTC; it is 18:00 of the
#: same day in VDN 2's Asia/Shanghai).
MORNING = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: Campaigns made by `campaign()` end at 2026-11-27 23:59:59: this is after that.
AFTER_THE_END = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)

EXECUTING = pb.CAMPAIGN_STATUS_EXECUTING
PAUSED = pb.CAMPAIGN_STATUS_PAUSED
COMPLETED = pb.CAMPAIGN_STATUS_COMPLETED
SKILL_QUEUE = rpc.CAMPAIGN_FAMILY_SKILL_QUEUE
IVR = rpc.CAMPAIGN_FAMILY_IVR

StubFactory = Callable[..., CampaignServiceStub]


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


# -- helpers -----------------------------------------------------------------------------------


def campaign(name: str, *, paused: bool = False, day: date = TODAY) -> pb.Campaign:
    """The documented example, running from `day` 00:00 to the next day's 23:59:59."""
    found = example_campaign(name, today=day)
    if paused:
        found.init_status = pb.INIT_STATUS_PAUSED
    return found


def add(client: CampaignServiceStub, accepted: pb.Campaign, vdn_id: int = 1) -> int:
    response = client.AddCampaign(add_request(accepted, vdn_id), timeout=10)
    assert response.id > 0
    return response.id


def get(
    client: CampaignServiceStub, campaign_id: int, vdn_id: int = 1, **options: Any
) -> rpc.CampaignRecord:
    request = rpc.GetCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id, **options)
    return client.GetCampaign(request, timeout=10).campaign


def listed(
    client: CampaignServiceStub, vdn_id: int = 1, **fields: Any
) -> rpc.ListCampaignsResponse:
    return client.ListCampaigns(rpc.ListCampaignsRequest(vdn_id=vdn_id, **fields), timeout=10)


def listed_ids(client: CampaignServiceStub, vdn_id: int = 1, **fields: Any) -> list[int]:
    response = listed(client, vdn_id, page_size=100, **fields)
    assert response.total_size == len(response.campaigns)
    return [record.id for record in response.campaigns]


def update(
    client: CampaignServiceStub, campaign_id: int, replacement: pb.Campaign, **options: Any
) -> rpc.CampaignRecord:
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=replacement, **options
    )
    return client.UpdateCampaign(request, timeout=10).campaign


def pause(client: CampaignServiceStub, campaign_id: int, etag: str = "") -> rpc.CampaignRecord:
    request = rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag=etag)
    return client.PauseCampaign(request, timeout=10).campaign


def resume(client: CampaignServiceStub, campaign_id: int, etag: str = "") -> rpc.CampaignRecord:
    request = rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag=etag)
    return client.ResumeCampaign(request, timeout=10).campaign


def delete(client: CampaignServiceStub, campaign_id: int, *, archive: bool = False) -> None:
    request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, archive=archive)
    client.DeleteCampaign(request, timeout=10)


def usage(client: CampaignServiceStub, vdn_id: int = 1) -> dict[int, tuple[int, int]]:
    """(active campaigns, campaigns in all) per family, from GetQuota."""
    families = client.GetQuota(rpc.GetQuotaRequest(vdn_id=vdn_id), timeout=10).families
    return {quota.family: (quota.active_campaigns, quota.campaigns) for quota in families}


def refused(method: Callable[..., object], request: Message) -> Failure:
    """The failure a call answers; the test fails if it succeeds."""
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=10)
    return failure_of(caught.value)


def not_found(client: CampaignServiceStub, campaign_id: int, vdn_id: int = 1) -> bool:
    failure = refused(
        client.GetCampaign, rpc.GetCampaignRequest(vdn_id=vdn_id, campaign_id=campaign_id)
    )
    return (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")


def replacement(name: str) -> pb.Campaign:
    """A configuration differing from `campaign(name)` in several fields, one of them unset."""
    changed = campaign(name)
    changed.description = "replaced"
    changed.str_end_time = "2026-11-30 18:00:00"
    del changed.caller_no[:]
    changed.caller_no.add(access_code="12345", priority=1)
    changed.ClearField("priority")
    changed.max_alerting_time = 30
    return changed


# -- get ---------------------------------------------------------------------------------------


def test_get_answers_the_campaign_as_accepted(client: CampaignServiceStub) -> None:
    accepted = campaign("get me")
    campaign_id = add(client, accepted)
    record = get(client, campaign_id)
    assert record.campaign == accepted
    assert (record.id, record.vdn_id, record.status) == (campaign_id, 1, EXECUTING)
    assert (record.version, record.etag) == (1, "1")
    assert record.create_time.ToDatetime(tzinfo=UTC) == MORNING
    assert record.update_time.ToDatetime(tzinfo=UTC) == MORNING
    assert not record.HasField("archive_time")


def test_get_answers_a_campaign_added_paused_as_paused(client: CampaignServiceStub) -> None:
    accepted = campaign("paused from the start", paused=True)
    record = get(client, add(client, accepted))
    assert record.status == PAUSED
    assert record.campaign == accepted


def test_get_unknown_or_another_tenants_campaign_is_not_found(
    client: CampaignServiceStub,
) -> None:
    campaign_id = add(client, campaign("vdn 1 owns this"))
    for vdn_id, asked in ((1, campaign_id + 1000), (2, campaign_id)):
        failure = refused(
            client.GetCampaign, rpc.GetCampaignRequest(vdn_id=vdn_id, campaign_id=asked)
        )
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert failure.reason == "0200007"


def test_get_checks_its_arguments(client: CampaignServiceStub) -> None:
    failure = refused(client.GetCampaign, rpc.GetCampaignRequest(vdn_id=1, campaign_id=0))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000007"
    assert failure.codes_by_field() == {"campaign_id": {"02000007"}}
    unconfigured = refused(client.GetCampaign, rpc.GetCampaignRequest(vdn_id=5, campaign_id=1))
    assert unconfigured.code == grpc.StatusCode.NOT_FOUND
    assert unconfigured.codes_by_field() == {"vdn_id": {"02000007"}}
    no_vdn = refused(client.GetCampaign, rpc.GetCampaignRequest(vdn_id=0, campaign_id=1))
    assert no_vdn.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(no_vdn.codes_by_field()) == {"vdn_id"}


# -- expiry ------------------------------------------------------------------------------------


def test_a_campaign_past_its_end_is_completed(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    executing = add(client, campaign("executing"))
    paused = add(client, campaign("paused", paused=True))
    clock.now = datetime(2026, 11, 27, 23, 59, 58, tzinfo=UTC)  # a second before the end
    assert get(client, executing).status == EXECUTING
    assert usage(client)[SKILL_QUEUE] == (2, 2)
    clock.now = AFTER_THE_END
    assert [get(client, i).status for i in (executing, paused)] == [COMPLETED, COMPLETED]
    assert sorted(listed_ids(client, status=COMPLETED)) == [executing, paused]
    assert listed_ids(client, status=EXECUTING) == []
    assert listed_ids(client, status=PAUSED) == []
    assert [r.status for r in listed(client).campaigns] == [COMPLETED, COMPLETED]
    # No longer active, still counted in all until deleted.
    assert usage(client)[SKILL_QUEUE] == (0, 2)


# -- list --------------------------------------------------------------------------------------


def test_list_pages_walk_every_campaign_once_newest_first(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    # Creation minutes out of step with the ids, with ties: the order is by creation
    # time, then by id, and the page token has to carry both.
    minutes = [0, 0, 5, 3, 3, 7, 0]
    created: list[tuple[datetime, int]] = []
    for i, minute in enumerate(minutes):
        clock.now = MORNING + timedelta(minutes=minute)
        created.append((clock.now, add(client, campaign(f"page {i}"))))
    expected = [campaign_id for _, campaign_id in sorted(created, reverse=True)]

    pages: list[list[int]] = []
    token = ""
    while True:
        page = listed(client, page_size=3, page_token=token)
        assert page.total_size == 7
        pages.append([record.id for record in page.campaigns])
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 5, "the pages do not end"
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [campaign_id for page in pages for campaign_id in page] == expected
    assert listed_ids(client) == expected


def test_list_pages_of_the_default_size(client: CampaignServiceStub) -> None:
    ids = [add(client, campaign(f"c{i}")) for i in range(11)]
    first = listed(client)
    assert [r.id for r in first.campaigns] == ids[::-1][:10]
    assert first.total_size == 11
    assert first.next_page_token
    rest = listed(client, page_token=first.next_page_token)
    assert [r.id for r in rest.campaigns] == ids[:1]
    assert rest.next_page_token == ""


def test_list_skip(client: CampaignServiceStub) -> None:
    ids = [add(client, campaign(f"skip {i}")) for i in range(7)]
    newest_first = ids[::-1]
    skipped = listed(client, page_size=2, skip=3)
    assert [r.id for r in skipped.campaigns] == newest_first[3:5]
    assert skipped.total_size == 7
    first = listed(client, page_size=2)
    after = listed(client, page_size=2, skip=1, page_token=first.next_page_token)
    assert [r.id for r in after.campaigns] == newest_first[3:5]
    beyond = listed(client, skip=7)
    assert (list(beyond.campaigns), beyond.next_page_token, beyond.total_size) == ([], "", 7)


def test_an_unfiltered_total_counts_the_tenants_live_campaigns_of_both_families(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    for i in range(3):
        add(client, campaign(f"skill {i}"))
    add(client, ivr_campaign("ivr", today=TODAY))
    delete(client, add(client, campaign("archived", paused=True)), archive=True)
    delete(client, add(client, campaign("deleted", paused=True)))
    add(client, ivr_campaign("another tenant's"), vdn_id=2)
    first = listed(client, page_size=2)
    assert (len(first.campaigns), first.total_size) == (2, 4)
    assert listed(client, page_size=2, page_token=first.next_page_token).total_size == 4
    clock.now = AFTER_THE_END  # ended campaigns are still the tenant's
    assert listed(client).total_size == 4
    assert listed(client, status=COMPLETED).total_size == 4
    assert listed(client, archived=True).total_size == 1


def test_list_filters_by_name_status_and_device_type(client: CampaignServiceStub) -> None:
    alpha = add(client, campaign("Alpha one"))
    lower = add(client, campaign("alpha two"))
    wild = add(client, campaign("50%_off"))
    paused = add(client, campaign("Beta", paused=True))
    ivr = add(client, ivr_campaign("Alpha ivr", today=TODAY))

    def named(text: str) -> set[int]:
        return set(listed_ids(client, name_contains=text))

    assert named("lpha") == {alpha, lower, ivr}
    assert named("Alpha") == {alpha, ivr}
    assert named("ALPHA") == set()
    assert named("Alpha one") == {alpha}
    # The text is matched as it is, not as a LIKE pattern.
    assert named("%") == {wild}
    assert named("_") == {wild}
    assert named("l_ha") == set()
    assert named("A%") == set()

    assert set(listed_ids(client, status=PAUSED)) == {paused}
    assert set(listed_ids(client, status=EXECUTING)) == {alpha, lower, wild, ivr}
    assert set(listed_ids(client, device_type=pb.DEVICE_TYPE_AUTOMATIC_IVR)) == {ivr}
    assert set(listed_ids(client, device_type=pb.DEVICE_TYPE_PREDICTED)) == {
        alpha,
        lower,
        wild,
        paused,
    }
    assert listed_ids(client, device_type=pb.DEVICE_TYPE_INTELLIGENT_IVR) == []
    assert listed_ids(client, name_contains="Alpha", device_type=pb.DEVICE_TYPE_PREDICTED) == [
        alpha
    ]


def test_list_filters_by_begin_and_end_time(client: CampaignServiceStub) -> None:
    def spanning(name: str, begin: str, end: str) -> int:
        found = campaign(name)
        found.str_begin_time, found.str_end_time = begin, end
        return add(client, found)

    early = spanning("early", "2026-11-26 00:00:00", "2026-11-26 12:00:00")
    middle = spanning("middle", "2026-11-26 12:00:00", "2026-11-27 00:00:00")
    late = spanning("late", "2026-11-27 00:00:00", "2026-11-28 00:00:00")

    def between(begin_from: str = "", end_to: str = "") -> set[int]:
        return set(listed_ids(client, begin_time_from=begin_from, end_time_to=end_to))

    assert between() == {early, middle, late}
    assert between(begin_from="2026-11-26 12:00:00") == {middle, late}  # at or after
    assert between(begin_from="2026-11-26 12:00:01") == {late}
    assert between(end_to="2026-11-27 00:00:00") == {early, middle}  # at or before
    assert between(end_to="2026-11-26 23:59:59") == {early}
    assert between("2026-11-26 12:00:00", "2026-11-27 00:00:00") == {middle}
    assert between(begin_from="2026-11-28 00:00:00") == set()
    # Times are the tenant's: VDN 2 keeps Asia/Shanghai.
    shanghai = campaign("in shanghai")
    shanghai.str_begin_time = "2026-11-27 08:00:00"
    in_vdn_2 = add(client, shanghai, vdn_id=2)
    assert listed_ids(client, 2, begin_time_from="2026-11-27 08:00:00") == [in_vdn_2]
    assert listed_ids(client, 2, begin_time_from="2026-11-27 08:00:01") == []


def test_list_filters_by_center(client: CampaignServiceStub) -> None:
    centered = campaign("centered")
    centered.cc_id = 7
    campaign_id = add(client, centered)
    add(client, campaign("nowhere"))
    assert listed_ids(client, cc_id=7) == [campaign_id]
    assert listed_ids(client, cc_id=8) == []
    moved = campaign("centered")
    moved.cc_id = 8
    update(client, campaign_id, moved)
    assert listed_ids(client, cc_id=7) == []
    assert listed_ids(client, cc_id=8) == [campaign_id]


def test_list_checks_its_arguments(client: CampaignServiceStub) -> None:
    too_large = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, page_size=101))
    assert too_large.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_large.codes_by_field() == {"page_size": {"02000007"}}
    for field in ("begin_time_from", "end_time_to"):
        options: dict[str, Any] = {field: "2026-13-45 00:00:00"}
        failure = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, **options))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.reason == "02000008"
        assert failure.codes_by_field() == {field: {"02000008"}}
    unconfigured = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=5))
    assert unconfigured.code == grpc.StatusCode.NOT_FOUND


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_TOKENS = {
    "not base64": "%%%not a token%%%",
    "a lone character": "a",
    "bad padding": "abcde",
    "not UTF-8": _token(b"\xff\xfe\xfd\xfc"),
    "no separator": _token(b"just some text"),
    "no id": _token(b"2026-11-26T10:00:00|"),
    "id not a number": _token(b"2026-11-26T10:00:00|abc"),
    "not a time": _token(b"yesterday|7"),
}


@pytest.mark.parametrize("token", GARBAGE_TOKENS.values(), ids=GARBAGE_TOKENS.keys())
def test_a_page_token_not_given_by_the_service_is_refused(
    client: CampaignServiceStub, token: str
) -> None:
    add(client, campaign("listed"))
    failure = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, page_token=token))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000007"
    assert failure.codes_by_field() == {"page_token": {"02000007"}}


def test_a_forged_page_token_with_an_oversized_id_is_refused(client: CampaignServiceStub) -> None:
    add(client, campaign("listed"))
    token = _token(b"2026-11-26T10:00:00|" + b"9" * 30)
    failure = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, page_token=token))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.codes_by_field() == {"page_token": {"02000007"}}


def test_a_page_token_changed_or_cut_short_is_refused(client: CampaignServiceStub) -> None:
    for i in range(3):
        add(client, campaign(f"token {i}"))
    token = listed(client, page_size=1).next_page_token
    assert listed(client, page_size=1, page_token=token).campaigns  # as given, it pages on
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for changed in (flipped, token[:-1], token[:-4], token + "AAAA"):
        request = rpc.ListCampaignsRequest(vdn_id=1, page_token=changed)
        failure = refused(client.ListCampaigns, request)
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.codes_by_field() == {"page_token": {"02000007"}}
        assert "is not a next_page_token of this service" in failure.message


def test_a_page_token_goes_with_the_filters_of_its_first_page(client: CampaignServiceStub) -> None:
    """AIP-158: the page size and the skip may change from page to page, a filter may not."""
    ids = [add(client, campaign(f"filtered {i}")) for i in range(4)]
    add(client, ivr_campaign("filtered ivr", today=TODAY))
    predicted = pb.DEVICE_TYPE_PREDICTED
    first = listed(client, page_size=1, device_type=predicted, name_contains="filtered")
    token = first.next_page_token
    resized = listed(
        client, page_size=2, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert [r.id for r in resized.campaigns] == ids[::-1][1:3]
    skipping = listed(
        client, skip=1, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert [r.id for r in skipping.campaigns] == ids[::-1][2:]
    for other in (
        {"device_type": predicted},
        {"device_type": predicted, "name_contains": "filtered 1"},
        {"device_type": pb.DEVICE_TYPE_AUTOMATIC_IVR, "name_contains": "filtered"},
        {"device_type": predicted, "name_contains": "filtered", "status": PAUSED},
        {"device_type": predicted, "name_contains": "filtered", "archived": True},
    ):
        request = rpc.ListCampaignsRequest(vdn_id=1, page_token=token, **other)
        failure = refused(client.ListCampaigns, request)
        assert failure.codes_by_field() == {"page_token": {"02000007"}}, other
        assert "was given for other filters" in failure.message
    theirs = rpc.ListCampaignsRequest(
        vdn_id=2, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert refused(client.ListCampaigns, theirs).codes_by_field() == {"page_token": {"02000007"}}


def test_a_page_token_continues_on_another_replica(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    client: CampaignServiceStub,
) -> None:
    """Replicas share the key that signs page tokens (it is in the database)."""
    ids = [add(client, campaign(f"replicated {i}")) for i in range(3)]
    token = listed(client, page_size=2).next_page_token
    other = CampaignServiceStub(channel_to(make_server(database_url, seed=False).port))
    after = other.ListCampaigns(
        rpc.ListCampaignsRequest(vdn_id=1, page_size=2, page_token=token), timeout=10
    )
    assert [r.id for r in after.campaigns] == [ids[0]]


def test_list_families_count_per_family_whatever_the_filters(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    short = campaign("short")
    short.str_end_time = "2026-11-26 11:00:00"
    add(client, short)
    add(client, campaign("long"))
    add(client, ivr_campaign("ivr", today=TODAY))
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # "short" has ended
    response = listed(client, name_contains="ivr", page_size=1)
    counts = [
        (f.family, f.active_campaigns, f.campaigns, f.max_active_campaigns)
        for f in response.families
    ]
    assert counts == [(SKILL_QUEUE, 1, 2, 20), (IVR, 1, 1, 20)]
    assert list(response.families) == list(
        client.GetQuota(rpc.GetQuotaRequest(vdn_id=1), timeout=10).families
    )


def test_the_cap_of_20_campaigns_per_family_is_on_by_default(
    client: CampaignServiceStub,
) -> None:
    quotas = client.GetQuota(rpc.GetQuotaRequest(vdn_id=1), timeout=10).families
    limits = [(q.family, q.max_active_campaigns, q.HasField("max_campaigns")) for q in quotas]
    assert limits == [(SKILL_QUEUE, 20, True), (IVR, 20, True)]
    assert [q.max_campaigns for q in quotas] == [20, 20]
    assert [q.max_campaigns for q in listed(client).families] == [20, 20]


def test_another_tenants_campaigns_never_appear_or_count(client: CampaignServiceStub) -> None:
    mine = add(client, campaign("mine"))
    theirs = add(client, campaign("theirs"), vdn_id=2)
    their_ivr = add(client, ivr_campaign("their ivr", today=TODAY), vdn_id=2)
    response = listed(client)
    assert [r.id for r in response.campaigns] == [mine]
    assert response.total_size == 1
    assert [(f.active_campaigns, f.campaigns) for f in response.families] == [(1, 1), (0, 0)]
    assert usage(client) == {SKILL_QUEUE: (1, 1), IVR: (0, 0)}
    assert usage(client, 2) == {SKILL_QUEUE: (1, 1), IVR: (1, 1)}
    assert listed_ids(client, name_contains="theirs") == []
    assert listed_ids(client, 2, device_type=pb.DEVICE_TYPE_AUTOMATIC_IVR) == [their_ivr]
    assert set(listed_ids(client, 2)) == {theirs, their_ivr}


# -- update ------------------------------------------------------------------------------------


def test_update_replaces_the_whole_configuration(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    campaign_id = add(client, campaign("before"))
    clock.now = MORNING + timedelta(hours=1)
    changed = replacement("after")
    answered = update(client, campaign_id, changed)
    record = get(client, campaign_id)
    assert answered == record
    assert record.campaign == changed
    assert not record.campaign.HasField("priority")  # replaced, not merged
    assert (record.status, record.version, record.etag) == (EXECUTING, 2, "2")
    assert record.create_time.ToDatetime(tzinfo=UTC) == MORNING
    assert record.update_time.ToDatetime(tzinfo=UTC) == clock.now
    # The list shows the new name, and the old one is free.
    assert listed_ids(client, name_contains="after") == [campaign_id]
    assert listed_ids(client, name_contains="before") == []
    assert add(client, campaign("before"))


def test_update_keeps_the_status(client: CampaignServiceStub) -> None:
    paused = add(client, campaign("paused", paused=True))
    record = update(client, paused, replacement("still paused"))  # asks INIT_STATUS_EXECUTING
    assert (record.status, record.version) == (PAUSED, 2)
    stored = get(client, paused)
    assert stored.status == PAUSED
    assert stored.campaign.init_status == pb.INIT_STATUS_PAUSED
    # A campaign added without initStatus keeps having none.
    plain = campaign("plain")
    plain.ClearField("init_status")
    executing = add(client, plain)
    asks_paused = replacement("still executing")
    asks_paused.init_status = pb.INIT_STATUS_PAUSED
    assert update(client, executing, asks_paused).status == EXECUTING
    stored = get(client, executing)
    assert stored.status == EXECUTING
    assert not stored.campaign.HasField("init_status")


def test_update_cannot_change_the_device_type(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("skill queue"))
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=ivr_campaign("skill queue", today=TODAY)
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000009"
    assert failure.codes_by_field() == {"campaign.device_type": {"02000009"}}
    assert get(client, campaign_id).version == 1


def test_update_keeps_names_unique(client: CampaignServiceStub) -> None:
    add(client, campaign("first"))
    second = add(client, campaign("second"))
    request = rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=second, campaign=campaign("first"))
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "0200005"
    assert failure.codes_by_field() == {"campaign.name": {"0200005"}}
    assert get(client, second).campaign.name == "second"
    # Keeping its own name is fine.
    assert update(client, second, replacement("second")).version == 2


def test_update_with_a_stale_etag_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned"))
    update(client, campaign_id, replacement("versioned"), etag="1")
    before = get(client, campaign_id)
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=campaign("lost update"), etag="1"
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.ABORTED
    assert failure.reason == "0200001"
    assert failure.metadata["current_version"] == "2"
    assert get(client, campaign_id) == before
    request.etag = before.etag
    assert client.UpdateCampaign(request, timeout=10).campaign.version == 3
    assert get(client, campaign_id).campaign.name == "lost update"


def test_update_validate_only_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("original"))
    add(client, campaign("taken"))
    before = get(client, campaign_id)
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=replacement("checked"), validate_only=True
    )
    client.UpdateCampaign(request, timeout=10)
    assert get(client, campaign_id) == before
    assert listed_ids(client, name_contains="checked") == []
    # The database rules are checked too.
    request.campaign.name = "taken"
    assert refused(client.UpdateCampaign, request).reason == "0200005"


def test_an_ended_campaign_cannot_be_updated(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    campaign_id = add(client, campaign("ended"))
    clock.now = AFTER_THE_END
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=campaign("ended", day=AFTER_THE_END.date())
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "0200016"
    assert get(client, campaign_id).version == 1


def test_update_follows_the_rules_of_add(client: CampaignServiceStub, clock: FixedClock) -> None:
    campaign_id = add(client, campaign("ruled"))
    wrong_priority = campaign("ruled")
    wrong_priority.priority = 9
    request = rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=wrong_priority)
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.codes_by_field()) == {"campaign.priority"}
    unknown_queue = campaign("ruled")
    unknown_queue.skill_param.skill_id = 99
    request.campaign.CopyFrom(unknown_queue)
    failure = refused(client.UpdateCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200017")
    clock.now = MORNING + timedelta(days=1)  # the campaign's start is now before today
    request.campaign.CopyFrom(campaign("ruled"))
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "0200002"
    assert failure.codes_by_field() == {"campaign.str_begin_time": {"0200002"}}
    assert get(client, campaign_id).version == 1


def test_update_unknown_or_another_tenants_campaign_is_not_found(
    client: CampaignServiceStub,
) -> None:
    theirs = add(client, campaign("theirs"), vdn_id=2)
    for asked in (theirs + 1000, theirs):
        request = rpc.UpdateCampaignRequest(
            vdn_id=1, campaign_id=asked, campaign=campaign("theirs")
        )
        failure = refused(client.UpdateCampaign, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    assert get(client, theirs, vdn_id=2).version == 1


# -- pause and resume --------------------------------------------------------------------------


def test_pause_and_resume(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("switched"))
    paused = pause(client, campaign_id)
    assert (paused.status, paused.version, paused.etag) == (PAUSED, 2, "2")
    assert get(client, campaign_id) == paused
    failure = refused(
        client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200011")
    resumed = resume(client, campaign_id)
    assert (resumed.status, resumed.version) == (EXECUTING, 3)
    assert get(client, campaign_id) == resumed
    failure = refused(
        client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200011")
    assert get(client, campaign_id).version == 3


def test_an_ended_campaign_can_be_neither_paused_nor_resumed(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    executing = add(client, campaign("executing"))
    paused = add(client, campaign("paused", paused=True))
    clock.now = AFTER_THE_END
    for campaign_id in (executing, paused):
        for failure in (
            refused(
                client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id)
            ),
            refused(
                client.ResumeCampaign,
                rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id),
            ),
        ):
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "0200011",
            )
        assert get(client, campaign_id).version == 1


def test_pause_and_resume_with_etags(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned"))
    stale = refused(
        client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="7")
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).status == EXECUTING
    assert pause(client, campaign_id, etag="1").status == PAUSED
    stale = refused(
        client.ResumeCampaign,
        rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="1"),
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).status == PAUSED
    assert resume(client, campaign_id, etag="2").status == EXECUTING


def test_changes_to_another_tenants_campaign_are_not_found(client: CampaignServiceStub) -> None:
    theirs = add(client, campaign("theirs", paused=True), vdn_id=2)
    for call, request in (
        (client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=theirs)),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=theirs)),
        (client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=theirs)),
    ):
        failure = refused(call, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    record = get(client, theirs, vdn_id=2)
    assert (record.status, record.version) == (PAUSED, 1)


def test_changes_check_their_arguments(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("argued", paused=True))
    changes: list[tuple[Callable[..., object], Callable[..., Message]]] = [
        (client.PauseCampaign, rpc.PauseCampaignRequest),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest),
        (client.DeleteCampaign, rpc.DeleteCampaignRequest),
    ]
    for call, make in changes:
        unconfigured = refused(call, make(vdn_id=5, campaign_id=campaign_id))
        assert unconfigured.code == grpc.StatusCode.NOT_FOUND
        no_vdn = refused(call, make(vdn_id=0, campaign_id=campaign_id))
        assert no_vdn.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(no_vdn.codes_by_field()) == {"vdn_id"}
        no_id = refused(call, make(vdn_id=1, campaign_id=0))
        assert no_id.codes_by_field() == {"campaign_id": {"02000007"}}
        not_a_version = refused(call, make(vdn_id=1, campaign_id=campaign_id, etag="v1"))
        assert not_a_version.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(not_a_version.codes_by_field()) == {"etag"}
    assert get(client, campaign_id).version == 1


# -- delete ------------------------------------------------------------------------------------


def test_an_executing_campaign_cannot_be_deleted(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("running"))
    for archive in (False, True):
        request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, archive=archive)
        failure = refused(client.DeleteCampaign, request)
        assert (failure.code, failure.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "0200009",
        )
    assert get(client, campaign_id).version == 1


def test_a_deleted_campaign_is_gone_and_frees_its_name(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("doomed"))
    pause(client, campaign_id)
    assert usage(client)[SKILL_QUEUE] == (1, 1)
    delete(client, campaign_id)
    assert not_found(client, campaign_id)
    request = rpc.GetCampaignRequest(vdn_id=1, campaign_id=campaign_id, include_archived=True)
    assert refused(client.GetCampaign, request).code == grpc.StatusCode.NOT_FOUND
    assert usage(client)[SKILL_QUEUE] == (0, 0)
    assert listed_ids(client) == []
    assert listed_ids(client, archived=True) == []
    again = add(client, campaign("doomed"))
    assert again != campaign_id
    assert usage(client)[SKILL_QUEUE] == (1, 1)
    twice = refused(
        client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (twice.code, twice.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")


def test_an_archived_campaign_is_history(client: CampaignServiceStub, clock: FixedClock) -> None:
    accepted = campaign("history", paused=True)
    campaign_id = add(client, accepted)
    clock.now = MORNING + timedelta(hours=2)
    delete(client, campaign_id, archive=True)
    assert not_found(client, campaign_id)
    record = get(client, campaign_id, include_archived=True)
    assert record.campaign == accepted
    assert record.archive_time.ToDatetime(tzinfo=UTC) == clock.now
    assert record.status == PAUSED
    assert listed_ids(client) == []
    archived = listed(client, archived=True)
    assert list(archived.campaigns) == [record]
    assert archived.total_size == 1
    assert usage(client)[SKILL_QUEUE] == (0, 0)
    # The name is free again; the history may hold it more than once.
    again = add(client, campaign("history", paused=True))
    delete(client, again, archive=True)
    assert sorted(listed_ids(client, archived=True)) == [campaign_id, again]
    assert add(client, campaign("history"))
    # The history cannot be changed, nor deleted again.
    for call, request in (
        (client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id)),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)),
        (
            client.UpdateCampaign,
            rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=accepted),
        ),
    ):
        failure = refused(call, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    # Another tenant does not see it either.
    other_tenant = rpc.GetCampaignRequest(vdn_id=2, campaign_id=campaign_id, include_archived=True)
    assert refused(client.GetCampaign, other_tenant).code == grpc.StatusCode.NOT_FOUND


def test_an_ended_campaign_may_be_deleted(client: CampaignServiceStub, clock: FixedClock) -> None:
    campaign_id = add(client, campaign("ended"))
    clock.now = AFTER_THE_END
    assert usage(client)[SKILL_QUEUE] == (0, 1)
    delete(client, campaign_id)
    assert not_found(client, campaign_id)
    assert usage(client)[SKILL_QUEUE] == (0, 0)


def test_delete_with_a_stale_etag_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned", paused=True))
    request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="2")
    failure = refused(client.DeleteCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).version == 1
    request.etag = "1"
    client.DeleteCampaign(request, timeout=10)
    assert not_found(client, campaign_id)


# -- quotas, idempotency, ids ------------------------------------------------------------------


def test_deleting_makes_room_in_a_full_family(stub_with: StubFactory) -> None:
    client = stub_with(max_campaigns_per_family=2)
    first = add(client, campaign("first"))
    add(client, campaign("second"))
    failure = refused(client.AddCampaign, add_request(campaign("third")))
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.reason == "0200003"
    pause(client, first)
    assert refused(client.AddCampaign, add_request(campaign("third"))).reason == "0200003"
    delete(client, first)
    assert add(client, campaign("third"))
    assert refused(client.AddCampaign, add_request(campaign("fourth"))).reason == "0200003"


def test_archiving_makes_room_in_a_full_family(stub_with: StubFactory) -> None:
    client = stub_with(max_campaigns_per_family=1)
    first = add(client, campaign("first", paused=True))
    assert refused(client.AddCampaign, add_request(campaign("second"))).reason == "0200003"
    delete(client, first, archive=True)
    assert add(client, campaign("second"))


def test_an_idempotent_add_is_answered_again_after_changes_and_deletion(
    client: CampaignServiceStub,
) -> None:
    request = add_request(campaign("keyed"))
    request.idempotency_key = "order-42"
    first = client.AddCampaign(request, timeout=10)
    assert not first.replayed
    update(client, first.id, replacement("renamed"))
    add(client, campaign("keyed"))  # another campaign takes the name the add asked for
    again = client.AddCampaign(request, timeout=10)
    assert (again.id, again.replayed) == (first.id, True)
    assert len(listed_ids(client)) == 2
    assert get(client, first.id).campaign.name == "renamed"
    pause(client, first.id)
    delete(client, first.id)
    after_delete = client.AddCampaign(request, timeout=10)
    assert (after_delete.id, after_delete.replayed) == (first.id, True)
    assert not_found(client, first.id)
    assert len(listed_ids(client)) == 1
    assert usage(client)[SKILL_QUEUE] == (1, 1)


def test_ids_are_never_reused(client: CampaignServiceStub) -> None:
    older = add(client, campaign("older"))
    newest = add(client, campaign("newest"))
    pause(client, newest)
    delete(client, newest)
    latest = add(client, campaign("latest"))
    assert latest > max(older, newest)


def test_the_name_filter_matches_a_name_typed_another_way(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("caf\u00e9"))  # stored in NFC
    assert listed_ids(client, name_contains="cafe\u0301") == [campaign_id]  # asked in NFD


def test_an_idempotency_key_answers_retries_for_a_day(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    request = add_request(campaign("kept a day"))
    request.idempotency_key = "day-key"
    first = client.AddCampaign(request, timeout=10)
    clock.now = MORNING + timedelta(hours=23)
    assert client.AddCampaign(request, timeout=10).replayed
    # A day later the key is forgotten (when the tenant's next keyed add comes): the same
    # request is a new add, refused because its start day has passed, not answered again.
    clock.now = MORNING + timedelta(hours=25)
    later = add_request(campaign("a day later", day=TODAY + timedelta(days=1)))
    later.idempotency_key = "later-key"
    client.AddCampaign(later, timeout=10)
    failure = refused(client.AddCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "0200002")
    get(client, first.id)  # the campaign itself stays (NOT_FOUND would raise)


def test_a_key_reused_after_its_day_answers_for_its_new_add(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    def keyed(name: str, key: str) -> rpc.AddCampaignRequest:
        request = add_request(campaign(name, day=TODAY + timedelta(days=1)))
        request.idempotency_key = key
        return request

    first = client.AddCampaign(keyed("first", "reused-key"), timeout=10)
    # Another keyed add sweeps the expired keys just before the first key expires...
    clock.now = MORNING + timedelta(hours=24, seconds=-10)
    client.AddCampaign(keyed("sweeping", "other-key"), timeout=10)
    # ...so it has expired, but is still stored, when it comes again for another campaign.
    clock.now = MORNING + timedelta(hours=24, seconds=10)
    reused = client.AddCampaign(keyed("second", "reused-key"), timeout=10)
    assert not reused.replayed
    assert reused.id != first.id
    again = client.AddCampaign(keyed("second", "reused-key"), timeout=10)
    assert (again.id, again.replayed) == (reused.id, True)


def test_expired_keys_leave_the_table_with_the_tenants_next_keyed_add(
    client: CampaignServiceStub, clock: FixedClock, database_url: str
) -> None:
    """The keys' table stays bounded: a tenant's keys go once expired, at the first keyed
    add of that tenant after the sweep interval (a minute) since the last sweep."""

    def add_keyed(name: str, key: str, vdn_id: int = 1) -> None:
        request = add_request(campaign(name, day=TODAY + timedelta(days=2)), vdn_id=vdn_id)
        request.idempotency_key = key
        client.AddCampaign(request, timeout=10)

    for index in range(3):
        add_keyed(f"old {index}", f"old-{index}")
    add_keyed("other tenant", "other-tenant", vdn_id=2)
    assert stored_keys(database_url) == {
        (1, "old-0"),
        (1, "old-1"),
        (1, "old-2"),
        (2, "other-tenant"),
    }
    clock.now = MORNING + KEY_RETENTION + KEY_SWEEP_INTERVAL + timedelta(seconds=1)
    add_keyed("new", "new")
    assert stored_keys(database_url) == {(1, "new"), (2, "other-tenant")}


def stored_keys(database_url: str) -> set[tuple[int, str]]:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(idempotency_keys.c.vdn_id, idempotency_keys.c.key)
            ).all()
    finally:
        engine.dispose()
    return {(vdn_id, key) for vdn_id, key in rows}
