# The cases build deliberately invalid messages (enum numbers out of range, as plain ints).
"""The contract's rules of a retry policy by number type (`policy_json`), each provoked over
gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

from isales.campaign.v2 import campaign_pb2 as pb

from tests.service.helpers import (
    CHARS,
    COMBINATION,
    EMPTY,
    RP,
    TOO_LONG,
    VALUE,
    Mutation,
    all_of,
    global_common,
    number_policy,
    rule_enforcement_test,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    (
        "number-type policy without policyJson",
        lambda c: c.retry_policy.ClearField("policy_json"),
        RP + "policy_json",
        EMPTY,
    ),
    (
        "number common policy missing",
        number_policy(pb.NumberTypePolicy(data_type="SI", type=0)),
        RP + "policy_json[0].common_policy",
        EMPTY,
    ),
    (
        "number result policy missing",
        number_policy(pb.NumberTypePolicy(data_type="SI", type=1)),
        RP + "policy_json[0].result_policy",
        EMPTY,
    ),
    (
        "number policy type missing",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI", common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1)
            )
        ),
        RP + "policy_json[0].type",
        EMPTY,
    ),
    # 02000002 invalid characters
    (
        "dataType special characters",
        number_policy(
            pb.NumberTypePolicy(
                data_type="S-I",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].data_type",
        CHARS,
    ),
    # 02000003 too long
    (
        "dataType 21 characters",
        number_policy(
            pb.NumberTypePolicy(
                data_type="D" * 21,
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].data_type",
        TOO_LONG,
    ),
    # 02000007 incorrect value
    (
        "number policy result 10",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=10, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].result_policy[0].result",
        VALUE,
    ),
    (
        "number policy callInterval 0",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[
                    pb.NumberTypeResultPolicy(result=0, retry_number=1, call_interval=0)
                ],
            )
        ),
        RP + "policy_json[0].result_policy[0].call_interval",
        VALUE,
    ),
    (
        "number common retryDay 0",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=0, retry_times=1),
            )
        ),
        RP + "policy_json[0].common_policy.retry_day",
        VALUE,
    ),
    (
        "number common retryTimes 7",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=7),
            )
        ),
        RP + "policy_json[0].common_policy.retry_times",
        VALUE,
    ),
    (
        "number policy type 2",
        number_policy(pb.NumberTypePolicy(data_type="SI", type=2)),
        RP + "policy_json[0].type",
        VALUE,
    ),
    # 02000009 incorrect combination
    (
        "policyJson with global policy",
        all_of(
            global_common,
            lambda c: c.retry_policy.policy_json.add(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
            ),
        ),
        RP + "policy_json",
        COMBINATION,
    ),
    (
        "duplicate dataType",
        lambda c: c.retry_policy.policy_json.add().CopyFrom(c.retry_policy.policy_json[0]),
        RP + "policy_json",
        COMBINATION,
    ),
    (
        "common number policy with results",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].result_policy",
        COMBINATION,
    ),
    (
        "result number policy with common",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=1, retry_times=1),
                result_policy=[
                    pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)
                ],
            )
        ),
        RP + "policy_json[0].common_policy",
        COMBINATION,
    ),
    (
        "duplicate number policy results",
        number_policy(
            pb.NumberTypePolicy(
                data_type="SI",
                type=1,
                result_policy=[pb.NumberTypeResultPolicy(result=1, retry_number=1, call_interval=1)]
                * 2,
            )
        ),
        RP + "policy_json[0].result_policy",
        COMBINATION,
    ),
]

#: Cases whose change necessarily breaks a second rule too: none of these.
ALSO_BROKEN: dict[str, dict[str, set[str]]] = {}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)
