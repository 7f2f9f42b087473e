"""Quotas (`domain.quotas`): per tenant and device family, campaigns not yet ended and campaigns
in all. On their own, which limit a new campaign would pass; then as a client sees them over
gRPC, on SQLite and on PostgreSQL: the default caps, the usage a list and GetQuota tell, and
room made by deleting or archiving. The quota refusals of an add are in test_add_campaign.py.

The service runs on a clock the tests set by hand (the `clock` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.result_codes import legacy_code
from isales_campaign.service.answers import status_code
from isales_campaign.service.domain.quotas import CampaignLimits, Family, FamilyUsage, check_room
from isales_campaign.service.errors import QuotaExceeded
from tests.conftest import FixedClock
from tests.examples import add_request, ivr_campaign
from tests.service.helpers import (
    IVR,
    SKILL_QUEUE,
    TODAY,
    StubFactory,
    add,
    campaign,
    delete,
    listed,
    pause,
    refused,
)

# -- quotas on their own -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device_type", "family"),
    [
        (pb.DEVICE_TYPE_PREDICTED, Family.SKILL_QUEUE),
        (pb.DEVICE_TYPE_PREVIEWED, Family.SKILL_QUEUE),
        (pb.DEVICE_TYPE_PREEMPTED, Family.SKILL_QUEUE),
        (pb.DEVICE_TYPE_INTELLIGENT_IVR, Family.IVR),
        (pb.DEVICE_TYPE_AUTOMATIC_IVR, Family.IVR),
    ],
)
def test_each_device_type_counts_in_its_family(
    device_type: pb.DeviceType.ValueType, family: Family
) -> None:
    assert Family.of(device_type) is family


LIMITS = CampaignLimits(active=2, total=3)


def test_a_campaign_that_fits_both_limits_is_not_refused() -> None:
    for usage_now in (FamilyUsage(0, 0), FamilyUsage(1, 2), FamilyUsage(0, 2)):
        check_room(1, Family.SKILL_QUEUE, usage_now, LIMITS)


@pytest.mark.parametrize(
    ("usage_now", "metric", "limit", "counted"),
    [
        (FamilyUsage(active=2, total=2), "active_campaigns", 2, 2),
        (FamilyUsage(active=1, total=3), "campaigns", 3, 3),
        (FamilyUsage(active=2, total=3), "campaigns", 3, 3),  # the cap of all is named first
        (FamilyUsage(active=5, total=9), "campaigns", 3, 9),  # above a lowered limit
    ],
)
def test_a_campaign_beyond_a_limit_is_refused_naming_it(
    usage_now: FamilyUsage, metric: str, limit: int, counted: int
) -> None:
    with pytest.raises(QuotaExceeded) as refusal:
        check_room(4, Family.SKILL_QUEUE, usage_now, LIMITS)
    assert legacy_code(refusal.value.code) == "0200003"
    assert status_code(refusal.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
    [quota] = refusal.value.quotas
    assert (quota.subject, quota.metric, quota.limit, quota.usage) == (
        "vdn:4/family:skill-queue",
        metric,
        limit,
        counted,
    )
    assert refusal.value.metadata == {"limit": str(limit), "usage": str(counted)}


def test_the_ivr_family_has_a_code_of_its_own() -> None:
    with pytest.raises(QuotaExceeded) as refusal:
        check_room(1, Family.IVR, FamilyUsage(active=2, total=2), LIMITS)
    assert legacy_code(refusal.value.code) == "0200004"
    assert refusal.value.quotas[0].subject == "vdn:1/family:IVR"


# -- as a client sees them ---------------------------------------------------------------------


def test_the_cap_of_20_campaigns_per_family_is_on_by_default(
    client: CampaignServiceStub,
) -> None:
    quotas = client.GetQuota(rpc.GetQuotaRequest(vdn_id=1), timeout=10).families
    limits = [(q.family, q.max_active_campaigns, q.HasField("max_campaigns")) for q in quotas]
    assert limits == [(SKILL_QUEUE, 20, True), (IVR, 20, True)]
    assert [q.max_campaigns for q in quotas] == [20, 20]
    assert [q.max_campaigns for q in listed(client).families] == [20, 20]


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
