"""The status model: 2 executing, 3 suspended, 4 completed (final), and which change each
status allows. A campaign past its end time is completed: no background job expires it,
every reader derives it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from isales.campaign.v2.campaign_pb2 import CampaignStatus

from isales_campaign.service.errors import (
    CampaignEnded,
    CampaignNotFound,
    CampaignStarted,
    StaleVersion,
    StatusConflict,
)

if TYPE_CHECKING:
    from isales_campaign.service.db.store import CampaignRow

_EXECUTING = CampaignStatus.CAMPAIGN_STATUS_EXECUTING
_PAUSED = CampaignStatus.CAMPAIGN_STATUS_PAUSED
_COMPLETED = CampaignStatus.CAMPAIGN_STATUS_COMPLETED

_STATUS_NAMES = {
    _EXECUTING: "executing (2)",
    _PAUSED: "suspended (3)",
    _COMPLETED: "completed (4)",
    CampaignStatus.CAMPAIGN_STATUS_UNSPECIFIED: "unknown",
}


def effective_status(stored: int, end_at: datetime, now: datetime) -> CampaignStatus.ValueType:
    """Stored status, except that a campaign past its end time is completed (`now` naive UTC)."""
    if end_at <= now:
        return _COMPLETED
    return CampaignStatus.ValueType(stored)


def initial_status(paused: bool) -> CampaignStatus.ValueType:
    """initStatus 0 starts executing (2), 1 creates the campaign suspended (3)."""
    return _PAUSED if paused else _EXECUTING


def current(vdn_id: int, campaign_id: int, row: CampaignRow | None, etag: str) -> CampaignRow:
    """The live campaign a change is for, at the version the caller expects (an archived
    campaign is no longer there to change)."""
    if row is None or row.archived_at is not None:
        raise CampaignNotFound(vdn_id, campaign_id)
    if etag and int(etag) != row.version:
        raise StaleVersion(row.id, int(etag), row.version)
    return row


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
