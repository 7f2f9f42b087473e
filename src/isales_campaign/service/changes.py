"""The change history's use cases: a page of a tenant's changes, and a watch of them (which
the process's `change_feed` serves)."""

from __future__ import annotations

from isales.campaign.v2.campaign_change_pb2 import CampaignChange, ChangeKind
from isales.campaign.v2.campaign_pb2 import CampaignStatus
from isales.campaign.v2.campaign_service_pb2 import (
    ListCampaignChangesRequest,
    ListCampaignChangesResponse,
    WatchCampaignChangesRequest,
)

from isales_campaign.paging import DEFAULT_PAGE_SIZE
from isales_campaign.service import validation
from isales_campaign.service.change_feed import ChangeFeed, ChangePage, Watcher
from isales_campaign.service.db.store import CampaignStore, ChangeRow, HistoryQuery
from isales_campaign.service.domain import history
from isales_campaign.service.errors import CampaignNotFound
from isales_campaign.service.timestamps import set_time
from isales_campaign.service.validation import require_valid


class ChangeHistory:
    def __init__(self, store: CampaignStore, feed: ChangeFeed) -> None:
        self._store = store
        self._feed = feed
        validation.prepare(ListCampaignChangesRequest, WatchCampaignChangesRequest)

    def list_changes(self, request: ListCampaignChangesRequest) -> ListCampaignChangesResponse:
        require_valid(request)
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        campaign_id = request.campaign_id if request.HasField("campaign_id") else None
        rows, latest, oldest = self._store.history(
            HistoryQuery(request.vdn_id, request.after_sequence, page_size + 1, campaign_id)
        )
        history.check_retained(request.vdn_id, request.after_sequence, oldest)
        if campaign_id is not None and not rows and request.after_sequence == 0:
            raise CampaignNotFound(request.vdn_id, campaign_id)  # no history in this tenant
        page = rows[:page_size]
        response = ListCampaignChangesResponse(
            next_after_sequence=page[-1].sequence if len(rows) > page_size else 0,
            latest_sequence=latest,
            oldest_sequence=oldest,
        )
        for row in page:
            fill_change(response.changes.add(), row)
        return response

    def watch(self, request: WatchCampaignChangesRequest) -> Watcher:
        """A watcher of the tenant's changes (`Watcher.events`); refused at once for a bad
        request or an unknown tenant."""
        require_valid(request)
        self._store.tenant(request.vdn_id)
        return self._feed.watch(request.vdn_id, request.after_sequence)


def read_changes(store: CampaignStore, vdn_id: int, after: int, limit: int) -> ChangePage:
    """The feed's reads: up to `limit` of the tenant's changes after `after`."""
    rows, latest, oldest = store.history(HistoryQuery(vdn_id, after, limit))
    changes = []
    for row in rows:
        change = CampaignChange()
        fill_change(change, row)
        changes.append(change)
    return ChangePage(changes, latest, oldest)


def fill_change(change: CampaignChange, row: ChangeRow) -> None:
    change.vdn_id = row.vdn_id
    change.sequence = row.sequence
    change.campaign_id = row.campaign_id
    change.kind = ChangeKind.ValueType(row.kind)
    change.version = row.version
    set_time(change.change_time, row.change_time)
    change.actor.MergeFromString(row.actor)
    change.campaign.MergeFromString(row.config)
    change.status = CampaignStatus.ValueType(row.status)
    if row.changed_fields:
        change.changed_fields.paths.extend(row.changed_fields.split(","))
