"""The campaign use cases. Each goes through its layers in order: the contract's rules
(`validation`), the domain's decisions (`domain`) on facts the store reads, then the store's
change, under the tenant's lock; and back once, with its response or a `ServiceError` (which
the call chain answers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.message import Message
from isales.campaign.v2.campaign_change_pb2 import ChangeKind
from isales.campaign.v2.campaign_pb2 import Campaign, CampaignStatus, InitStatus
from isales.campaign.v2.campaign_service_pb2 import (
    AddCampaignRequest,
    AddCampaignResponse,
    CampaignFamily,
    CampaignRecord,
    DeleteCampaignRequest,
    DeleteCampaignResponse,
    FamilyQuota,
    GetCampaignRequest,
    GetCampaignResponse,
    GetQuotaRequest,
    GetQuotaResponse,
    ListCampaignsRequest,
    ListCampaignsResponse,
    PauseCampaignRequest,
    PauseCampaignResponse,
    ResumeCampaignRequest,
    ResumeCampaignResponse,
    UpdateCampaignRequest,
    UpdateCampaignResponse,
)

from isales_campaign.config import Deployment
from isales_campaign.paging import DEFAULT_PAGE_SIZE
from isales_campaign.result_codes import ResultCode
from isales_campaign.service import validation
from isales_campaign.service.caller import current_actor
from isales_campaign.service.db.store import (
    PAGE_TOKEN_KEY_NAME,
    CampaignRow,
    CampaignStore,
    CampaignValues,
    ChangeRecord,
    Conflicts,
    ListQuery,
    Position,
    StoredKey,
    TenantTransaction,
)
from isales_campaign.service.domain import (
    campaign_rules,
    history,
    idempotency,
    quotas,
    transitions,
)
from isales_campaign.service.domain.campaign_rules import flagged, time_of
from isales_campaign.service.domain.legacy_time import utc_naive
from isales_campaign.service.domain.quotas import (
    DEFAULT_LIMITS,
    CampaignLimits,
    Family,
    FamilyUsage,
)
from isales_campaign.service.domain.transitions import effective_status
from isales_campaign.service.errors import (
    CampaignNotFound,
    FieldProblem,
    InvalidArgument,
    PageTokenRefused,
)
from isales_campaign.service.page_tokens import PageTokens
from isales_campaign.service.timestamps import set_time
from isales_campaign.service.validation import contract_problems, require_valid

#: The requests this service validates.
_REQUESTS = (
    AddCampaignRequest,
    DeleteCampaignRequest,
    GetCampaignRequest,
    GetQuotaRequest,
    ListCampaignsRequest,
    PauseCampaignRequest,
    ResumeCampaignRequest,
    UpdateCampaignRequest,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_FAMILIES = {
    Family.SKILL_QUEUE: CampaignFamily.CAMPAIGN_FAMILY_SKILL_QUEUE,
    Family.IVR: CampaignFamily.CAMPAIGN_FAMILY_IVR,
}


def system_clock() -> datetime:
    return datetime.now(UTC)


class CampaignService:
    """The use cases, free of gRPC transport: each raises a `ServiceError` or succeeds."""

    def __init__(
        self,
        store: CampaignStore,
        *,
        limits: CampaignLimits = DEFAULT_LIMITS,
        deployment: Deployment = Deployment.CLOUD,
        clock: Clock = system_clock,
    ) -> None:
        self._store = store
        self._limits = limits
        self._deployment = deployment
        self._clock = clock
        self._tokens: PageTokens | None = None
        validation.prepare(*_REQUESTS)

    # -- add -------------------------------------------------------------------------------

    def add(self, request: AddCampaignRequest) -> AddCampaignResponse:
        validation.normalize_text(request.campaign)
        problems = _tenant_problems(request)
        tenant = self._store.tenant(request.vdn_id)
        now = self._clock()
        times = campaign_rules.campaign_times(
            request.campaign, tenant.time_zone, now, self._deployment, problems
        )
        if times is None:
            return self._retry_of_earlier_day(request, problems, now)
        values = _values(request.campaign, times)
        key = request.idempotency_key
        asked = idempotency.digest(values.config) if key else b""
        status = transitions.initial_status(
            request.campaign.init_status == InitStatus.INIT_STATUS_PAUSED
        )
        moment = utc_naive(now)
        with self._store.unit_of_work(request.vdn_id) as transaction:
            facts = transaction.facts_of_new(values, moment, key=key)
            if facts.earlier is not None:
                return _replayed(idempotency.replayed(request.vdn_id, facts.earlier, asked))
            _check_conflicts(request.vdn_id, values, facts.conflicts)
            quotas.check_room(request.vdn_id, values.family, facts.usage, self._limits)
            if request.validate_only:
                return AddCampaignResponse(id=0, status=status)
            new_id = transaction.insert(values, status=status, now=moment)
            kind = ChangeKind.CHANGE_KIND_ADDED
            transaction.record(_change(new_id, kind, 1, moment, values.config, status))
            if key:
                transaction.remember_key(key, asked, new_id, status, moment)
        log.info(
            "campaign added",
            extra={"vdn_id": request.vdn_id, "campaign_id": new_id, "family": values.family.label},
        )
        return AddCampaignResponse(id=new_id, status=status)

    def _retry_of_earlier_day(
        self, request: AddCampaignRequest, problems: list[FieldProblem], now: datetime
    ) -> AddCampaignResponse:
        """The refusal of an add with `problems`, unless it is the retry of an add that was
        made on an earlier day (see `idempotency.may_retry_an_earlier_day`): that is answered
        with the campaign the first attempt stored. Under the tenant's lock, so a first
        attempt still in flight is waited for."""
        key = request.idempotency_key
        if idempotency.may_retry_an_earlier_day(key, problems):
            asked = idempotency.digest(request.campaign.SerializeToString(deterministic=True))
            with self._store.unit_of_work(request.vdn_id) as transaction:
                stored = transaction.stored_key(key, utc_naive(now))
            if stored is not None:
                return _replayed(idempotency.replayed(request.vdn_id, stored, asked))
        raise InvalidArgument(problems)

    # -- read ------------------------------------------------------------------------------

    def get(self, request: GetCampaignRequest) -> GetCampaignResponse:
        require_valid(request)
        self._store.tenant(request.vdn_id)
        row = self._store.campaign(request.vdn_id, request.campaign_id)
        if row is None or (row.archived_at is not None and not request.include_archived):
            raise CampaignNotFound(request.vdn_id, request.campaign_id)
        return GetCampaignResponse(campaign=_record(row, utc_naive(self._clock())))

    def list_campaigns(self, request: ListCampaignsRequest) -> ListCampaignsResponse:
        request.name_contains = validation.nfc(request.name_contains)  # as names are stored
        problems = _tenant_problems(request)
        tenant = self._store.tenant(request.vdn_id)
        begin_from = _filter_time(
            request.begin_time_from, "begin_time_from", tenant.time_zone, problems
        )
        end_to = _filter_time(request.end_time_to, "end_time_to", tenant.time_zone, problems)
        after = self._position(request, problems)
        if problems:
            raise InvalidArgument(problems)
        now = utc_naive(self._clock())
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        rows, total, usage = self._store.campaigns(
            ListQuery(
                vdn_id=request.vdn_id,
                now=now,
                limit=page_size + 1,  # one more tells whether a next page exists
                skip=request.skip,
                after=after,
                name_contains=request.name_contains,
                status=request.status,
                device_type=request.device_type,
                begin_from=begin_from,
                end_to=end_to,
                cc_id=request.cc_id if request.HasField("cc_id") else None,
                archived=request.archived,
            )
        )
        page = rows[:page_size]
        response = ListCampaignsResponse(
            next_page_token=self._next_page_token(page[-1], request)
            if len(rows) > page_size
            else "",
            total_size=total,
            families=self._quotas(usage),
        )
        for row in page:
            _fill_record(response.campaigns.add(), row, now)
        return response

    def _position(
        self, request: ListCampaignsRequest, problems: list[FieldProblem]
    ) -> Position | None:
        """Where the list goes on, from the request's page token (None: from the start)."""
        if not request.page_token or flagged("page_token", problems):
            return None
        try:
            return self._page_tokens().read(request.page_token, request)
        except PageTokenRefused as refused:
            problems.append(
                FieldProblem("page_token", ResultCode.RESULT_CODE_INVALID_VALUE, str(refused))
            )
            return None

    def _next_page_token(self, row: CampaignRow, request: ListCampaignsRequest) -> str:
        return self._page_tokens().issue(Position(row.created_at, row.id), request)

    def _page_tokens(self) -> PageTokens:
        """Read on first use: the key is in the database, made by the migrations."""
        if self._tokens is None:
            self._tokens = PageTokens(self._store.secret(PAGE_TOKEN_KEY_NAME))
        return self._tokens

    def quota(self, request: GetQuotaRequest) -> GetQuotaResponse:
        require_valid(request)
        self._store.tenant(request.vdn_id)
        usage = self._store.usage(request.vdn_id, utc_naive(self._clock()))
        return GetQuotaResponse(families=self._quotas(usage))

    def _quotas(self, usage: dict[Family, FamilyUsage]) -> list[FamilyQuota]:
        quotas = []
        for family in (Family.SKILL_QUEUE, Family.IVR):
            used = usage.get(family, FamilyUsage())
            quotas.append(
                FamilyQuota(
                    family=_FAMILIES[family],
                    active_campaigns=used.active,
                    max_active_campaigns=self._limits.active,
                    campaigns=used.total,
                    max_campaigns=self._limits.total,
                )
            )
        return quotas

    # -- change ----------------------------------------------------------------------------

    def update(self, request: UpdateCampaignRequest) -> UpdateCampaignResponse:
        validation.normalize_text(request.campaign)
        problems = _tenant_problems(request)
        tenant = self._store.tenant(request.vdn_id)
        now = self._clock()
        times = campaign_rules.campaign_times(
            request.campaign, tenant.time_zone, now, self._deployment, problems
        )
        if times is None:
            raise InvalidArgument(problems)
        moment = utc_naive(now)
        with self._store.unit_of_work(request.vdn_id) as transaction:
            row = _current(transaction, request)
            transitions.check_modifiable(row.id, effective_status(row.status, row.end_at, moment))
            campaign_rules.check_device_type_kept(row.device_type, request.campaign.device_type)
            campaign = Campaign()
            campaign.CopyFrom(request.campaign)
            stored = Campaign.FromString(row.config)
            campaign_rules.keep_init_status(campaign, stored)
            values = _values(campaign, times)
            _check_conflicts(
                request.vdn_id, values, transaction.facts_of_change(values, exclude_id=row.id)
            )
            if request.validate_only:
                return UpdateCampaignResponse(campaign=_record(row, moment))
            transaction.update(row, now=moment, values=values)
            paths = history.changed_fields(stored, campaign)
            transaction.record(
                _change(
                    row.id,
                    ChangeKind.CHANGE_KIND_MODIFIED,
                    row.version + 1,
                    moment,
                    values.config,
                    effective_status(row.status, row.end_at, moment),
                    paths,
                )
            )
        changed = _changed(row, moment, values=values)
        log.info("campaign modified", extra={"vdn_id": row.vdn_id, "campaign_id": row.id})
        return UpdateCampaignResponse(campaign=_record(changed, moment))

    def pause(self, request: PauseCampaignRequest) -> PauseCampaignResponse:
        return PauseCampaignResponse(
            campaign=self._change_status(
                request, transitions.paused, ChangeKind.CHANGE_KIND_PAUSED, "campaign suspended"
            )
        )

    def resume(self, request: ResumeCampaignRequest) -> ResumeCampaignResponse:
        return ResumeCampaignResponse(
            campaign=self._change_status(
                request, transitions.resumed, ChangeKind.CHANGE_KIND_RESUMED, "campaign resumed"
            )
        )

    def _change_status(
        self,
        request: PauseCampaignRequest | ResumeCampaignRequest,
        transition: Callable[[int, CampaignStatus.ValueType], CampaignStatus.ValueType],
        kind: ChangeKind.ValueType,
        event: str,
    ) -> CampaignRecord:
        require_valid(request)
        moment = utc_naive(self._clock())
        with self._store.unit_of_work(request.vdn_id) as transaction:
            row = _current(transaction, request)
            status = transition(row.id, effective_status(row.status, row.end_at, moment))
            transaction.update(row, now=moment, status=status)
            transaction.record(_change(row.id, kind, row.version + 1, moment, row.config, status))
        log.info(event, extra={"vdn_id": row.vdn_id, "campaign_id": row.id})
        return _record(_changed(row, moment, status=status), moment)

    def delete(self, request: DeleteCampaignRequest) -> DeleteCampaignResponse:
        require_valid(request)
        moment = utc_naive(self._clock())
        with self._store.unit_of_work(request.vdn_id) as transaction:
            row = _current(transaction, request)
            status = effective_status(row.status, row.end_at, moment)
            transitions.check_deletable(row.id, status)
            if request.archive:
                transaction.update(row, now=moment, archived=True)
                kind = ChangeKind.CHANGE_KIND_ARCHIVED
            else:
                transaction.delete(row)
                kind = ChangeKind.CHANGE_KIND_DELETED
            transaction.record(_change(row.id, kind, row.version, moment, row.config, status))
        log.info(
            "campaign archived" if request.archive else "campaign deleted",
            extra={"vdn_id": row.vdn_id, "campaign_id": row.id},
        )
        return DeleteCampaignResponse()


