"""Adding an Outbound Campaign (V2), end to end over loopback: uvicorn, the real gRPC server,
SQLite; one test per legacy code, validateOnly and Idempotency-Key."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from isales_campaign.legacy.auth_v2 import format_timestamp
from tests.gateway.conftest import Stack, example_body, ivr_body, start_stack
from tests.gateway.helpers import SUCCESS as SUCCESS_CODE
from tests.gateway.helpers import (
    added,
    code_of,
    counts,
    later_timestamp,
    listed_ids,
    modified,
    ok,
    refused,
)

SUCCESS = re.compile(
    rb'\{"resultCode":"0200000","resultDesc":"","returnCode":"0200000","returnDesc":"",'
    rb'"returnObject":\{"id":(\d+)\}\}'
)


def answer(stack: Stack, body: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
    """(resultCode, resultDesc) of an HTTP 200 envelope, checking its shape."""
    response = stack.post(body, **kwargs)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert list(envelope)[:4] == ["resultCode", "resultDesc", "returnCode", "returnDesc"]
    assert envelope["resultCode"] == envelope["returnCode"]
    assert envelope["resultDesc"] == envelope["returnDesc"]
    return envelope["resultCode"], envelope["resultDesc"]


def test_documented_example_succeeds_with_the_project_client(stack: Stack) -> None:
    response = stack.client().add_campaign(1, example_body())
    assert response.status == 200
    assert response.result_code == "0200000"
    assert isinstance(response.body["returnObject"]["id"], int)
    assert response.headers["content-type"] == "application/json;charset=UTF-8"


def test_success_body_is_byte_compatible(stack: Stack) -> None:
    response = stack.post(example_body())
    assert SUCCESS.fullmatch(response.content), response.content


def test_signing_content_headers_with_a_millisecond_timestamp(stack: Stack) -> None:
    response = stack.post(
        example_body(),
        signed=("content-length", "content-type", "host"),
        timestamp=format_timestamp(millis=True),
    )
    assert SUCCESS.fullmatch(response.content), response.content


def test_vendor_string_forms_of_the_embedded_policies(stack: Stack) -> None:
    """Integers as strings, double quotes, a single result object, busiPolicy."""
    body = example_body()
    body["retryPolicy"] = {
        "policyType": 1,
        "policyJson": '[{"dataType":"ST","type":"0","policy":{"retryDay":"2","retryTimes":"2"}},'
        " {'dataType':'SI','type':1,'policy':{'result':'4','retryNumber':3,'callInterval':600}}]",
        "busiPolicy": "[{'busiResultCode':'a','busiResultPolicy':0}]",
    }
    body["callPolicy"]["turns"] = [{"turnType": "ST"}, {"turnType": "SI"}]
    assert answer(stack, body)[0] == "0200000"
    body = ivr_body()
    body["retryPolicy"] = {
        "policyType": 0,
        "resultRetry": '[{"result":"2","retryNumber":"1","callInterval":600}]',
        "noRetryPolicy": ["11"],
    }
    assert answer(stack, body)[0] == "0200000"


def test_0200001_mixed_problems_name_every_field(stack: Stack) -> None:
    body = example_body()
    del body["name"]
    body["maxAlertingTime"] = 500
    body["skillParam"]["predictParam"]["expPredictParam"]["minAvgCallTime"] = 150
    code, desc = answer(stack, body)
    assert code == "0200001"
    assert "name: is mandatory (02000001)" in desc
    assert "maxAlertingTime:" in desc
    assert (
        "skillParam.predictParam.expPredictParam.minAvgCallTime: "
        "must be less than or equal to maxAvgCallTime" in desc
    )


def test_0200001_gateway_problems_are_collected_at_once(stack: Stack) -> None:
    body = example_body()
    body["maxAlertingTime"] = "20.0"
    body["callerNo"][1]["priority"] = True
    body["retryPolicy"]["policyJson"] = "[{bad"
    code, desc = answer(stack, body)
    assert code == "0200001"
    assert "maxAlertingTime: must be an integer (02000006)" in desc
    assert "callerNo[1].priority: must be an integer (02000006)" in desc
    assert "retryPolicy.policyJson: is not valid JSON (02000008)" in desc


def test_0200002_start_before_today(stack: Stack) -> None:
    body = example_body()
    body["strBeginTime"] = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d 00:00:00")
    code, desc = answer(stack, body)
    assert code == "0200002"
    assert desc.startswith("strBeginTime:")


def test_0200003_skill_queue_quota(quota_stack: Stack) -> None:
    assert answer(quota_stack, example_body())[0] == "0200000"
    code, desc = answer(quota_stack, example_body())
    assert code == "0200003"
    assert desc


def test_0200004_ivr_quota(quota_stack: Stack) -> None:
    assert answer(quota_stack, ivr_body(), vdn=2)[0] == "0200000"
    assert answer(quota_stack, ivr_body(), vdn=2)[0] == "0200004"


def test_0200005_name_taken(stack: Stack) -> None:
    body = example_body()
    assert answer(stack, body)[0] == "0200000"
    # Another signature: the same one would be answered as a retry.
    later = format_timestamp(datetime.now(UTC) + timedelta(seconds=1))
    code, desc = answer(stack, body, timestamp=later)
    assert code == "0200005"
    assert desc.startswith("name:")


def test_0200017_unknown_skill_queue(stack: Stack) -> None:
    body = example_body()
    body["skillParam"]["skillId"] = 7
    code, desc = answer(stack, body)
    assert code == "0200017"
    assert desc.startswith("skillParam.skillId:")


@pytest.mark.parametrize(
    ("code", "path", "change"),
    [
        ("02000001", "name", lambda b: b.pop("name")),
        ("02000002", "callerNo[1].accessCode", lambda b: b["callerNo"][1].update(accessCode="1a")),
        ("02000003", "name", lambda b: b.update(name="n" * 33)),
        (
            "02000005",
            "scheduleParam.workdayBeginTime1",
            lambda b: b["scheduleParam"].update(workdayBeginTime1="9:00"),
        ),
        ("02000008", "strBeginTime", lambda b: b.update(strBeginTime=b["strBeginTime"][:-1])),
        ("02000006", "maxAlertingTime", lambda b: b.update(maxAlertingTime="twenty")),
        ("02000006", "skillParam", lambda b: b.update(skillParam=[b["skillParam"]])),
        ("02000007", "maxAlertingTime", lambda b: b.update(maxAlertingTime=121)),
        ("02000007", "priority", lambda b: b.update(priority=2**31)),
        ("02000007", "priority", lambda b: b.update(priority=10**30)),
        ("02000008", "retryPolicy.policyJson", lambda b: b["retryPolicy"].update(policyJson="[{")),
        ("02000008", "strEndTime", lambda b: b.update(strEndTime="2999-13-45 00:00:00")),
        (
            "02000008",
            "retryPolicy.policyJson[0].policy[0].result",
            lambda b: b["retryPolicy"].update(
                policyJson="[{'dataType':'SI','type':1,'policy':[{'result':'four',"
                "'retryNumber':3,'callInterval':600}]}]"
            ),
        ),
        (
            "02000010",
            "scheduleParam.workdayEndTime2",
            lambda b: b["scheduleParam"].update(workdayBeginTime2="10:00"),
        ),
        (
            "02000011",
            "callerNo",
            lambda b: b.update(callerNo=[{"accessCode": "1", "priority": 1}] * 101),
        ),
    ],
)
def test_single_code(stack: Stack, code: str, path: str, change: Any) -> None:
    body = example_body()
    change(body)
    got, desc = answer(stack, body)
    assert (got, desc.partition(":")[0]) == (code, path), desc


def test_02000004_too_short(stack: Stack) -> None:
    body = ivr_body()
    body["retryPolicy"]["noRetryPolicy"] = [""]
    code, desc = answer(stack, body)
    assert code == "02000004"
    assert desc.startswith("retryPolicy.noRetryPolicy[0]:")


def test_02000007_vdn_id_out_of_range(stack: Stack) -> None:
    for vdn in ("0", "10000", "abc", "-1", "1.0"):
        code, desc = answer(stack, example_body(), vdn=vdn, keys=("gw-ak-1", "gw-sk-1"))
        assert (code, desc.partition(":")[0]) == ("02000007", "vdnId")


def test_02000009_combination(stack: Stack) -> None:
    body = ivr_body()
    body["callPolicy"] = {"callType": 1, "chooseType": 0, "turns": [{"turnType": "SI"}]}
    code, desc = answer(stack, body)
    assert code == "02000009"
    assert desc.startswith("retryPolicy.policyType:")


def test_unknown_keys_are_ignored(stack: Stack) -> None:
    body = example_body()
    body["somethingNew"] = {"deep": [1, 2, 3]}
    body["skillParam"]["extra"] = None
    body["description"] = None  # null is "not given"
    assert answer(stack, body)[0] == "0200000"


def test_a_request_with_many_problems_lists_the_first_and_counts_the_rest(stack: Stack) -> None:
    body = example_body()
    body["callerNo"] += [{"accessCode": "x" * 33, "priority": 9}] * 60
    code, desc = answer(stack, body)
    assert code == "0200001"
    assert desc.startswith("callerNo[2].accessCode: ")
    assert desc.count("(0200") == 20
    assert desc.endswith("; and 160 more problems")


def test_the_same_signed_request_again_answers_with_the_same_campaign(stack: Stack) -> None:
    body = example_body()
    timestamp = format_timestamp(datetime.now(UTC))
    first = stack.post(body, timestamp=timestamp).json()
    again = stack.post(body, timestamp=timestamp).json()
    assert first["resultCode"] == again["resultCode"] == "0200000"
    assert again["returnObject"] == first["returnObject"]
    # Signed anew, the same body is a second attempt at the same name.
    later = format_timestamp(datetime.now(UTC) + timedelta(seconds=1))
    assert answer(stack, body, timestamp=later)[0] == "0200005"


def test_documented_example_on_each_database(database_url: str, tmp_path: Path) -> None:
    stack = start_stack(tmp_path, database_url=database_url)
    try:
        body = example_body()
        assert answer(stack, body)[0] == "0200000"
        later = format_timestamp(datetime.now(UTC) + timedelta(seconds=1))
        assert answer(stack, body, timestamp=later)[0] == "0200005"
    finally:
        stack.stop()


def test_an_integer_written_as_a_string_of_digits_is_taken(stack: Stack) -> None:
    """`"priority": "4"`, as a Jackson-based backend like the vendor's takes it."""
    body = example_body()
    body["priority"] = "4"
    body["maxAlertingTime"] = "30"
    response = stack.post(body)
    assert response.json()["resultCode"] == "0200000", response.text
    campaign_id = response.json()["returnObject"]["id"]
    found = stack.client(1).get_campaign(1, campaign_id).body["returnObject"]
    assert (found["priority"], found["maxAlertingTime"]) == (4, 30)


