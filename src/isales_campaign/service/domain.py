"""Domain facts of outbound campaigns that the contract alone cannot state."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from isales.campaign.v2.campaign_pb2 import Campaign, CampaignStatus, DeviceType

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.errors import (
    CampaignEnded,
    CampaignStarted,
    QuotaExceeded,
    QuotaProblem,
    StatusConflict,
)

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


def nfc(text: str) -> str:
    """Unicode NFC, so that one text typed two ways (a composed "é" and "e" + U+0301) is
    one text."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def normalize_text(campaign: Campaign) -> None:
    """Names and descriptions are kept in NFC. (Only a change is written: writing a field
    would make an absent campaign present.)"""
    name, description = nfc(campaign.name), nfc(campaign.description)
    if name != campaign.name:
        campaign.name = name
    if description != campaign.description:
        campaign.description = description


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


_EXECUTING = CampaignStatus.CAMPAIGN_STATUS_EXECUTING
_PAUSED = CampaignStatus.CAMPAIGN_STATUS_PAUSED
_COMPLETED = CampaignStatus.CAMPAIGN_STATUS_COMPLETED


def effective_status(stored: int, end_at: datetime, now: datetime) -> CampaignStatus.ValueType:
    """Stored status, except that a campaign past its end time is completed (`now` naive UTC):
    expiry needs no background job, every reader derives it."""
    if end_at <= now:
        return _COMPLETED
    return CampaignStatus.ValueType(stored)


def initial_status(paused: bool) -> CampaignStatus.ValueType:
    """initStatus 0 starts executing (2), 1 creates the campaign suspended (3)."""
    return _PAUSED if paused else _EXECUTING


def paused(campaign_id: int, status: CampaignStatus.ValueType) -> CampaignStatus.ValueType:
    """The status after suspending: only an executing campaign can be suspended."""
    if status != _EXECUTING:
        raise StatusConflict(campaign_id, "suspended", _STATUS_NAMES[status])
    return _PAUSED


def resumed(campaign_id: int, status: CampaignStatus.ValueType) -> CampaignStatus.ValueType:
    """The status after resuming: only a suspended campaign can be resumed."""
    if status != _PAUSED:
        raise StatusConflict(campaign_id, "resumed", _STATUS_NAMES[status])
    return _EXECUTING


def check_modifiable(campaign_id: int, status: CampaignStatus.ValueType) -> None:
    """An ended campaign cannot be modified (status 4 is final)."""
    if status == _COMPLETED:
        raise CampaignEnded(campaign_id)


def check_deletable(campaign_id: int, status: CampaignStatus.ValueType) -> None:
    """An executing campaign must be suspended (or have ended) before it is deleted."""
    if status == _EXECUTING:
        raise CampaignStarted(campaign_id)


_STATUS_NAMES = {
    _EXECUTING: "executing (2)",
    _PAUSED: "suspended (3)",
    _COMPLETED: "completed (4)",
    CampaignStatus.CAMPAIGN_STATUS_UNSPECIFIED: "unknown",
}


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """Per tenant and device family: campaigns not yet ended, and campaigns in all (ended
    ones included, until deleted or archived; the vendor's 20)."""

    active: int = 20
    total: int = 20


DEFAULT_LIMITS = CampaignLimits()


@dataclass(frozen=True, slots=True)
class FamilyUsage:
    """A tenant's live campaigns of one family: those not ended, and all of them."""

    active: int = 0
    total: int = 0


_QUOTA_CODES = {
    Family.SKILL_QUEUE: ResultCode.RESULT_CODE_SKILL_QUEUE_CAMPAIGN_LIMIT,
    Family.IVR: ResultCode.RESULT_CODE_IVR_CAMPAIGN_LIMIT,
}


def has_room(usage: FamilyUsage, limits: CampaignLimits) -> bool:
    """Whether one more campaign fits both limits."""
    return usage.total < limits.total and usage.active < limits.active


def check_room(vdn_id: int, family: Family, usage: FamilyUsage, limits: CampaignLimits) -> None:
    """Refuses one more campaign of `family` when it does not fit the tenant's limits,
    naming the limit it would pass."""
    if has_room(usage, limits):
        return
    label = family.label
    if usage.total >= limits.total:
        raise _quota_exceeded(
            vdn_id,
            family,
            "campaigns",
            limits.total,
            usage.total,
            f"{usage.total} {label} campaigns, ended ones included; the limit is "
            f"{limits.total}: delete one before adding another",
        )
    if usage.active >= limits.active:
        raise _quota_exceeded(
            vdn_id,
            family,
            "active_campaigns",
            limits.active,
            usage.active,
            f"{usage.active} active {label} campaigns; the limit is {limits.active}: "
            "delete or let one end before adding another",
        )


def _quota_exceeded(
    vdn_id: int, family: Family, metric: str, limit: int, usage: int, situation: str
) -> QuotaExceeded:
    return QuotaExceeded(
        _QUOTA_CODES[family],
        QuotaProblem(
            subject=f"vdn:{vdn_id}/family:{family.label}",
            metric=metric,
            description=f"VDN {vdn_id} already has {situation}",
            limit=limit,
            usage=usage,
        ),
    )


def utc_naive(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None)
