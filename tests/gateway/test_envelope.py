"""The legacy envelope (no server): its keys and the JSON paths that name fields."""

from __future__ import annotations

import pytest

from isales_campaign.gateway.envelope import json_path, render


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
