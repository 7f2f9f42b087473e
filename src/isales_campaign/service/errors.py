"""Every error of the service: the refusals it answers callers with (`ServiceError`), and
the errors of operating it (a seed file, a migration, a listen address).

A refusal says what is wrong, in the caller's terms: the legacy result code, a message, the
fields and quotas at fault. How each is answered over gRPC (its status code and rich status)
is decided in one place, `answers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isales_campaign.result_codes import (
    MAX_REPORTED_PROBLEMS,
    PROBLEM_COUNT_KEY,
    ResultCode,
    combined_code,
)

if TYPE_CHECKING:
    import grpc


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


#: The status message names this many; `BadRequest` has the rest.
MAX_SUMMARIZED_PROBLEMS = 5


class ServiceError(Exception):
    """An answer other than success; `answers` maps each subclass to its gRPC status code."""

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


class InvalidArgument(ServiceError):
    """The request breaks rules of the contract or of the domain."""

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
    def __init__(self, vdn_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_INVALID_VALUE,
            "vdn_id",
            f"VDN {vdn_id} is not configured in this service",
        )


class SkillQueueNotFound(FieldError):
    def __init__(self, vdn_id: int, skill_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_SKILL_QUEUE_NOT_FOUND,
            "campaign.skill_param.skill_id",
            f"skill queue {skill_id} does not exist in VDN {vdn_id}",
        )


class NameTaken(FieldError):
    def __init__(self, vdn_id: int, name: str) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_NAME_NOT_UNIQUE,
            "campaign.name",
            f"a campaign named {name!r} already exists in VDN {vdn_id}",
        )


class IdempotencyKeyReused(FieldError):
    def __init__(self, vdn_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_INVALID_COMBINATION,
            "idempotency_key",
            f"the idempotency key was used in VDN {vdn_id} for a different campaign",
        )


class CampaignNotFound(ServiceError):
    """Unknown, deleted, or another tenant's: callers cannot tell these apart."""

    def __init__(self, vdn_id: int, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_NOT_FOUND,
            f"campaign {campaign_id} does not exist in VDN {vdn_id}",
        )


class StatusConflict(ServiceError):
    def __init__(self, campaign_id: int, action: str, status: str) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_STATUS_CONFLICT,
            f"campaign {campaign_id} is {status}: the current status does not allow it to be "
            f"{action}",
        )


class CampaignStarted(ServiceError):
    def __init__(self, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_STARTED,
            f"campaign {campaign_id} is still started: suspend it before deleting it",
        )


class CampaignEnded(ServiceError):
    def __init__(self, campaign_id: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CAMPAIGN_ENDED,
            f"campaign {campaign_id} has already ended and cannot be modified",
        )


class StaleVersion(ServiceError):
    """The caller's etag names a version that is no longer current."""

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
    def __init__(self, code: ResultCode.ValueType, quota: QuotaProblem) -> None:
        super().__init__(
            code,
            quota.description,
            quotas=[quota],
            metadata={"limit": str(quota.limit), "usage": str(quota.usage)},
        )


class HistoryPruned(ServiceError):
    """A reader's cursor is older than the retained history."""

    def __init__(self, vdn_id: int, after: int, oldest: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_PARAMETER_ERROR,
            f"the changes of VDN {vdn_id} after sequence {after} are no longer all retained: "
            f"the oldest is {oldest}; list the campaigns again and go on from the latest "
            "sequence",
            metadata={"oldest_sequence": str(oldest)},
        )


class DatabaseUnavailable(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "database operation error; nothing was changed, the request may be retried",
        )


class OutcomeUnknown(ServiceError):
    """The database did not confirm a commit in time: the change may or may not be stored."""

    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "the database did not confirm the change in time; it may have been made: read "
            "the campaign (or retry an add with its idempotency key) to learn whether it was",
        )


class CallerNotAuthorized(ServiceError):
    def __init__(self, reason: str) -> None:
        super().__init__(ResultCode.RESULT_CODE_PARAMETER_ERROR, reason)


class MalformedRequest(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CONVERSION_ERROR,
            "the request is not a valid protobuf message of this method's request type",
        )


class WatchersExhausted(ServiceError):
    """The process serves as many watchers as it takes (ISALES_MAX_WATCHERS)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            f"this server already serves {limit} watchers; watch through another replica or "
            "retry later",
            metadata={"limit": str(limit)},
        )


class WatchEnded(ServiceError):
    """A watch ended by the server, after sending every change up to `sequence`: the watcher
    resumes after it."""

    def __init__(self, vdn_id: int, sequence: int, why: str) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            f"the watch of VDN {vdn_id} ended: {why}; every change up to sequence {sequence} "
            f"was sent, resume after it",
            metadata={"resume_after_sequence": str(sequence)},
        )


class WatcherTooSlow(WatchEnded):
    def __init__(self, vdn_id: int, sequence: int) -> None:
        super().__init__(vdn_id, sequence, "the watcher did not keep up with the changes")


class WatchInterrupted(WatchEnded):
    def __init__(self, vdn_id: int, sequence: int) -> None:
        super().__init__(vdn_id, sequence, "the server is shutting down")


class ShuttingDown(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "the server is shutting down; nothing was changed, retry on another replica",
        )


class UnknownAccessKey(ServiceError):
    def __init__(self) -> None:
        super().__init__(ResultCode.RESULT_CODE_INVALID_VALUE, "unknown access key")


class PageTokenRefused(ValueError):
    """A page token cannot continue this list; the message says why, for the caller."""


# -- errors of operating the service (the CLI says them in one line) ----------------------


class SeedError(ValueError):
    """The seed file is not valid; nothing of it was applied."""


class MigrationError(Exception):
    """The database cannot be brought to the revision asked for; nothing was changed."""


class MigrationRefused(MigrationError):
    """A downgrade would lose data that the older revision has no place for."""


class DatabaseFailed(Exception):
    """A command that looks after the database (`isales migrate --status`, `isales seed`,
    `isales tenants`) could not read or change it; the message is the driver's reason, its
    first line (never a statement or its parameters). Nothing was changed."""


class ListenError(Exception):
    """The gRPC server cannot listen on its address."""


class DatabaseUnreachable(Exception):
    """The database of ISALES_DATABASE_URL cannot be opened; the message says why in one
    line, without the password."""


class CallFailed(Exception):
    """A call is answered with `status` (the call chain has logged why)."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.details)
        self.status = status
