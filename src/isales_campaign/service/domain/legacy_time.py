"""The vendor's times: `yyyy-MM-dd HH:mm:ss` in the tenant's zone, stored as naive UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The shape the contract's rules give legacy times (its CEL `matches`, without anchors).
LEGACY_TIME_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
_LEGACY_TIME = re.compile(LEGACY_TIME_PATTERN)


def parse_local_time(text: str, zone: ZoneInfo) -> datetime:
    """A legacy `yyyy-MM-dd HH:mm:ss` in `zone`, as naive UTC. Raises ValueError."""
    # fromisoformat is exact on this shape and many times faster than strptime.
    if not _LEGACY_TIME.fullmatch(text):
        raise ValueError(f"not formatted as {LEGACY_TIME_FORMAT}: {text!r}")
    local = datetime.fromisoformat(text).replace(tzinfo=zone)
    try:
        return local.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 shifted out of the calendar
        raise ValueError(f"out of range in UTC: {text!r}") from None


def start_of_local_day(now: datetime, zone: ZoneInfo) -> datetime:
    """00:00 of the day `now` (aware) falls on in `zone`, as naive UTC."""
    local = now.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def utc_naive(now: datetime) -> datetime:
    """An aware time as the store keeps times: naive UTC."""
    return now.astimezone(UTC).replace(tzinfo=None)
