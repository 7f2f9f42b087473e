"""Translation of the legacy JSON (no server): embedded policies, strict types, problems."""

from __future__ import annotations

import orjson
import pytest
from isales.campaign.v2.campaign_pb2 import Campaign

from isales_campaign.gateway.translate import parse_embedded_json, translate_campaign
from isales_campaign.result_codes import legacy_code
from tests.gateway.conftest import EXAMPLE


def translate(document: object) -> Campaign:
    result = translate_campaign(orjson.dumps(document))
    assert isinstance(result, Campaign), result
    return result


def problems(document: object | bytes) -> list[tuple[str, str]]:
    raw = document if isinstance(document, bytes) else orjson.dumps(document)
    result = translate_campaign(raw)
    assert isinstance(result, list), result
    return [(p.path, legacy_code(p.code)) for p in result]


def test_the_documented_example() -> None:
    campaign = translate(EXAMPLE)
    assert campaign.caller_no[1].access_code == "88880066"
    assert campaign.skill_param.predict_param.exp_predict_param.min_avg_call_time == 50
    policy = campaign.retry_policy.policy_json[0]
    assert (policy.data_type, policy.type) == ("SI", 1)
    assert [(r.result, r.retry_number, r.call_interval) for r in policy.result_policy] == [
        (4, 3, 600)
    ]
    assert campaign.HasField("init_status")
    assert campaign.init_status == 0
    assert not campaign.HasField("cc_id")
    assert campaign.schedule_param.workday_begin_time2 == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[{'a':1}]", [{"a": 1}]),
        ('[{"a":"it\'s"}]', [{"a": "it's"}]),
        ("[{'a':'it\\'s', \"b\": \"x'y\"}]", [{"a": "it's", "b": "x'y"}]),
        ("[{'a':'say \"hi\"'}]", [{"a": 'say "hi"'}]),
    ],
)
def test_single_quoted_embedded_json(text: str, expected: object) -> None:
    assert parse_embedded_json(text) == expected


@pytest.mark.parametrize("text", ["[{'a':1}", "[{'a':'x}]", "{a:1}", "'"])
def test_broken_embedded_json(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - orjson's error is a ValueError
        parse_embedded_json(text)


def test_policy_shapes() -> None:
    policy_json = (
        '[{"dataType":"A","type":"0","policy":{"retryDay":"2","retryTimes":" 3 "}},'
        '{"dataType":"B","type":1,"policy":{"result":"4","retryNumber":3,"callInterval":600}},'
        '{"dataType":"C","type":1,"policy":"[{\'result\':5,\'retryNumber\':1,\'callInterval\':9}]"}]'
    )
    request = translate({"retryPolicy": {"policyType": 1, "policyJson": policy_json}})
    a, b, c = request.retry_policy.policy_json
    assert (a.common_policy.retry_day, a.common_policy.retry_times) == (2, 3)
    assert [p.result for p in b.result_policy] == [4]
    assert [p.result for p in c.result_policy] == [5]


def test_embedded_single_object_and_empty_string() -> None:
    request = translate(
        {
            "retryPolicy": {
                "resultRetry": "{'result':2,'retryNumber':1,'callInterval':6}",
                "busiPolicy": "  ",
            }
        }
    )
    assert len(request.retry_policy.result_retry) == 1
    assert len(request.retry_policy.busi_policy) == 0


def test_strict_top_level_types() -> None:
    found = problems(
        {
            "maxAlertingTime": True,
            "priority": 1.5,
            "ccId": 2**31,
            "name": 5,
            "callerNo": [{"priority": " 3"}, 4],
            "scheduleParam": "x",
            "retryPolicy": {"policyJson": ["not", "a string"], "noRetryPolicy": [1]},
        }
    )
    assert found == [
        ("maxAlertingTime", "02000006"),
        ("priority", "02000006"),
        ("ccId", "02000007"),
        ("name", "02000006"),
        ("callerNo[0].priority", "02000006"),
        ("callerNo[1]", "02000006"),
        ("scheduleParam", "02000006"),
        ("retryPolicy.policyJson", "02000006"),
        ("retryPolicy.noRetryPolicy[0]", "02000006"),
    ]


def test_integers_written_as_decimal_strings() -> None:
    """As a Jackson-based backend (the vendor's) coerces them: ASCII digits, a leading minus."""
    document = {**EXAMPLE, "priority": "4", "maxAlertingTime": "20", "deviceType": "2"}
    document["callerNo"] = [{"accessCode": "88889527", "priority": "-1"}]
    campaign = translate(document)
    assert (campaign.priority, campaign.max_alerting_time, campaign.device_type) == (4, 20, 2)
    assert campaign.caller_no[0].priority == -1
    found = problems(
        {
            "priority": "2147483648",  # beyond 32 bits
            "maxAlertingTime": "",
            "ccId": " 7",
            "deviceType": "+2",
            "retryPolicy": {"callInterval": "7 "},
            "skillParam": {
                "skillId": "1.0",
                "predictParam": {
                    "expPredictParam": {
                        "maxAvgCallTime": "\uff11",  # a full-width digit one
                        "minAvgCallTime": "true",
                    }
                },
            },
        }
    )
    assert found == [
        ("priority", "02000007"),
        ("maxAlertingTime", "02000006"),
        ("ccId", "02000006"),
        ("deviceType", "02000006"),
        ("retryPolicy.callInterval", "02000006"),
        ("skillParam.skillId", "02000006"),
        ("skillParam.predictParam.expPredictParam.maxAvgCallTime", "02000006"),
        ("skillParam.predictParam.expPredictParam.minAvgCallTime", "02000006"),
    ]


def test_embedded_conversion_problems() -> None:
    found = problems(
        {
            "retryPolicy": {
                "policyJson": "[{'dataType':'SI','type':1,'policy':[{'result':'x'},"
                "{'result':'99999999999'}, 3]}]",
                "resultRetry": "[{bad",
                "busiPolicy": "42",
            }
        }
    )
    assert found == [
        ("retryPolicy.policyJson[0].policy[0].result", "02000008"),
        ("retryPolicy.policyJson[0].policy[1].result", "02000007"),
        ("retryPolicy.policyJson[0].policy[2]", "02000006"),
        ("retryPolicy.resultRetry", "02000008"),
        ("retryPolicy.busiPolicy", "02000006"),
    ]


def test_body_level_problems() -> None:
    assert problems(b"[]") == [("", "02000006")]
    assert problems(b"{") == [("", "02000006")]
    assert isinstance(translate_campaign(b"\xef\xbb\xbf{}"), Campaign)  # BOM


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Which of two values would count is anyone's guess: refused.
        (b'{"name": "a", "name": "b"}', [("", "02000006")]),
        (
            b'{"scheduleParam": {"workdayBeginTime1": "08:00", "workdayBeginTime1": "09:00"}}',
            [("", "02000006")],
        ),
        (
            b"{\"retryPolicy\": {\"policyJson\": \"[{'dataType':'SI','dataType':'ST'}]\"}}",
            [("retryPolicy.policyJson", "02000006")],
        ),
        (b'{"maxAlertingTime": NaN}', [("", "02000006")]),
        (b"[" * 100_000 + b"]" * 100_000, [("", "02000006")]),
        ('{"name": "a"}'.encode("utf-16"), [("", "02000006")]),
    ],
)
def test_ambiguous_or_broken_json_is_refused(raw: bytes, expected: list[tuple[str, str]]) -> None:
    assert problems(raw) == expected
