"""How the service answers over gRPC: the one table from each refusal to its status code,
and the rich `google.rpc.Status` it is sent as.

Every refusal carries an `ErrorInfo` whose `reason` is the legacy result code. Input problems
add a `BadRequest` with one field violation per problem (its `reason` is that problem's legacy
code); quota problems add a `QuotaFailure`. Anything that is not a refusal is INTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.errors import (
    CallerNotAuthorized,
    CampaignEnded,
    CampaignNotFound,
    CampaignStarted,
    DatabaseUnavailable,
    HistoryPruned,
    IdempotencyKeyReused,
    InvalidArgument,
    MalformedRequest,
    NameTaken,
    OutcomeUnknown,
    QuotaExceeded,
    ServiceError,
    ShuttingDown,
    SkillQueueNotFound,
    StaleVersion,
    StatusConflict,
    TenantNotFound,
    UnknownAccessKey,
    WatchersExhausted,
    WatcherTooSlow,
    WatchInterrupted,
)

ERROR_DOMAIN = "isales.campaign.v2"

#: Each refusal's gRPC status code. "Outcome unknown" shares UNAVAILABLE with "nothing was
#: changed", and its message tells them apart.
STATUS_CODES: dict[type[ServiceError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    MalformedRequest: grpc.StatusCode.INVALID_ARGUMENT,
    IdempotencyKeyReused: grpc.StatusCode.INVALID_ARGUMENT,
    TenantNotFound: grpc.StatusCode.NOT_FOUND,
    CampaignNotFound: grpc.StatusCode.NOT_FOUND,
    UnknownAccessKey: grpc.StatusCode.NOT_FOUND,
    NameTaken: grpc.StatusCode.ALREADY_EXISTS,
    SkillQueueNotFound: grpc.StatusCode.FAILED_PRECONDITION,
    StatusConflict: grpc.StatusCode.FAILED_PRECONDITION,
    HistoryPruned: grpc.StatusCode.FAILED_PRECONDITION,
    CampaignStarted: grpc.StatusCode.FAILED_PRECONDITION,
    CampaignEnded: grpc.StatusCode.FAILED_PRECONDITION,
    StaleVersion: grpc.StatusCode.ABORTED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WatchersExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    # Not UNAVAILABLE: resuming at once would only fall behind again.
    WatcherTooSlow: grpc.StatusCode.ABORTED,
    WatchInterrupted: grpc.StatusCode.UNAVAILABLE,
    DatabaseUnavailable: grpc.StatusCode.UNAVAILABLE,
    OutcomeUnknown: grpc.StatusCode.UNAVAILABLE,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    CallerNotAuthorized: grpc.StatusCode.UNAUTHENTICATED,
}

#: Refusals made before the service did anything, which another server (or this one, a
#: moment later) takes: they carry a `RetryInfo` (AIP-194) with no delay, the service's word
#: that sending the call again at once is safe, a change included, and worth it.
RETRY_AT_ONCE: frozenset[type[ServiceError]] = frozenset({ShuttingDown})
#: UNAVAILABLE answers that sending the call again at once would not mend (the database
#: failed, or may have made the change): they carry the gRPC trailer that stops a client's
#: retry policy (gRFC A6, "server pushback"); their callers retry later, if at all.
NO_RETRY_NOW: frozenset[type[ServiceError]] = frozenset({DatabaseUnavailable, OutcomeUnknown})
PUSHBACK_KEY = "grpc-retry-pushback-ms"
#: A negative pushback: do not retry.
NO_RETRY_PUSHBACK = (PUSHBACK_KEY, "-1")


@dataclass(frozen=True, slots=True)
class _Status(grpc.Status):
    """A status with trailing metadata of its own."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


#: Anything that is not a refusal: a fault of the service.
INTERNAL = rpc_status.to_status(
    status_pb2.Status(
        code=grpc.StatusCode.INTERNAL.value[0], message="internal error; nothing was changed"
    )
)
#: A call whose deadline passed before it started (waiting for a worker): it is not run.
DEADLINE_PASSED = rpc_status.to_status(
    status_pb2.Status(code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0], message="Deadline Exceeded")
)


def status_code(error: ServiceError) -> grpc.StatusCode:
    return STATUS_CODES.get(type(error), grpc.StatusCode.INTERNAL)


def status_of(error: ServiceError) -> grpc.Status:
    """The rich status a refusal is answered with (and the trailer of NO_RETRY_NOW)."""
    status = rpc_status.to_status(rich_status(error))
    if type(error) not in NO_RETRY_NOW:
        return status
    trailing = (*status.trailing_metadata, NO_RETRY_PUSHBACK)
    return _Status(status.code, status.details, trailing)


def rich_status(error: ServiceError) -> status_pb2.Status:
    details: list[Message] = [
        error_details_pb2.ErrorInfo(
            reason=legacy_code(error.code),
            domain=ERROR_DOMAIN,
            metadata={"result_code": ResultCode.Name(error.code), **error.metadata},
        )
    ]
    if error.fields:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=p.path, description=p.message, reason=legacy_code(p.code)
                    )
                    for p in error.fields
                ]
            )
        )
    if error.quotas:
        details.append(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=q.subject,
                        description=q.description,
                        quota_metric=q.metric,
                        quota_value=q.limit,
                    )
                    for q in error.quotas
                ]
            )
        )
    if type(error) in RETRY_AT_ONCE:
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration()))
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(
        code=status_code(error).value[0], message=error.message, details=packed
    )