def _change(
    campaign_id: int,
    kind: ChangeKind.ValueType,
    version: int,
    now: datetime,
    config: bytes,
    status: int,
    changed_fields: list[str] | None = None,
) -> ChangeRecord:
    """The record of a change being made, by the caller being served."""
    return ChangeRecord(
        campaign_id=campaign_id,
        kind=int(kind),
        version=version,
        change_time=now,
        actor=current_actor().SerializeToString(),
        config=config,
        status=status,
        changed_fields=",".join(changed_fields or ()),
    )


def _replayed(earlier: StoredKey) -> AddCampaignResponse:
    """The answer to a retry: what the add with its idempotency key answered."""
    return AddCampaignResponse(
        id=earlier.campaign_id, status=CampaignStatus.ValueType(earlier.status), replayed=True
    )


def _check_conflicts(vdn_id: int, values: CampaignValues, conflicts: Conflicts) -> None:
    campaign_rules.check_conflicts(
        vdn_id,
        values.name,
        values.skill_id,
        queue_exists=conflicts.queue_exists,
        name_taken=conflicts.name_taken,
    )


def _values(campaign: Campaign, times: tuple[datetime, datetime]) -> CampaignValues:
    """The row of a campaign that passed every rule; `times` as `campaign_times` read them."""
    family = Family.of(campaign.device_type)
    return CampaignValues(
        name=campaign.name,
        family=family,
        device_type=int(campaign.device_type),
        skill_id=campaign.skill_param.skill_id if family is Family.SKILL_QUEUE else None,
        begin_at=times[0],
        end_at=times[1],
        cc_id=campaign.cc_id if campaign.HasField("cc_id") else None,
        config=campaign.SerializeToString(deterministic=True),
    )


