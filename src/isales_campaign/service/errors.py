"""The errors the service answers with, as rich `google.rpc.Status` values.

Every error carries an `ErrorInfo` whose `reason` is the legacy result code.
Input problems add a `BadRequest` with one field violation per problem (its
`reason` is that problem's legacy code); quota problems add a `QuotaFailure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from isales_campaign.internal_token import presents
from isales_campaign.result_codes import (
    PROBLEM_COUNT_KEY,
    ResultCode,
    combined_code,
    legacy_code,
)

ERROR_DOMAIN = "isales.campaign.v2"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one field of a request."""

    #: Dotted path of proto field names from the request, e.g. `campaign.caller_no[0].priority`.
    path: str
    code: ResultCode.ValueType
    message: str


@dataclass(frozen=True, slots=True)
class QuotaProblem:
    subject: str
    #: `campaigns` (ended ones included) or `active_campaigns`.
    metric: str
    description: str
    limit: int
    usage: int


#: Status details travel in a gRPC trailer, which clients refuse beyond 8-16 KiB,
#: so `BadRequest` lists the first problems only (PROBLEM_COUNT_KEY counts all).
MAX_REPORTED_PROBLEMS = 20
#: The status message names this many; `BadRequest` has the rest.
MAX_SUMMARIZED_PROBLEMS = 5


class ServiceError(Exception):
    """An answer other than success. Subclasses fix the gRPC status code."""

    status_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(
        self,
        code: ResultCode.ValueType,
        message: str,
        *,
        fields: Sequence[FieldProblem] = (),
        quotas: Sequence[QuotaProblem] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.metadata = dict(metadata or {})
        self.code = code
        self.message = message
        self.fields = tuple(fields)
        self.quotas = tuple(quotas)

    def to_status(self) -> status_pb2.Status:
        details = [
            error_details_pb2.ErrorInfo(
                reason=legacy_code(self.code),
                domain=ERROR_DOMAIN,
                metadata={"result_code": ResultCode.Name(self.code), **self.metadata},
            )
        ]
        if self.fields:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=p.path, description=p.message, reason=legacy_code(p.code)
                        )
                        for p in self.fields
                    ]
                )
            )
        if self.quotas:
            details.append(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=q.subject,
                            description=q.description,
                            quota_metric=q.metric,
                            quota_value=q.limit,
                        )
                        for q in self.quotas
                    ]
                )
            )
        packed = []
        for detail in details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(
            code=self.status_code.value[0], message=self.message, details=packed
        )


class InvalidArgument(ServiceError):
    """The request breaks rules of the contract or of the domain."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        code = combined_code(p.code for p in problems)
        summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:MAX_SUMMARIZED_PROBLEMS])
        if len(problems) > MAX_SUMMARIZED_PROBLEMS:
            summary += f"; and {len(problems) - MAX_SUMMARIZED_PROBLEMS} more"
        super().__init__(
            code,
            f"invalid request: {summary}",
            fields=problems[:MAX_REPORTED_PROBLEMS],
            metadata={PROBLEM_COUNT_KEY: str(len(problems))},
        )


class FieldError(ServiceError):
    """A problem with one field that only the service's state reveals."""

    def __init__(self, code: ResultCode.ValueType, path: str, message: str) -> None:
        super().__init__(code, message, fields=[FieldProblem(path, code, message)])


class TenantNotFound(FieldError):
    status_code = grpc.StatusCode.NOT_FOUND

    def __init__(self, vdn_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_INVALID_VALUE,
            "vdn_id",
            f"VDN {vdn_id} is not configured in this service",
        )


class SkillQueueNotFound(FieldError):
    status_code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, vdn_id: int, skill_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_SKILL_QUEUE_NOT_FOUND,
            "campaign.skill_param.skill_id",
            f"skill queue {skill_id} does not exist in VDN {vdn_id}",
        )


class NameTaken(FieldError):
    status_code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, vdn_id: int, name: str) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_NAME_NOT_UNIQUE,
            "campaign.name",
            f"a campaign named {name!r} already exists in VDN {vdn_id}",
        )


class IdempotencyKeyReused(FieldError):
    status_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, vdn_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_INVALID_COMBINATION,
            "idempotency_key",
            f"the idempotency key was used in VDN {vdn_id} for a different campaign",
        )


class CampaignNotFound(ServiceError):
    """Unknown, deleted, or another tenant's: callers cannot tell these apart."""

    status_code = grpc.StatusCode.NOT_FOUND

    def __init__(self, vdn_id: int, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_NOT_FOUND,
            f"campaign {campaign_id} does not exist in VDN {vdn_id}",
        )


class StatusConflict(ServiceError):
    status_code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, campaign_id: int, action: str, status: str) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_STATUS_CONFLICT,
            f"campaign {campaign_id} is {status}: the current status does not allow it to be "
            f"{action}",
        )


class CampaignStarted(ServiceError):
    status_code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_STARTED,
            f"campaign {campaign_id} is still started: suspend it before deleting it",
        )


class CampaignEnded(ServiceError):
    status_code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_ENDED,
            f"campaign {campaign_id} has already ended and cannot be modified",
        )


class StaleVersion(ServiceError):
    """The caller's etag names a version that is no longer current."""

    status_code = grpc.StatusCode.ABORTED

    def __init__(self, campaign_id: int, expected: int, current: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_PARAMETER_ERROR,
            f"campaign {campaign_id} has changed: the etag names version {expected}, the "
            f"current one is {current}; read it again and retry",
            fields=[
                FieldProblem(
                    "etag",
                    ResultCode.RESULT_CODE_PARAMETER_ERROR,
                    f"is stale (current version {current})",
                )
            ],
            metadata={"current_version": str(current)},
        )


class QuotaExceeded(ServiceError):
    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, code: ResultCode.ValueType, quota: QuotaProblem) -> None:
        super().__init__(
            code,
            quota.description,
            quotas=[quota],
            metadata={"limit": str(quota.limit), "usage": str(quota.usage)},
        )


class DatabaseUnavailable(ServiceError):
    status_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "database operation error; nothing was changed, the request may be retried",
        )


class OutcomeUnknown(ServiceError):
    """The database did not confirm a commit in time: the change may or may not be stored."""

    status_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "the database did not confirm the change in time; it may have been made: read "
            "the campaign (or retry an add with its idempotency key) to learn whether it was",
        )


class CallerNotAuthorized(ServiceError):
    status_code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(self, reason: str) -> None:
        super().__init__(ResultCode.RESULT_CODE_PARAMETER_ERROR, reason)


def check_internal_token(metadata: Iterable[tuple[str, str | bytes]], token: str) -> None:
    """CallerNotAuthorized unless the call presents the internal token."""
    if not token:
        raise CallerNotAuthorized("this service has no internal token (ISALES_INTERNAL_TOKEN)")
    if not presents(metadata, token):
        raise CallerNotAuthorized("missing or wrong internal token")
