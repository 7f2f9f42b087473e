"""Adding campaigns: contract rules, domain rules, then the store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from isales.campaign.v2.campaign_pb2 import Campaign, CampaignStatus, InitStatus
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest
from sqlalchemy.exc import DataError, SQLAlchemyError

from isales_campaign.config import Deployment
from isales_campaign.result_codes import ResultCode
from isales_campaign.service.db.store import (
    DEFAULT_LIMITS,
    CampaignLimits,
    CampaignStore,
    NewCampaign,
    Tenant,
)
from isales_campaign.service.domain import (
    Family,
    parse_local_time,
    start_of_local_day,
    utc_naive,
)
from isales_campaign.service.errors import (
    DatabaseUnavailable,
    FieldProblem,
    InvalidArgument,
    ServiceError,
    TenantNotFound,
)
from isales_campaign.service.validation import contract_problems

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DomainCheck:
    problems: list[FieldProblem]
    #: The parsed times, naive UTC, where they parse.
    begin_at: datetime | None
    end_at: datetime | None


@dataclass(frozen=True, slots=True)
class AddedCampaign:
    id: int
    status: CampaignStatus.ValueType
    replayed: bool = False


class CampaignService:
    """The use cases, free of gRPC: each raises a `ServiceError` or succeeds."""

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

    def add(self, request: AddCampaignRequest) -> AddedCampaign:
        problems = contract_problems(request)
        if any(p.path == "vdn_id" for p in problems):
            raise InvalidArgument(problems)
        try:
            tenant = self._store.tenant(request.vdn_id)
            if tenant is None:
                raise TenantNotFound(request.vdn_id)
            now = self._clock()
            campaign = request.campaign
            checked = self._domain_rules(campaign, tenant, now, problems)
            problems += checked.problems
            if problems:
                earlier = self._retry_of_earlier_day(request, problems)
                if earlier is not None:
                    return earlier
                raise InvalidArgument(problems)
            # Without problems both times parsed.
            assert checked.begin_at is not None
            assert checked.end_at is not None
            new = self._new_campaign(request, checked.begin_at, checked.end_at)
            stored = self._store.add(
                new,
                limits=self._limits,
                now=utc_naive(now),
                validate_only=request.validate_only,
            )
        except ServiceError:
            raise
        except DataError:
            # A value the contract let through but the database refuses: the
            # request's fault, so retrying would not help.
            log.warning("the database refused a value of an AddCampaign request")
            raise InvalidArgument([_UNSTORABLE]) from None
        except SQLAlchemyError:
            log.exception("database operation failed while adding a campaign")
            raise DatabaseUnavailable() from None
        if not request.validate_only and not stored.replayed:
            log.info(
                "campaign added",
                extra={
                    "vdn_id": request.vdn_id,
                    "campaign_id": stored.id,
                    "family": new.family.label,
                },
            )
        return AddedCampaign(
            id=stored.id, status=CampaignStatus.ValueType(stored.status), replayed=stored.replayed
        )

    def _retry_of_earlier_day(
        self, request: AddCampaignRequest, problems: list[FieldProblem]
    ) -> AddedCampaign | None:
        """A retry refused only because the day has changed since its first attempt is
        answered with the campaign that attempt stored."""
        if not request.idempotency_key or any(
            p.code != ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY for p in problems
        ):
            return None
        earlier = self._store.earlier_add(
            request.vdn_id,
            request.idempotency_key,
            request.campaign.SerializeToString(deterministic=True),
        )
        if earlier is None:
            return None
        return AddedCampaign(
            id=earlier.id, status=CampaignStatus.ValueType(earlier.status), replayed=True
        )

    def _domain_rules(
        self, campaign: Campaign, tenant: Tenant, now: datetime, found: list[FieldProblem]
    ) -> DomainCheck:
        """Rules that need the tenant's zone, the clock or the deployment."""
        problems: list[FieldProblem] = []
        begin = end = None
        begin_path = "campaign.str_begin_time"
        if not _flagged(begin_path, found):
            try:
                begin = parse_local_time(campaign.str_begin_time, tenant.time_zone)
            except ValueError:
                problems.append(_not_a_time(begin_path))
            else:
                if begin < start_of_local_day(now, tenant.time_zone):
                    problems.append(
                        FieldProblem(
                            begin_path,
                            ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY,
                            f"must not be earlier than 00:00 of the current day "
                            f"({tenant.time_zone.key})",
                        )
                    )
        end_path = "campaign.str_end_time"
        if not _flagged(end_path, found):
            try:
                end = parse_local_time(campaign.str_end_time, tenant.time_zone)
            except ValueError:
                problems.append(_not_a_time(end_path))
        if self._deployment is Deployment.OP and not campaign.HasField("cc_id"):
            problems.append(
                FieldProblem(
                    "campaign.cc_id",
                    ResultCode.RESULT_CODE_EMPTY_PARAMETER,
                    "is mandatory in the OP deployment",
                )
            )
        return DomainCheck(problems, begin, end)

    @staticmethod
    def _new_campaign(request: AddCampaignRequest, begin: datetime, end: datetime) -> NewCampaign:
        campaign = request.campaign
        family = Family.of(campaign.device_type)
        paused = campaign.init_status == InitStatus.INIT_STATUS_PAUSED
        return NewCampaign(
            vdn_id=request.vdn_id,
            name=campaign.name,
            family=family,
            device_type=int(campaign.device_type),
            skill_id=campaign.skill_param.skill_id if family is Family.SKILL_QUEUE else None,
            status=int(
                CampaignStatus.CAMPAIGN_STATUS_PAUSED
                if paused
                else CampaignStatus.CAMPAIGN_STATUS_EXECUTING
            ),
            begin_at=begin,
            end_at=end,
            config=campaign.SerializeToString(deterministic=True),
            idempotency_key=request.idempotency_key or None,
        )


_UNSTORABLE = FieldProblem(
    "campaign", ResultCode.RESULT_CODE_PARAMETER_ERROR, "holds a value the database cannot store"
)


def _flagged(path: str, problems: list[FieldProblem]) -> bool:
    """Whether the field or one of its parents already has a problem."""
    return any(path == p.path or path.startswith(p.path + ".") for p in problems)


def _not_a_time(path: str) -> FieldProblem:
    return FieldProblem(
        path, ResultCode.RESULT_CODE_CONVERSION_ERROR, "is not a valid date and time"
    )