def _tenant_problems(request: Message) -> list[FieldProblem]:
    """The contract's problems; raised at once when the VDN itself is wrong, since every
    further rule needs the tenant."""
    problems = contract_problems(request)
    if any(p.path == "vdn_id" for p in problems):
        raise InvalidArgument(problems)
    return problems


def _current(
    transaction: TenantTransaction,
    request: UpdateCampaignRequest
    | PauseCampaignRequest
    | ResumeCampaignRequest
    | DeleteCampaignRequest,
) -> CampaignRow:
    """The live campaign a change is for, at the version the caller expects."""
    row = transaction.campaign(request.campaign_id)
    return transitions.current(request.vdn_id, request.campaign_id, row, request.etag)


def _changed(
    row: CampaignRow,
    now: datetime,
    *,
    values: CampaignValues | None = None,
    status: int | None = None,
) -> CampaignRow:
    """The row as a change just wrote it."""
    changes: dict[str, Any] = {"version": row.version + 1, "updated_at": now}
    if status is not None:
        changes["status"] = status
    if values is not None:
        changes["end_at"] = values.end_at
        changes["config"] = values.config
    return row._replace(**changes)


def _record(row: CampaignRow, now: datetime) -> CampaignRecord:
    record = CampaignRecord()
    _fill_record(record, row, now)
    return record


def _fill_record(record: CampaignRecord, row: CampaignRow, now: datetime) -> None:
    """Set `record` (empty) from `row`, in place: a list page fills its hundred records
    where they are, instead of building each and copying it in."""
    record.id = row.id
    record.vdn_id = row.vdn_id
    record.status = effective_status(row.status, row.end_at, now)
    record.version = row.version
    record.etag = str(row.version)
    set_time(record.create_time, row.created_at)
    set_time(record.update_time, row.updated_at)
    record.campaign.MergeFromString(row.config)
    if row.archived_at is not None:
        set_time(record.archive_time, row.archived_at)


def _filter_time(
    text: str, field: str, zone: ZoneInfo, problems: list[FieldProblem]
) -> datetime | None:
    if not text or flagged(field, problems):
        return None
    return time_of(text, field, zone, problems)
