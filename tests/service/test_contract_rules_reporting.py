"""How the contract's problems are answered over gRPC: all at once, counted, the first ones
listed, and lists beyond their limits counted without being walked."""

from __future__ import annotations

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.examples import add_request, example_campaign
from tests.service.helpers import (
    CHARS,
    EMPTY,
    RP,
    TOO_LONG,
    TOO_MANY,
    VALUE,
    rejected,
)


def test_all_problems_are_reported_at_once(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.name = "n" * 33
    campaign.max_alerting_time = 200
    campaign.caller_no[0].access_code = "abc"
    campaign.skill_param.ClearField("skill_name")
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.reason == "0200001"  # several kinds of problem: a parameter error
    assert failure.codes_by_field() == {
        "campaign.name": {TOO_LONG},
        "campaign.max_alerting_time": {VALUE},
        "campaign.caller_no[0].access_code": {CHARS},
        "campaign.skill_param.skill_name": {EMPTY},
    }


def test_long_lists_are_counted_not_crashed(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    first = campaign.retry_policy.policy_json[0]
    campaign.retry_policy.policy_json.extend([first] * 150)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert TOO_MANY in failure.codes_by_field()["campaign.retry_policy.policy_json"]


def test_many_problems_are_counted_and_the_first_listed(
    rules_stub: CampaignServiceStub,
) -> None:
    campaign = example_campaign()
    for _ in range(60):
        campaign.caller_no.add(access_code="x" * 33, priority=9)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "0200001"
    assert len(failure.violations) == 20
    assert failure.violations[0][0] == "campaign.caller_no[2].access_code"
    assert int(failure.metadata["problem_count"]) == 180  # chars, length and priority each
    assert "; and 175 more" in failure.message


def test_items_beyond_a_list_limit_are_not_validated(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    campaign.caller_no.extend([pb.CallerNo()] * 100_000)
    failure = rejected(rules_stub, add_request(campaign))
    assert failure.violations[0][:2] == ("campaign.caller_no", TOO_MANY)
    # Only the items within the limit of 100 are looked at (two problems each).
    assert int(failure.metadata["problem_count"]) == 1 + 2 * 98


def test_over_long_lists_inside_kept_items_are_reported(rules_stub: CampaignServiceStub) -> None:
    campaign = example_campaign()
    policies = campaign.retry_policy.policy_json
    policies.extend([policies[0]] * 50)
    policies[1].result_policy.extend([policies[1].result_policy[0]] * 10)
    failure = rejected(rules_stub, add_request(campaign))
    codes = failure.codes_by_field()
    assert TOO_MANY in codes[RP + "policy_json"]
    assert TOO_MANY in codes[RP + "policy_json[1].result_policy"]
