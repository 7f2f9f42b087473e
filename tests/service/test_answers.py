"""How refusals are answered over gRPC: one table, every refusal in it."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from isales_campaign.result_codes import PROBLEM_COUNT_KEY, ResultCode, legacy_code
from isales_campaign.service import answers, errors
from isales_campaign.service.errors import (
    FieldProblem,
    InvalidArgument,
    QuotaExceeded,
    QuotaProblem,
    ServiceError,
)

#: Bases that are never raised themselves.
ABSTRACT = {errors.ServiceError, errors.FieldError, errors.WatchEnded}


def _refusals(base: type[ServiceError] = ServiceError) -> set[type[ServiceError]]:
    found: set[type[ServiceError]] = set()
    for cls in base.__subclasses__():
        found |= {cls} | _refusals(cls)
    return found


def test_every_refusal_has_its_status_code_in_the_table() -> None:
    refusals = _refusals() - ABSTRACT
    assert len(refusals) >= 17
    missing = {cls.__name__ for cls in refusals if cls not in answers.STATUS_CODES}
    assert not missing, f"not in answers.STATUS_CODES: {missing}"
    assert grpc.StatusCode.INTERNAL not in answers.STATUS_CODES.values()


def test_every_refusal_is_defined_in_the_errors_module() -> None:
    assert {cls.__module__ for cls in _refusals()} == {errors.__name__}


def _details(status: object) -> dict[str, object]:
    found: dict[str, object] = {}
    for detail in status.details:  # type: ignore[attr-defined]
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.QuotaFailure,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    return found


def test_input_problems_travel_as_bad_request_with_their_legacy_codes() -> None:
    problems = [
        FieldProblem("campaign.name", ResultCode.RESULT_CODE_NAME_NOT_UNIQUE, "is taken"),
        FieldProblem("campaign.str_end_time", ResultCode.RESULT_CODE_CONVERSION_ERROR, "bad"),
    ]
    status = answers.rich_status(InvalidArgument(problems))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    details = _details(status)
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == legacy_code(ResultCode.RESULT_CODE_PARAMETER_ERROR)  # a mix
    assert info.domain == answers.ERROR_DOMAIN
    assert info.metadata[PROBLEM_COUNT_KEY] == "2"
    bad_request = details["BadRequest"]
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [
        ("campaign.name", legacy_code(ResultCode.RESULT_CODE_NAME_NOT_UNIQUE)),
        ("campaign.str_end_time", legacy_code(ResultCode.RESULT_CODE_CONVERSION_ERROR)),
    ]
    assert "QuotaFailure" not in details


def test_a_quota_travels_as_quota_failure() -> None:
    quota = QuotaProblem("vdn:1/family:IVR", "campaigns", "VDN 1 already has 20", 20, 20)
    status = answers.rich_status(QuotaExceeded(ResultCode.RESULT_CODE_IVR_CAMPAIGN_LIMIT, quota))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    failure = _details(status)["QuotaFailure"]
    assert isinstance(failure, error_details_pb2.QuotaFailure)
    [violation] = failure.violations
    assert (violation.subject, violation.quota_metric, violation.quota_value) == (
        "vdn:1/family:IVR",
        "campaigns",
        20,
    )
