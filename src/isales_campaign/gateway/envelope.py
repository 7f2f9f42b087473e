"""The legacy response envelope, and the legacy code and description of problems and of the
service's refusals (which HTTP status goes with them is for `answers` to say).

`{"resultCode","resultDesc","returnCode","returnDesc"[,"returnObject"]}`, keys in that order,
code and description repeated, as the vendor's example response shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from isales_campaign.gateway.legacy_json import lower_camel, renamed_fields
from isales_campaign.gateway.problems import Problem
from isales_campaign.result_codes import (
    MAX_REPORTED_PROBLEMS,
    PROBLEM_COUNT_KEY,
    ResultCode,
    combined_code,
    from_legacy,
    legacy_code,
)

SUCCESS = legacy_code(ResultCode.RESULT_CODE_SUCCESS)
PARAMETER_ERROR = legacy_code(ResultCode.RESULT_CODE_PARAMETER_ERROR)
DATABASE_ERROR = legacy_code(ResultCode.RESULT_CODE_DATABASE_ERROR)

_SEGMENT = re.compile(r"([a-z0-9_]+)((?:\[\d+\])*)")


def render(
    code: str,
    desc: str = "",
    return_object: dict[str, Any] | None = None,
    *,
    top_level: Mapping[str, Any] | None = None,
) -> bytes:
    """The envelope; `top_level` holds answers that stand beside its keys (the list's)."""
    document: dict[str, Any] = {
        "resultCode": code,
        "resultDesc": desc,
        "returnCode": code,
        "returnDesc": desc,
    }
    if return_object is not None:
        document["returnObject"] = return_object
    if top_level:
        document.update(top_level)
    return orjson.dumps(document)


def json_path(proto_path: str, parameters: Mapping[str, str] | None = None) -> str:
    """`campaign.caller_no[1].access_code` -> `callerNo[1].accessCode`; `vdn_id` -> `vdnId`.

    `parameters` names the request fields that travel as query parameters or headers
    (`page_size` -> `rowsPerPage`)."""
    if parameters and proto_path in parameters:
        return parameters[proto_path]
    path = proto_path.removeprefix("campaign.")
    if path == "campaign":
        return ""
    renamed = renamed_fields()
    parts = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:  # not a proto path: keep it as it came
            parts.append(segment)
            continue
        name, index = match.groups()
        parts.append(renamed.get(name, lower_camel(name)) + index)
    return ".".join(parts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A legacy code and its description."""

    code: str
    desc: str


def from_problems(problems: Sequence[Problem]) -> Outcome:
    """One kind of problem keeps its code; a mix is 0200001 listing each problem's code."""
    codes = {p.code for p in problems}
    code = legacy_code(combined_code(codes))
    mixed = len(codes) > 1
    items = [(p.path, p.message, legacy_code(p.code)) for p in problems]
    return Outcome(code, describe(items, mixed=mixed))


def describe(
    items: Sequence[tuple[str, str, str]], *, mixed: bool, total: int | None = None
) -> str:
    """`path: message[ (code)]; ...` naming every offending field by its JSON path.

    `total` counts the problems when `items` lists only the first ones; at most
    MAX_REPORTED_PROBLEMS are listed, as many as the service's BadRequest holds.
    """
    parts = []
    for path, message, code in items[:MAX_REPORTED_PROBLEMS]:
        text = f"{path}: {message}" if path else message
        parts.append(f"{text} ({code})" if mixed else text)
    unlisted = max(len(items), total or 0) - len(parts)
    if unlisted > 0:
        parts.append(f"and {unlisted} more problems")
    return "; ".join(parts)


def from_rpc_error(
    error: grpc.RpcError, parameters: Mapping[str, str] | None = None
) -> Outcome | None:
    """The legacy code and description a failed call carries in its details (ErrorInfo's
    reason, BadRequest's violations named by their JSON paths); None when it carries no
    documented code."""
    reported = _reported(error)
    if reported is None or from_legacy(reported[1].reason) is None:
        return None
    rich, info = reported
    code = info.reason
    violations = _violations(rich)
    if not violations:
        return Outcome(code, rich.message)
    items = [(json_path(v.field, parameters), v.description, v.reason) for v in violations]
    # The service lists the first problems only; the count covers them all.
    count = info.metadata.get(PROBLEM_COUNT_KEY, "")
    total = int(count) if count.isdigit() else len(items)
    return Outcome(code, describe(items, mixed=code == PARAMETER_ERROR, total=total))


def database_error(error: grpc.RpcError) -> str | None:
    """The service's description of a database error it reported (0200006), if it did."""
    reported = _reported(error)
    if reported is None or reported[1].reason != DATABASE_ERROR:
        return None
    message: str = reported[0].message
    return message


def _reported(
    error: grpc.RpcError,
) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo] | None:
    """The rich status of a failed call and its ErrorInfo, when it has both."""
    rich = _rich_status(error)
    info = _error_info(rich) if rich is not None else None
    if rich is None or info is None:
        return None
    return rich, info


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details that contradict the call's status: not trustworthy
        return None
    return status


def _error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _violations(status: status_pb2.Status) -> list[error_details_pb2.BadRequest.FieldViolation]:
    found: list[error_details_pb2.BadRequest.FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.extend(request.field_violations)
    return found
