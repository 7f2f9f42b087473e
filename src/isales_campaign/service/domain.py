"""Domain facts of outbound campaigns that the contract alone cannot state."""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from isales.campaign.v2.campaign_pb2 import CampaignStatus, DeviceType

LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class Family(enum.IntEnum):
    """Device families; quotas count campaigns per tenant and family."""

    SKILL_QUEUE = 1
    IVR = 2

    @classmethod
    def of(cls, device_type: DeviceType.ValueType) -> Family:
        if device_type in (
            DeviceType.DEVICE_TYPE_INTELLIGENT_IVR,
            DeviceType.DEVICE_TYPE_AUTOMATIC_IVR,
        ):
            return cls.IVR
        return cls.SKILL_QUEUE

    @property
    def label(self) -> str:
        return "skill-queue" if self is Family.SKILL_QUEUE else "IVR"


_LEGACY_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


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


def effective_status(stored: int, end_at: datetime, now: datetime) -> CampaignStatus.ValueType:
    """Stored status, except that a campaign past its end time is completed."""
    if end_at <= now.astimezone(UTC).replace(tzinfo=None):
        return CampaignStatus.CAMPAIGN_STATUS_COMPLETED
    return CampaignStatus.ValueType(stored)


def utc_naive(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None)
