# The cases build deliberately invalid messages (enum numbers out of range, as plain ints).
"""The contract's rules of a campaign's retry policy (its type, the global policy, its
results, codes not to retry and business results), each provoked over gRPC against a
real server. The number-type policies are in test_contract_rules_number_policies.py.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.examples import add_request, example_campaign
from tests.service.helpers import (
    COMBINATION,
    EMPTY,
    RP,
    RR,
    TOO_LONG,
    TOO_MANY,
    TOO_SHORT,
    VALUE,
    C,
    Mutation,
    all_of,
    busi,
    clear_field,
    global_common,
    rejected,
    result_retry,
    rule_enforcement_test,
    set_field,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    ("retryPolicy missing", clear_field("retry_policy"), C + "retry_policy", EMPTY),
    (
        "policyType missing",
        lambda c: c.retry_policy.ClearField("policy_type"),
        RP + "policy_type",
        EMPTY,
    ),
    (
        "busiResultCode blank",
        busi(pb.BusiPolicy(busi_result_code="  ", busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        EMPTY,
    ),
    (
        "common policy without retryTimes",
        all_of(global_common, lambda c: c.retry_policy.ClearField("retry_times")),
        RP + "retry_times",
        EMPTY,
    ),
    (
        "common policy without callInterval",
        all_of(global_common, lambda c: c.retry_policy.ClearField("call_interval")),
        RP + "call_interval",
        EMPTY,
    ),
    (
        "global policy without anything",
        all_of(global_common, clear_field("retry_policy.retry_day")),
        RP + "retry_day",
        EMPTY,
    ),
    (
        "resultRetry item incomplete",
        result_retry(RR(result=2, call_interval=600)),
        RP + "result_retry[0].retry_number",
        EMPTY,
    ),
    (
        "busiPolicy callInterval missing",
        busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=1)),
        RP + "busi_policy[0].call_interval",
        EMPTY,
    ),
    (
        "busiResultCode empty",
        busi(pb.BusiPolicy(busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        EMPTY,
    ),
    # 02000003 too long
    (
        "busiResultCode too long",
        busi(pb.BusiPolicy(busi_result_code="b" * 51, busi_result_policy=0)),
        RP + "busi_policy[0].busi_result_code",
        TOO_LONG,
    ),
    (
        "busiResultSubCode too long",
        busi(
            pb.BusiPolicy(busi_result_code="b", busi_result_sub_code="s" * 51, busi_result_policy=0)
        ),
        RP + "busi_policy[0].busi_result_sub_code",
        TOO_LONG,
    ),
    # 02000004 too short
    (
        "empty noRetryPolicy code",
        all_of(global_common, lambda c: c.retry_policy.no_retry_policy.append("")),
        RP + "no_retry_policy[0]",
        TOO_SHORT,
    ),
    # 02000007 incorrect value
    (
        "retryDay 6",
        all_of(global_common, set_field("retry_policy.retry_day", 6)),
        RP + "retry_day",
        VALUE,
    ),
    (
        "retryTimes 7",
        all_of(global_common, set_field("retry_policy.retry_times", 7)),
        RP + "retry_times",
        VALUE,
    ),
    (
        "callInterval 86401",
        all_of(global_common, set_field("retry_policy.call_interval", 86401)),
        RP + "call_interval",
        VALUE,
    ),
    (
        "policyType 2",
        all_of(clear_field("call_policy"), set_field("retry_policy.policy_type", 2)),
        RP + "policy_type",
        VALUE,
    ),
    (
        "resultRetry result 10",
        result_retry(RR(result=10, call_interval=600, retry_number=1)),
        RP + "result_retry[0].result",
        VALUE,
    ),
    (
        "resultRetry result 0",
        result_retry(RR(result=0, call_interval=600, retry_number=1)),
        RP + "result_retry[0].result",
        VALUE,
    ),
    (
        "resultRetry retryNumber 10",
        result_retry(RR(result=1, call_interval=600, retry_number=10)),
        RP + "result_retry[0].retry_number",
        VALUE,
    ),
    (
        "busiPolicy callInterval 3601",
        busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=2, call_interval=3601)),
        RP + "busi_policy[0].call_interval",
        VALUE,
    ),
    (
        "busiResultPolicy 3",
        busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=3, call_interval=1)),
        RP + "busi_policy[0].busi_result_policy",
        VALUE,
    ),
    # 02000009 incorrect combination
    (
        "round call with global policy",
        all_of(
            global_common,
            set_field("call_policy.call_type", 1),
            set_field("call_policy.choose_type", 0),
            lambda c: c.call_policy.turns.add(turn_type="SI"),
        ),
        RP + "policy_type",
        COMBINATION,
    ),
    (
        "noRetryPolicy with policyType 1",
        lambda c: c.retry_policy.no_retry_policy.append("0001"),
        RP + "no_retry_policy",
        COMBINATION,
    ),
    (
        "retryDay with policyType 1",
        set_field("retry_policy.retry_day", 2),
        RP + "retry_day",
        COMBINATION,
    ),
    (
        "retryTimes with policyType 1",
        set_field("retry_policy.retry_times", 2),
        RP + "retry_times",
        COMBINATION,
    ),
    (
        "callInterval with policyType 1",
        set_field("retry_policy.call_interval", 2),
        RP + "call_interval",
        COMBINATION,
    ),
    (
        "resultRetry with policyType 1",
        lambda c: c.retry_policy.result_retry.append(RR(result=1, call_interval=1, retry_number=1)),
        RP + "result_retry",
        COMBINATION,
    ),
    (
        "common and result global policy",
        all_of(
            global_common,
            lambda c: c.retry_policy.result_retry.append(
                RR(result=1, call_interval=1, retry_number=1)
            ),
        ),
        RP + "result_retry",
        COMBINATION,
    ),
    (
        "duplicate resultRetry results",
        result_retry(
            RR(result=2, call_interval=1, retry_number=1),
            RR(result=2, call_interval=5, retry_number=2),
        ),
        RP + "result_retry",
        COMBINATION,
    ),
    # 02000011 too many items
    (
        "11 resultRetry items",
        result_retry(*[RR(result=1 + i % 9, call_interval=1, retry_number=1) for i in range(11)]),
        RP + "result_retry",
        TOO_MANY,
    ),
    (
        "101 busiPolicy items",
        lambda c: c.retry_policy.busi_policy.extend(
            [pb.BusiPolicy(busi_result_code=f"B{i}", busi_result_policy=0) for i in range(101)]
        ),
        RP + "busi_policy",
        TOO_MANY,
    ),
    (
        "101 noRetryPolicy codes",
        all_of(
            global_common,
            lambda c: c.retry_policy.no_retry_policy.extend([str(i) for i in range(101)]),
        ),
        RP + "no_retry_policy",
        TOO_MANY,
    ),
]

#: Cases whose change necessarily breaks a second rule too.
ALSO_BROKEN = {
    "11 resultRetry items": {RP + "result_retry": {COMBINATION}},  # only 9 results exist
}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)


@pytest.mark.parametrize(
    ("mutation", "path"),
    [
        (lambda c: c.retry_policy.ClearField("policy_type"), RP + "policy_type"),
        (lambda c: c.retry_policy.policy_json[0].ClearField("type"), RP + "policy_json[0].type"),
    ],
    ids=["policyType", "policyJson type"],
)
def test_a_missing_policy_type_is_reported_alone(
    rules_stub: CampaignServiceStub, mutation: Mutation, path: str
) -> None:
    # An absent type is not type 0: no combination rule of type 0 may fire.
    campaign = example_campaign()
    mutation(campaign)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.codes_by_field() == {path: {EMPTY}}
    assert failure.reason == EMPTY