def test_validate_only_add_stores_nothing(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    before = counts(client)
    answer = ok(client.add_campaign(1, body, validate_only=True))
    assert answer["returnObject"] == {"id": 0}
    assert listed_ids(client, 1, name=body["name"]) == []
    assert counts(client) == before
    # Every rule is checked, the database ones included.
    existing = example_body()
    added(client, 1, existing)
    refused(client.add_campaign(1, existing, validate_only=True), "0200005", "name")


def test_idempotency_key_answers_the_same_campaign_when_signed_anew(stack: Stack) -> None:
    key = f"k-{uuid.uuid4()}"
    body = example_body()
    first = stack.post(body, headers={"Idempotency-Key": key})
    again = stack.post(body, headers={"Idempotency-Key": key}, timestamp=later_timestamp())
    assert first.request.headers["Authorization"] != again.request.headers["Authorization"]
    assert first.json()["resultCode"] == again.json()["resultCode"] == SUCCESS_CODE
    assert again.json()["returnObject"] == first.json()["returnObject"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    client = stack.client(1)
    assert listed_ids(client, 1, name=body["name"]) == [first.json()["returnObject"]["id"]]

    other = example_body()
    reused = stack.post(other, headers={"Idempotency-Key": key}, timestamp=later_timestamp(2))
    assert reused.status_code == 200
    assert reused.json()["resultCode"] == "02000009"
    assert reused.json()["resultDesc"].startswith("Idempotency-Key:")
    assert listed_ids(client, 1, name=other["name"]) == []


def test_a_signed_add_sent_again_is_a_marked_replay_and_signed_anew_a_new_add(
    stack: Stack,
) -> None:
    """The same Authorization header is a retry; the project's client signs each call anew
    (to the millisecond), so running the same code twice adds twice."""
    client = stack.client(1)
    body = example_body()
    url = stack.url(1)
    first = stack.post(body)
    resent = httpx.post(url, content=first.request.content, headers=first.request.headers)
    assert resent.json()["returnObject"] == first.json()["returnObject"]
    assert resent.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = modified(body, lambda b: b.update(name=body["name"] + " 2"))
    made = [client.add_campaign(1, other) for _ in range(2)]  # back to back
    assert code_of(made[0]) == SUCCESS_CODE
    assert code_of(made[1]) == "0200005"  # a new add of a taken name, not a replay
    assert "idempotent-replayed" not in made[1].headers


@pytest.mark.parametrize("key", ["a b", "k/1", "x" * 65])
def test_invalid_idempotency_key(stack: Stack, key: str) -> None:
    body = example_body()
    response = stack.post(body, headers={"Idempotency-Key": key})
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["resultCode"] == "02000002"
    assert envelope["resultDesc"].startswith("Idempotency-Key:")
    assert listed_ids(stack.client(1), 1, name=body["name"]) == []
