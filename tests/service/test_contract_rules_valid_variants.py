# The cases build deliberately invalid messages (enum numbers out of range, as plain ints).
"""Variants of the documented example, one of each shape the contract allows, pass its rules
over gRPC."""

from __future__ import annotations

import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.examples import add_request, example_campaign
from tests.service.helpers import (
    AGENT,
    CONNECT,
    OFFHOOK,
    RR,
    VALUE,
    Mutation,
    all_of,
    as_ivr,
    busi,
    clear_field,
    global_common,
    number_policy,
    predict,
    previewed,
    rejected,
    result_retry,
    set_field,
    turns,
)


@pytest.mark.parametrize(
    "mutation",
    [
        previewed,
        as_ivr,
        all_of(as_ivr, set_field("device_type", 1)),
        all_of(
            set_field("device_type", 6),
            set_field("skill_param.out_bound_type", 6),
            clear_field("skill_param.predict_param"),
        ),
        predict(2, agent_predict_param=AGENT),
        predict(3, connect_predict_param=CONNECT),
        predict(5, offhook_predict_param=OFFHOOK),
        result_retry(
            RR(result=2, call_interval=600, retry_number=1),
            RR(result=9, call_interval=1, retry_number=0),
        ),
        all_of(global_common, lambda c: c.retry_policy.no_retry_policy.extend(["0001", "0002"])),
        number_policy(
            pb.NumberTypePolicy(
                data_type="ST",
                type=0,
                common_policy=pb.NumberTypeCommonPolicy(retry_day=2, retry_times=2),
            )
        ),
        busi(
            pb.BusiPolicy(busi_result_code="A1", busi_result_sub_code="A1-1", busi_result_policy=0)
        ),
        busi(pb.BusiPolicy(busi_result_code="A1", busi_result_policy=1, call_interval=3600)),
        turns(1, pb.Turn(turn_order=1), pb.Turn(turn_order=10)),
        all_of(global_common, lambda c: c.call_policy.CopyFrom(pb.CallPolicy(call_type=0))),
        set_field("description", "plain text, with commas (and brackets) — ünïcode 描述"),
        set_field("name", "名" * 32),
        set_field("call_back_url", "http://callback.example:8080/results?x=1"),
        set_field("call_back_url", "https://user:secret@callback.example"),
        set_field("call_back_url", "http://[::1]:65535/results"),
        set_field("init_status", 1),
        all_of(
            set_field("schedule_param.workday_begin_time2", "23:59"),
            set_field("schedule_param.workday_end_time2", "23:59"),
            set_field("schedule_param.workday_end_time1", "23:00"),
        ),
    ],
    ids=[
        "previewed",
        "automatic IVR",
        "intelligent IVR",
        "preempted",
        "agent usage prediction",
        "completion rate prediction",
        "off-hook prediction",
        "global result policy",
        "global common policy with noRetryPolicy",
        "number common policy",
        "busiPolicy stop",
        "busiPolicy with interval",
        "round by sequence",
        "sequence call with global policy",
        "description with allowed punctuation",
        "32 CJK characters",
        "http callback",
        "callback with user info",
        "callback on IPv6 with the highest port",
        "paused",
        "begin equals end is rejected elsewhere",
    ],
)
def test_valid_variants_pass_the_contract(
    rules_stub: CampaignServiceStub, mutation: Mutation, request: pytest.FixtureRequest
) -> None:
    campaign = example_campaign(name=f"variant {request.node.callspec.id}"[:32])
    mutation(campaign)
    if request.node.callspec.id == "begin equals end is rejected elsewhere":
        failure = rejected(rules_stub, add_request(campaign))
        assert failure.codes_by_field() == {"campaign.schedule_param.workday_end_time2": {VALUE}}
        return
    response = rules_stub.AddCampaign(add_request(campaign), timeout=10)
    assert response.id > 0
