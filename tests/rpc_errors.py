"""Reading rich gRPC errors the way a client would."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    #: (field path, legacy code, description) per violation.
    violations: list[tuple[str, str, str]] = field(default_factory=list)
    quotas: list[error_details_pb2.QuotaFailure.Violation] = field(default_factory=list)

    def codes_by_field(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for path, code, _ in self.violations:
            found.setdefault(path, set()).add(code)
        return found


def failure_of(error: grpc.RpcError) -> Failure:
    assert isinstance(error, grpc.Call)
    failure = Failure(code=error.code(), message=error.details() or "")
    status = rpc_status.from_call(error)
    if status is None:
        return failure
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            failure.reason = info.reason
            failure.metadata = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            failure.violations = [(v.field, v.reason, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            failure.quotas = list(quota.violations)
    return failure
