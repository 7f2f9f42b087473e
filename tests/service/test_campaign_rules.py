"""The rules of a campaign that the contract cannot state (`domain.campaign_rules`), on their
own: the times in the tenant's zone and "not before today" on either side of the date line,
the OP deployment's call centre, a unique name and an existing queue, the device type and the
initial status kept. Over gRPC they are in test_add_campaign.py and test_update_campaign.py."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from isales.campaign.v2 import campaign_pb2 as pb

from isales_campaign.config import Deployment
from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.domain.campaign_rules import (
    campaign_times,
    check_conflicts,
    check_device_type_kept,
    keep_init_status,
)
from isales_campaign.service.errors import (
    FieldProblem,
    InvalidArgument,
    NameTaken,
    SkillQueueNotFound,
)
from tests.examples import example_campaign

#: 10:00 UTC: already the 27th at UTC+14 (Kiritimati), still the 25th at UTC-11 (Pago Pago).
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")


def timed(begin: str, end: str = "2026-11-28 23:59:59") -> pb.Campaign:
    campaign = example_campaign()
    campaign.str_begin_time, campaign.str_end_time = begin, end
    return campaign


def problems_of(
    campaign: pb.Campaign, zone: ZoneInfo, deployment: Deployment = Deployment.CLOUD
) -> list[tuple[str, str]]:
    problems: list[FieldProblem] = []
    campaign_times(campaign, zone, NOW, deployment, problems)
    return [(p.path, legacy_code(p.code)) for p in problems]


@pytest.mark.parametrize(
    ("zone", "today", "yesterday"),
    [
        (KIRITIMATI, "2026-11-27 00:00:00", "2026-11-26 23:59:59"),
        (PAGO_PAGO, "2026-11-25 00:00:00", "2026-11-24 23:59:59"),
        (ZoneInfo("UTC"), "2026-11-26 00:00:00", "2026-11-25 23:59:59"),
    ],
    ids=["a day ahead of UTC", "a day behind UTC", "UTC"],
)
def test_today_is_the_tenants_day(zone: ZoneInfo, today: str, yesterday: str) -> None:
    assert problems_of(timed(today), zone) == []
    assert problems_of(timed(yesterday), zone) == [("campaign.str_begin_time", "0200002")]


def test_the_times_are_the_tenants_and_answered_in_utc() -> None:
    problems: list[FieldProblem] = []
    begin_and_end = campaign_times(
        timed("2026-11-27 00:00:00", "2026-11-28 13:59:59"),
        KIRITIMATI,
        NOW,
        Deployment.CLOUD,
        problems,
    )
    assert problems == []
    assert begin_and_end == (datetime(2026, 11, 26, 10, 0), datetime(2026, 11, 27, 23, 59, 59))


def test_a_time_that_is_not_a_real_one_is_a_conversion_error() -> None:
    campaign = timed("2026-11-27 00:00:00", "2026-11-31 00:00:00")
    assert problems_of(campaign, KIRITIMATI) == [("campaign.str_end_time", "02000008")]


def test_a_time_the_contract_refused_is_not_judged_again() -> None:
    problems = [
        FieldProblem("campaign.str_begin_time", ResultCode.RESULT_CODE_EMPTY_PARAMETER, "empty")
    ]
    answer = campaign_times(timed(""), KIRITIMATI, NOW, Deployment.CLOUD, problems)
    assert answer is None
    assert [p.path for p in problems] == ["campaign.str_begin_time"]


def test_the_op_deployment_needs_a_call_centre() -> None:
    campaign = timed("2026-11-27 00:00:00")
    assert problems_of(campaign, KIRITIMATI, Deployment.OP) == [("campaign.cc_id", "02000001")]
    campaign.cc_id = 1
    assert problems_of(campaign, KIRITIMATI, Deployment.OP) == []


def test_a_missing_queue_is_refused_before_a_taken_name() -> None:
    with pytest.raises(SkillQueueNotFound) as missing:
        check_conflicts(1, "name", 99, queue_exists=False, name_taken=True)
    assert legacy_code(missing.value.code) == "0200017"
    with pytest.raises(NameTaken) as taken:
        check_conflicts(1, "name", 2, queue_exists=True, name_taken=True)
    assert [(p.path, legacy_code(p.code)) for p in taken.value.fields] == [
        ("campaign.name", "0200005")
    ]
    # An IVR campaign names no queue.
    check_conflicts(1, "name", None, queue_exists=False, name_taken=False)


def test_the_device_type_cannot_change() -> None:
    check_device_type_kept(pb.DEVICE_TYPE_PREDICTED, pb.DEVICE_TYPE_PREDICTED)
    with pytest.raises(InvalidArgument) as refusal:
        check_device_type_kept(pb.DEVICE_TYPE_PREDICTED, pb.DEVICE_TYPE_PREVIEWED)
    assert [(p.path, legacy_code(p.code)) for p in refusal.value.fields] == [
        ("campaign.device_type", "02000009")
    ]


@pytest.mark.parametrize("stored_status", [pb.INIT_STATUS_PAUSED, None])
def test_a_modification_keeps_the_initial_status_it_was_added_with(
    stored_status: pb.InitStatus.ValueType | None,
) -> None:
    stored = example_campaign()
    if stored_status is None:
        stored.ClearField("init_status")
    else:
        stored.init_status = stored_status
    asked = example_campaign()  # asks INIT_STATUS_EXECUTING
    keep_init_status(asked, stored)
    assert asked.HasField("init_status") is (stored_status is not None)
    assert asked.init_status == stored.init_status
