"""The vendor's times (`domain.legacy_time`): `yyyy-MM-dd HH:mm:ss` in a tenant's zone, stored as
naive UTC, and the start of a tenant's day."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from isales_campaign.service.domain.legacy_time import parse_local_time, start_of_local_day

KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14
PAGO_PAGO = ZoneInfo("Pacific/Pago_Pago")  # UTC-11


@pytest.mark.parametrize(
    ("text", "zone", "utc"),
    [
        ("2026-11-27 00:00:00", KIRITIMATI, datetime(2026, 11, 26, 10, 0)),
        ("2026-11-25 23:00:00", PAGO_PAGO, datetime(2026, 11, 26, 10, 0)),
        ("2026-11-26 10:00:00", ZoneInfo("UTC"), datetime(2026, 11, 26, 10, 0)),
        ("2026-12-31 23:59:59", KIRITIMATI, datetime(2026, 12, 31, 9, 59, 59)),
    ],
)
def test_a_legacy_time_is_read_in_the_tenants_zone(
    text: str, zone: ZoneInfo, utc: datetime
) -> None:
    assert parse_local_time(text, zone) == utc


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26 10:00:00\n",
        "2026-11-26T10:00:00",
        "2026-1-26 10:00:00",
        "2026-11-26 10:00",
        "2026-11-26",
        "\uff12\uff10\uff12\uff16-11-26 10:00:00",  # digits, but not ASCII ones
    ],
)
def test_a_text_of_another_shape_is_not_a_legacy_time(text: str) -> None:
    with pytest.raises(ValueError, match="not formatted as"):
        parse_local_time(text, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    "text",
    ["2026-02-29 10:00:00", "2026-11-31 10:00:00", "2026-11-26 24:00:00", "2026-11-26 10:60:00"],
)
def test_a_day_or_time_that_does_not_exist_is_not_a_legacy_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"out of range|must be in"):
        parse_local_time(text, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("text", "zone"),
    [("0001-01-01 00:00:00", ZoneInfo("Asia/Shanghai")), ("9999-12-31 23:59:59", PAGO_PAGO)],
)
def test_a_time_beyond_the_calendar_in_utc_is_not_one(text: str, zone: ZoneInfo) -> None:
    with pytest.raises(ValueError, match="out of range in UTC"):
        parse_local_time(text, zone)


@pytest.mark.parametrize(
    ("zone", "midnight"),
    [
        (KIRITIMATI, datetime(2026, 11, 26, 10, 0)),  # 00:00 of the 27th there
        (PAGO_PAGO, datetime(2026, 11, 25, 11, 0)),  # 00:00 of the 25th there
        (ZoneInfo("UTC"), datetime(2026, 11, 26, 0, 0)),
    ],
)
def test_the_day_starts_at_midnight_of_the_tenants_zone(zone: ZoneInfo, midnight: datetime) -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert start_of_local_day(now, zone) == midnight
