"""Quotas: campaigns per tenant and device family, those not ended and all of them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from isales.campaign.v2.campaign_pb2 import DeviceType

from isales_campaign.config import Settings
from isales_campaign.result_codes import ResultCode
from isales_campaign.service.errors import QuotaExceeded, QuotaProblem


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


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    """Per tenant and device family: campaigns not yet ended, and campaigns in all (ended
    ones included, until deleted or archived)."""

    active: int
    total: int

    @classmethod
    def of(cls, settings: Settings) -> CampaignLimits:
        return cls(active=settings.max_active_tasks, total=settings.max_campaigns_per_family)


#: The vendor's limits, as the settings' defaults hold them.
DEFAULT_LIMITS = CampaignLimits.of(Settings())


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
