"""GetCampaign and ListCampaigns end to end over gRPC, on SQLite and on PostgreSQL: a campaign
as accepted, the list's order, pages, totals and filters, and each tenant seeing its own.

The service runs on a clock the tests set by hand (the `clock` fixture), so that "today" and
creation times are exact. Page tokens are in test_page_tokens.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import FixedClock
from tests.examples import ivr_campaign
from tests.service.helpers import (
    AFTER_THE_END,
    COMPLETED,
    EXECUTING,
    IVR,
    MORNING,
    PAUSED,
    SKILL_QUEUE,
    TODAY,
    add,
    campaign,
    delete,
    get,
    listed,
    listed_ids,
    refused,
    update,
    usage,
)

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


def test_the_name_filter_matches_a_name_typed_another_way(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("caf\u00e9"))  # stored in NFC
    assert listed_ids(client, name_contains="cafe\u0301") == [campaign_id]  # asked in NFD


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
