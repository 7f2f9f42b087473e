"""The legacy envelope (no server): its keys, the JSON paths that name fields, and the code
and description of problems and of the service's refusals."""

from __future__ import annotations

import grpc
import pytest

from isales_campaign.gateway.envelope import (
    Outcome,
    database_error,
    describe,
    from_problems,
    from_rpc_error,
    json_path,
    render,
)
from isales_campaign.gateway.problems import Problem
from isales_campaign.result_codes import MAX_REPORTED_PROBLEMS, PROBLEM_COUNT_KEY, ResultCode
from tests.gateway.helpers import failed_call


@pytest.mark.parametrize(
    ("proto", "legacy"),
    [
        (
            "campaign.skill_param.predict_param.exp_predict_param.min_avg_call_time",
            "skillParam.predictParam.expPredictParam.minAvgCallTime",
        ),
        ("campaign.caller_no[1].access_code", "callerNo[1].accessCode"),
        (
            "campaign.retry_policy.policy_json[0].result_policy[2].retry_number",
            "retryPolicy.policyJson[0].policy[2].retryNumber",
        ),
        ("campaign.retry_policy.policy_json[0].common_policy", "retryPolicy.policyJson[0].policy"),
        ("campaign.schedule_param.workday_end_time1", "scheduleParam.workdayEndTime1"),
        ("vdn_id", "vdnId"),
        ("campaign", ""),
    ],
)
def test_json_paths(proto: str, legacy: str) -> None:
    assert json_path(proto) == legacy


def test_envelope_key_order() -> None:
    assert render("0200000", "", {"id": 46}) == (
        b'{"resultCode":"0200000","resultDesc":"","returnCode":"0200000","returnDesc":"",'
        b'"returnObject":{"id":46}}'
    )


def test_a_top_level_answer_stands_beside_the_envelopes_keys() -> None:
    assert render("0200000", top_level={"curPage": 1, "data": []}) == (
        b'{"resultCode":"0200000","resultDesc":"","returnCode":"0200000","returnDesc":"",'
        b'"curPage":1,"data":[]}'
    )


def test_one_kind_of_problem_keeps_its_code_a_mix_is_0200001_naming_each() -> None:
    too_long = Problem("name", ResultCode.RESULT_CODE_TOO_LONG, "is too long")
    wrong = Problem("priority", ResultCode.RESULT_CODE_WRONG_TYPE, "must be an integer")
    assert from_problems([too_long]) == Outcome("02000003", "name: is too long")
    assert from_problems([too_long, wrong]) == Outcome(
        "0200001", "name: is too long (02000003); priority: must be an integer (02000006)"
    )
    body = Problem("", ResultCode.RESULT_CODE_WRONG_TYPE, "the body must be a JSON object")
    assert from_problems([body]) == Outcome("02000006", "the body must be a JSON object")


def test_a_description_lists_at_most_max_reported_problems_and_counts_the_rest() -> None:
    items = [(f"callerNo[{i}]", "is wrong", "02000007") for i in range(MAX_REPORTED_PROBLEMS + 5)]
    desc = describe(items, mixed=False)
    assert desc.count("is wrong") == MAX_REPORTED_PROBLEMS
    assert desc.endswith("; and 5 more problems")
    # The service lists the first problems only and counts them all.
    listed = items[:MAX_REPORTED_PROBLEMS]
    assert describe(listed, mixed=False, total=100).endswith("; and 80 more problems")
    assert "more problems" not in describe(items[:2], mixed=False, total=2)


def test_a_refusal_of_the_service_names_its_fields_as_the_client_sent_them() -> None:
    refusal = failed_call(
        grpc.StatusCode.INVALID_ARGUMENT,
        "2 problems",
        "0200001",
        (
            ("page_size", "02000007", "must be at most 100"),
            ("campaign.caller_no[1].access_code", "02000002", "has invalid characters"),
        ),
        **{PROBLEM_COUNT_KEY: "30"},
    )
    outcome = from_rpc_error(refusal, {"page_size": "rowsPerPage"})
    assert outcome == Outcome(
        "0200001",
        "rowsPerPage: must be at most 100 (02000007); callerNo[1].accessCode: has invalid "
        "characters (02000002); and 28 more problems",
    )
    too_long = (("campaign.name", "02000003", "is too long"),)
    one_kind = failed_call(grpc.StatusCode.INVALID_ARGUMENT, "1 problem", "02000003", too_long)
    assert from_rpc_error(one_kind) == Outcome("02000003", "name: is too long")
    # Without violations, the status message is the description.
    unknown = "campaign 7 does not exist in VDN 1"
    missing = failed_call(grpc.StatusCode.NOT_FOUND, unknown, "0200007")
    assert from_rpc_error(missing) == Outcome("0200007", unknown)


@pytest.mark.parametrize(
    "error",
    [
        failed_call(grpc.StatusCode.INTERNAL, "no details"),
        failed_call(grpc.StatusCode.INVALID_ARGUMENT, "unknown reason", "not-a-legacy-code"),
        failed_call(
            grpc.StatusCode.INVALID_ARGUMENT, "no ErrorInfo", None, (("vdn_id", "02000007", "x"),)
        ),
    ],
    ids=["no details", "no documented reason", "no ErrorInfo"],
)
def test_a_failure_without_a_documented_code_has_no_outcome(error: grpc.RpcError) -> None:
    assert from_rpc_error(error) is None
    assert database_error(error) is None


def test_a_database_error_the_service_reported_is_described_in_its_words() -> None:
    busy = failed_call(grpc.StatusCode.UNAVAILABLE, "the database is busy", "0200006")
    assert database_error(busy) == "the database is busy"
    other = failed_call(grpc.StatusCode.UNAVAILABLE, "something else", "0200007")
    assert database_error(other) is None
