"""The result codes of the contract and the legacy strings they travel as."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from isales.campaign.v2 import result_code_pb2
from isales.campaign.v2.result_code_pb2 import ResultCode

__all__ = [
    "MAX_REPORTED_PROBLEMS",
    "PROBLEM_COUNT_KEY",
    "ResultCode",
    "combined_code",
    "from_legacy",
    "legacy_code",
]

#: `ErrorInfo.metadata` key counting all problems of a rejected request, of which
#: `BadRequest` lists the first ones only.
PROBLEM_COUNT_KEY = "problem_count"
#: How many problems of a rejected request `BadRequest` lists, and the gateway's description
#: names: status details travel in a gRPC trailer, which clients refuse beyond 8-16 KiB, and
#: a body can hold thousands of bad items.
MAX_REPORTED_PROBLEMS = 20


@cache
def _table() -> tuple[dict[int, str], dict[str, int]]:
    to_legacy: dict[int, str] = {}
    for value in result_code_pb2.DESCRIPTOR.enum_types_by_name["ResultCode"].values:
        code: str = value.GetOptions().Extensions[result_code_pb2.legacy_code]
        if code:
            to_legacy[value.number] = code
    return to_legacy, {code: number for number, code in to_legacy.items()}


def legacy_code(code: ResultCode.ValueType) -> str:
    """The vendor's string for a result code, e.g. `"0200005"`."""
    return _table()[0][code]


def from_legacy(code: str) -> ResultCode.ValueType | None:
    """The result code whose legacy string is `code`, if there is one."""
    number = _table()[1].get(code)
    return None if number is None else ResultCode.ValueType(number)


def combined_code(codes: Iterable[ResultCode.ValueType]) -> ResultCode.ValueType:
    """The code of a request with these problems: one kind of problem keeps its own code,
    a mix is a "parameter error" (0200001) whose description lists each problem."""
    distinct = set(codes)
    return distinct.pop() if len(distinct) == 1 else ResultCode.RESULT_CODE_PARAMETER_ERROR
