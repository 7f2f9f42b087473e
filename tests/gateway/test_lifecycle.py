"""The campaign lifecycle as a legacy REST client sees it, end to end over loopback: uvicorn,
the real gRPC server, SQLite (and PostgreSQL for the main lifecycle, see TestOnPostgreSQL).

Query one, query list, modify (V2), suspend, resume and delete (spec/LIFECYCLE.md): every
result code each operation can answer, the list's filters and paging, validateOnly,
Idempotency-Key, the signing of bodiless requests, the health endpoints and the OpenAPI
document. The shared `stack` is not empty: each test names its campaigns uniquely and
filters the list by name, or counts differences.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from isales_campaign.client.http import LegacyClient, LegacyResponse, Target, sign_request
from isales_campaign.gateway import openapi
from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.legacy import auth_v2, paths
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaigns
from tests.conftest import _fresh_postgres_database
from tests.gateway.conftest import (
    EXAMPLE_POLICY_JSON,
    KEYS,
    Stack,
    example_body,
    ivr_body,
    start_stack,
)

SUCCESS = "0200000"
ENVELOPE_KEYS = ["resultCode", "resultDesc", "returnCode", "returnDesc"]
LIST_KEYS = {
    *ENVELOPE_KEYS,
    "curPage",
    "rowsPerPage",
    "totalSize",
    "curSkillQueueCount",
    "curIvrCount",
    "data",
}
#: A campaign id no test ever reaches.
UNKNOWN_ID = 8_000_000_000_000_000_000


# -- helpers -------------------------------------------------------------------------------


def code_of(response: LegacyResponse) -> str:
    """The result code of an HTTP 200 envelope, checking the envelope's shape."""
    assert response.status == 200, (response.status, response.body)
    body = response.body
    assert list(body)[:4] == ENVELOPE_KEYS, body
    assert body["resultCode"] == body["returnCode"]
    assert body["resultDesc"] == body["returnDesc"]
    return response.result_code


def ok(response: LegacyResponse) -> dict[str, Any]:
    """The body of a success."""
    assert code_of(response) == SUCCESS, response.body
    assert response.body["resultDesc"] == ""
    return response.body


def refused(response: LegacyResponse, code: str, field: str | None = None) -> str:
    """The description of an HTTP 200 refusal with `code` (naming `field` first, if given)."""
    assert code_of(response) == code, response.body
    desc: str = response.body["resultDesc"]
    assert desc
    if field is not None:
        assert desc.startswith(f"{field}:"), desc
    return desc


def added(client: LegacyClient, vdn: int, body: dict[str, Any]) -> int:
    """Add the campaign; its id."""
    campaign_id: int = ok(client.add_campaign(vdn, body))["returnObject"]["id"]
    assert campaign_id > 0
    return campaign_id


def fetched(client: LegacyClient, vdn: int, campaign_id: int) -> dict[str, Any]:
    """The returnObject of a GET of one campaign."""
    found: dict[str, Any] = ok(client.get_campaign(vdn, campaign_id))["returnObject"]
    return found


def listed(client: LegacyClient, vdn: int, **params: str | int) -> dict[str, Any]:
    """A list answer, checked to have its fields at the top level and no returnObject."""
    body = ok(client.list_campaigns(vdn, **params))
    assert set(body) == LIST_KEYS, body
    return body


def listed_ids(client: LegacyClient, vdn: int, **params: str | int) -> list[int]:
    return [row["id"] for row in listed(client, vdn, rowsPerPage=100, **params)["data"]]


def counts(client: LegacyClient, vdn: int = 1) -> tuple[int, int]:
    """(curSkillQueueCount, curIvrCount) of the tenant."""
    body = listed(client, vdn)
    return body["curSkillQueueCount"], body["curIvrCount"]


def prefix() -> str:
    """A unique name prefix (13 characters: campaign names may have 32)."""
    return f"lc{uuid.uuid4().hex[:10]}-"


def python_policy(policy_json: str) -> Any:
    """The vendor's single-quoted policyJson as Python values."""
    return json.loads(policy_json.replace("'", '"'))


def later_timestamp(seconds: int = 1) -> str:
    """A timestamp other than now's: the same request signed anew."""
    return auth_v2.format_timestamp(datetime.now(UTC) + timedelta(seconds=seconds))


def end_in_the_past(stack: Stack, campaign_id: int) -> None:
    """Make the campaign ended: its end lies in the past (which add and modify refuse)."""
    engine = create_database_engine(stack.settings.database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(end_at=datetime(2000, 1, 1))  # naive UTC, as stored
            )
            assert result.rowcount == 1
    finally:
        engine.dispose()


#: How each operation on one campaign travels: method, path template, body.
OPERATION_REQUESTS: dict[str, tuple[str, str, bool]] = {
    "get": ("GET", paths.ONE, False),
    "modify": ("PUT", paths.MODIFY, True),
    "pause": ("PUT", paths.PAUSE, False),
    "resume": ("PUT", paths.RESUME, False),
    "delete": ("DELETE", paths.ONE, False),
}


def operate(
    stack: Stack, operation: str, vdn: int | str, campaign_id: int | str, *, key_of: int = 1
) -> LegacyResponse:
    """One operation on one campaign, signed with VDN `key_of`'s key, ids as raw path text."""
    method, template, has_body = OPERATION_REQUESTS[operation]
    body = json.dumps(example_body()).encode() if has_body else b""
    url = stack.base_url + paths.path(template, vdn, campaign_id)
    return stack.client(key_of).request(method, url, body)


def raw_get(url: str, authorization: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": authorization}, timeout=30)


# -- the whole lifecycle -------------------------------------------------------------------


def run_lifecycle(stack: Stack) -> None:
    """add -> list -> get -> modify -> pause -> resume -> pause -> delete, as a newcomer."""
    client = stack.client(1)
    skill_before, ivr_before = counts(client)

    body = example_body()
    # Priorities out of input order: the answers list the access codes by priority.
    body["callerNo"] = [
        {"accessCode": "88880066", "priority": 4},
        {"accessCode": "88889527", "priority": 3},
        {"accessCode": "88881111", "priority": 4},
    ]
    campaign_id = added(client, 1, body)
    assert counts(client) == (skill_before + 1, ivr_before)

    page = listed(client, 1, name=body["name"])
    assert page["totalSize"] == 1
    assert page["curPage"] == 1
    assert page["rowsPerPage"] == 10
    assert page["data"] == [
        {
            "id": campaign_id,
            "name": body["name"],
            "status": 2,
            "strBeginTime": body["strBeginTime"],
            "strEndTime": body["strEndTime"],
            "deviceType": 2,
            "callerNo": "88889527,88880066,88881111",
        }
    ]
    assert page["curSkillQueueCount"] == skill_before + 1
    assert page["curIvrCount"] == ivr_before

    found = fetched(client, 1, campaign_id)
    assert found["id"] == campaign_id
    assert found["status"] == 2
    assert found["version"] == 1
    assert found["name"] == body["name"]
    assert found["description"] == body["description"]
    assert found["strBeginTime"] == body["strBeginTime"]
    assert found["strEndTime"] == body["strEndTime"]
    assert found["deviceType"] == 2
    assert found["callerNo"] == "88889527,88880066,88881111"
    assert found["maxAlertingTime"] == 20
    assert found["priority"] == 4
    assert found["callBackUrl"] == body["callBackUrl"]
    assert found["initStatus"] == 0
    schedule = found["scheduleParam"]
    assert schedule["workdayBeginTime1"] == "00:00"
    assert schedule["workdayEndTime1"] == "23:59"
    assert schedule["holidayBeginTime2"] == "13:00"
    for unset in ("workdayBeginTime2", "workdayEndTime2", "workdayBeginTime3", "holidayEndTime3"):
        assert schedule[unset] is None, unset
    assert found["ivrParam"] is None
    assert found["skillParam"]["skillId"] == 2
    assert found["skillParam"]["predictParam"]["agentPredictParam"] is None
    retry = found["retryPolicy"]
    assert retry["policyType"] == 1
    assert isinstance(retry["policyJson"], str)
    assert json.loads(retry["policyJson"]) == python_policy(EXAMPLE_POLICY_JSON)
    assert found["callPolicy"] == {
        "callType": 1,
        "chooseType": 0,
        "turns": [{"turnType": "SI", "turnOrder": None}],
    }

    # Modify (V2): a full replacement; initStatus is ignored, the status kept.
    changed = copy.deepcopy(body)
    changed["name"] = body["name"] + "-v2"
    changed["maxAlertingTime"] = 30
    changed["initStatus"] = 1
    del changed["description"]
    answer = ok(client.update_campaign(1, campaign_id, changed))
    assert list(answer) == ENVELOPE_KEYS
    found = fetched(client, 1, campaign_id)
    assert (found["version"], found["status"]) == (2, 2)
    assert found["name"] == changed["name"]
    assert found["maxAlertingTime"] == 30
    assert found["description"] is None
    assert found["initStatus"] == 0
    assert listed(client, 1, name=body["name"])["data"][0]["name"] == changed["name"]

    for operate_on, status, version in (
        (client.pause_campaign, 3, 3),
        (client.resume_campaign, 2, 4),
        (client.pause_campaign, 3, 5),
    ):
        assert list(ok(operate_on(1, campaign_id))) == ENVELOPE_KEYS
        found = fetched(client, 1, campaign_id)
        assert (found["status"], found["version"]) == (status, version)
        assert listed(client, 1, name=changed["name"])["data"][0]["status"] == status

    assert list(ok(client.delete_campaign(1, campaign_id))) == ENVELOPE_KEYS
    refused(client.get_campaign(1, campaign_id), "0200007")
    assert listed(client, 1, name=body["name"])["totalSize"] == 0
    assert counts(client) == (skill_before, ivr_before)

    # The IVR family is counted apart.
    ivr_id = added(client, 1, ivr_body())
    assert counts(client) == (skill_before, ivr_before + 1)
    assert fetched(client, 1, ivr_id)["ivrParam"] == {
        "deviceSign": "1001",
        "callCount": 3,
        "callInterval": 3,
    }
    ok(client.pause_campaign(1, ivr_id))
    ok(client.delete_campaign(1, ivr_id))
    assert counts(client) == (skill_before, ivr_before)


def test_lifecycle_of_a_newcomer(stack: Stack) -> None:
    run_lifecycle(stack)


# -- every code of the operations on one campaign ------------------------------------------


@pytest.fixture
def executing(stack: Stack) -> int:
    """A new executing campaign of VDN 1 in the shared stack."""
    return added(stack.client(1), 1, example_body())


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200007_unknown_campaign(stack: Stack, operation: str) -> None:
    refused(operate(stack, operation, 1, UNKNOWN_ID), "0200007")


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200007_another_tenants_campaign(stack: Stack, executing: int, operation: str) -> None:
    refused(operate(stack, operation, 2, executing, key_of=2), "0200007")
    found = fetched(stack.client(1), 1, executing)
    assert (found["status"], found["version"]) == (2, 1)


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_401_access_key_of_another_vdn(stack: Stack, executing: int, operation: str) -> None:
    response = operate(stack, operation, 2, executing, key_of=1)
    assert response.status == 401
    assert response.headers["www-authenticate"] == "auth-v2"
    assert response.body["resultCode"] == "0200001"
    assert response.body["resultDesc"] == (
        "authentication failed: the access key belongs to VDN 1, not 2"
    )
    found = fetched(stack.client(1), 1, executing)
    assert (found["status"], found["version"]) == (2, 1)


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
@pytest.mark.parametrize("campaign_id", ["abc", "0", "-1", "1.0", "9223372036854775808"])
def test_02000007_campaign_id(stack: Stack, operation: str, campaign_id: str) -> None:
    refused(operate(stack, operation, 1, campaign_id), "02000007", "campaignId")


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
@pytest.mark.parametrize("vdn", ["10000", "0", "abc"])
def test_02000007_vdn_id(stack: Stack, executing: int, operation: str, vdn: str) -> None:
    refused(operate(stack, operation, vdn, executing), "02000007", "vdnId")


def test_02000007_vdn_id_of_the_list(stack: Stack) -> None:
    url = stack.base_url + paths.path(paths.LIST, 10000)
    refused(stack.client(1).request("GET", url), "02000007", "vdnId")


def test_401_list_of_another_vdn(stack: Stack) -> None:
    response = stack.client(1).list_campaigns(2)
    assert response.status == 401
    assert response.body["resultCode"] == "0200001"
    assert "data" not in response.body


def test_status_conflicts(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    desc = refused(client.resume_campaign(1, executing), "0200011")
    assert str(executing) in desc
    refused(client.delete_campaign(1, executing), "0200009")
    refused(client.delete_campaign(1, executing, archive=True), "0200009")
    ok(client.pause_campaign(1, executing))
    refused(client.pause_campaign(1, executing), "0200011")
    found = fetched(client, 1, executing)
    assert (found["status"], found["version"]) == (3, 2)  # refusals change nothing
    # A modification keeps the status.
    ok(client.update_campaign(1, executing, example_body(found["name"])))
    found = fetched(client, 1, executing)
    assert (found["status"], found["version"]) == (3, 3)
    ok(client.delete_campaign(1, executing))


def modified(body: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    change(changed)
    return changed


@pytest.mark.parametrize(
    ("code", "field", "change"),
    [
        ("02000007", "priority", lambda b: b.update(priority=9)),
        ("02000001", "name", lambda b: b.pop("name")),
        ("02000003", "name", lambda b: b.update(name="n" * 33)),
        ("02000006", "maxAlertingTime", lambda b: b.update(maxAlertingTime="twenty")),
        ("02000008", "strEndTime", lambda b: b.update(strEndTime="2999-13-45 00:00:00")),
        ("0200017", "skillParam.skillId", lambda b: b["skillParam"].update(skillId=7)),
        (
            "0200002",
            "strBeginTime",
            lambda b: b.update(
                strBeginTime=(datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d 00:00:00")
            ),
        ),
    ],
)
def test_modify_applies_the_add_rules(
    stack: Stack, code: str, field: str, change: Callable[[dict[str, Any]], object]
) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    refused(client.update_campaign(1, campaign_id, modified(body, change)), code, field)
    assert fetched(client, 1, campaign_id)["version"] == 1


def test_02000009_modify_with_another_device_type(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    desc = refused(
        client.update_campaign(1, campaign_id, ivr_body(body["name"])), "02000009", "deviceType"
    )
    assert "2" in desc
    # Another device type of the same family (a previewed skill-queue campaign) neither.
    previewed = modified(body, lambda b: b.update(deviceType=5))
    previewed["skillParam"] = {
        "skillId": 2,
        "skillName": "defaultAudioSkill",
        "outBoundType": 5,
        "previewParam": {"failInterval": 3, "obCallCount": 1, "autoCallTime": 5},
    }
    valid = modified(previewed, lambda b: b.update(name=b["name"] + "-p"))
    assert code_of(client.add_campaign(1, valid, validate_only=True)) == SUCCESS
    refused(client.update_campaign(1, campaign_id, previewed), "02000009", "deviceType")
    assert fetched(client, 1, campaign_id)["deviceType"] == 2


def test_0200005_modify_with_a_name_another_campaign_has(stack: Stack) -> None:
    client = stack.client(1)
    first, second = example_body(), example_body()
    added(client, 1, first)
    second_id = added(client, 1, second)
    taken = modified(second, lambda b: b.update(name=first["name"]))
    refused(client.update_campaign(1, second_id, taken), "0200005", "name")
    # Its own name is no conflict; another tenant's campaign of that name neither.
    ok(client.update_campaign(1, second_id, second))
    other_tenant = stack.client(2)
    other_id = added(other_tenant, 2, example_body())
    ok(other_tenant.update_campaign(2, other_id, copy.deepcopy(second)))


def test_an_ended_campaign(tmp_path: Path) -> None:
    """A campaign whose end has passed is 4 whatever was stored: it cannot be suspended,
    resumed or modified, and can be deleted."""
    ended_stack = start_stack(tmp_path)
    try:
        run_ended_campaign(ended_stack)
    finally:
        ended_stack.stop()


def run_ended_campaign(stack: Stack) -> None:
    client = stack.client(1)
    name = prefix()
    body = example_body(f"{name}e")
    campaign_id = added(client, 1, body)
    paused_id = added(
        client, 1, modified(example_body(f"{name}p"), lambda b: b.update(initStatus=1))
    )
    assert fetched(client, 1, paused_id)["status"] == 3
    before = counts(client)
    end_in_the_past(stack, campaign_id)
    end_in_the_past(stack, paused_id)

    for ended in (campaign_id, paused_id):
        assert fetched(client, 1, ended)["status"] == 4
        refused(client.pause_campaign(1, ended), "0200011")
        refused(client.resume_campaign(1, ended), "0200011")
        refused(client.update_campaign(1, ended, body), "0200016")
        refused(client.update_campaign(1, ended, body, validate_only=True), "0200016")
    assert fetched(client, 1, campaign_id)["version"] == 1
    assert listed_ids(client, 1, name=name, status=4) == [paused_id, campaign_id]
    assert listed_ids(client, 1, name=name, status=2) == []
    assert listed_ids(client, 1, name=name, status=3) == []
    assert {row["status"] for row in listed(client, 1, name=name)["data"]} == {4}
    # Ended campaigns still count until deleted.
    assert counts(client) == before

    ok(client.delete_campaign(1, campaign_id))
    ok(client.delete_campaign(1, paused_id, archive=True))
    refused(client.get_campaign(1, campaign_id), "0200007")
    refused(client.get_campaign(1, paused_id), "0200007")
    assert counts(client) == (before[0] - 2, before[1])


# -- the list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"rowsPerPage": 101}, "02000007", "rowsPerPage"),
        ({"rowsPerPage": -1}, "02000007", "rowsPerPage"),
        ({"rowsPerPage": "x"}, "02000006", "rowsPerPage"),
        ({"rowsPerPage": "1.5"}, "02000006", "rowsPerPage"),
        ({"curPage": "x"}, "02000006", "curPage"),
        ({"curPage": 2**31}, "02000007", "curPage"),
        ({"status": 1}, "02000007", "status"),
        ({"status": "executing"}, "02000006", "status"),
        ({"deviceType": 4}, "02000007", "deviceType"),
        ({"beginTime": "2026-13-45 00:00:00"}, "02000008", "beginTime"),
        ({"endTime": "2026-02-30 00:00:00"}, "02000008", "endTime"),
        ({"beginTime": "2026-01-01"}, "02000008", "beginTime"),
        ({"name": "n" * 31}, "02000003", "name"),
        ({"ccId": 0}, "02000007", "ccId"),
    ],
)
def test_list_parameter_errors(
    stack: Stack, params: dict[str, str | int], code: str, field: str
) -> None:
    refused(stack.client(1).list_campaigns(1, **params), code, field)


@pytest.mark.parametrize("name", ["rowsPerPage", "curPage", "status"])
def test_list_integer_with_two_minus_signs_is_02000006(stack: Stack, name: str) -> None:
    refused(stack.client(1).list_campaigns(1, **{name: "--5"}), "02000006", name)


def test_list_name_of_30_characters_is_accepted(stack: Stack) -> None:
    assert listed(stack.client(1), 1, name="n" * 30)["totalSize"] == 0


@pytest.fixture
def five(stack: Stack) -> tuple[str, list[int]]:
    """Five new executing campaigns of VDN 1 under one name prefix, newest first."""
    name = prefix()
    client = stack.client(1)
    ids = [added(client, 1, example_body(f"{name}{index}")) for index in range(5)]
    return name, ids[::-1]


def test_list_pages_walk_every_campaign_once_newest_first(
    stack: Stack, five: tuple[str, list[int]]
) -> None:
    name, newest_first = five
    client = stack.client(1)
    seen: list[int] = []
    for page in (1, 2, 3):
        answer = listed(client, 1, name=name, rowsPerPage=2, curPage=page)
        assert (answer["curPage"], answer["rowsPerPage"], answer["totalSize"]) == (page, 2, 5)
        assert len(answer["data"]) == (2 if page < 3 else 1)
        seen += [row["id"] for row in answer["data"]]
    assert seen == newest_first
    beyond = listed(client, 1, name=name, rowsPerPage=2, curPage=4)
    assert (beyond["data"], beyond["totalSize"]) == ([], 5)
    # Defaults: page 1 of 10.
    first = listed(client, 1, name=name)
    assert (first["curPage"], first["rowsPerPage"]) == (1, 10)
    assert [row["id"] for row in first["data"]] == newest_first
    assert [row["id"] for row in listed(client, 1, name=name, rowsPerPage=0)["data"]] == (
        newest_first
    )


@pytest.mark.parametrize("page", [0, -3, ""])
def test_list_page_below_1_is_page_1(
    stack: Stack, five: tuple[str, list[int]], page: int | str
) -> None:
    name, newest_first = five
    answer = listed(stack.client(1), 1, name=name, rowsPerPage=2, curPage=page)
    assert answer["curPage"] == 1
    assert [row["id"] for row in answer["data"]] == newest_first[:2]


def test_list_name_is_a_case_sensitive_substring(stack: Stack, five: tuple[str, list[int]]) -> None:
    name, newest_first = five
    client = stack.client(1)
    assert listed_ids(client, 1, name=name[1:-1]) == newest_first
    assert listed_ids(client, 1, name=f"{name}3") == [newest_first[1]]
    assert listed_ids(client, 1, name=name.upper()) == []
    assert listed_ids(client, 1, name=name.replace("-", "%")) == []
    assert listed_ids(client, 1, name=name.replace("-", "_")) == []


def test_list_name_filter_of_other_characters(stack: Stack) -> None:
    client = stack.client(1)
    name = f"测试 {uuid.uuid4().hex[:8]}"
    campaign_id = added(client, 1, example_body(name))
    assert listed_ids(client, 1, name=name) == [campaign_id]
    assert listed_ids(client, 1, name=name[1:]) == [campaign_id]
    assert listed(client, 1, name=name)["data"][0]["name"] == name


def test_list_status_filter(stack: Stack, five: tuple[str, list[int]]) -> None:
    name, newest_first = five
    client = stack.client(1)
    paused = newest_first[1::2]
    for campaign_id in paused:
        ok(client.pause_campaign(1, campaign_id))
    executing = [i for i in newest_first if i not in paused]
    assert listed_ids(client, 1, name=name, status=3) == paused
    assert listed_ids(client, 1, name=name, status=2) == executing
    assert listed_ids(client, 1, name=name, status=4) == []
    assert listed_ids(client, 1, name=name, status=0) == newest_first
    statuses = {row["id"]: row["status"] for row in listed(client, 1, name=name)["data"]}
    assert statuses == {i: 3 if i in paused else 2 for i in newest_first}
    filtered = listed(client, 1, name=name, status=3)
    assert filtered["totalSize"] == len(paused)


def test_list_device_type_filter(stack: Stack) -> None:
    name = prefix()
    client = stack.client(1)
    skill = added(client, 1, example_body(f"{name}s"))
    ivr = added(client, 1, ivr_body(f"{name}i"))
    assert listed_ids(client, 1, name=name, deviceType=3) == [ivr]
    assert listed_ids(client, 1, name=name, deviceType=2) == [skill]
    assert listed_ids(client, 1, name=name, deviceType=1) == []
    assert listed_ids(client, 1, name=name, deviceType=0) == [ivr, skill]
    row = listed(client, 1, name=name, deviceType=3)["data"][0]
    assert (row["deviceType"], row["name"]) == (3, f"{name}i")


def test_list_time_filters(stack: Stack) -> None:
    name = prefix()
    client = stack.client(1)
    first = example_body(f"{name}a")  # today 00:00:00 to tomorrow 23:59:59
    today = date.fromisoformat(first["strBeginTime"][:10])
    tomorrow = today + timedelta(days=1)
    second = example_body(f"{name}b")
    second["strBeginTime"] = f"{tomorrow} 00:00:00"
    second["strEndTime"] = f"{today + timedelta(days=3)} 12:00:00"
    first_id, second_id = added(client, 1, first), added(client, 1, second)

    assert listed_ids(client, 1, name=name, beginTime=f"{today} 00:00:00") == [
        second_id,
        first_id,
    ]
    assert listed_ids(client, 1, name=name, beginTime=f"{tomorrow} 00:00:00") == [second_id]
    assert listed_ids(client, 1, name=name, beginTime=f"{today} 00:00:01") == [second_id]
    assert listed_ids(client, 1, name=name, endTime=f"{tomorrow} 23:59:59") == [first_id]
    assert listed_ids(client, 1, name=name, endTime=f"{tomorrow} 23:59:58") == []
    assert listed_ids(
        client,
        1,
        name=name,
        beginTime=f"{tomorrow} 00:00:00",
        endTime=f"{today + timedelta(days=3)} 12:00:00",
    ) == [second_id]


def test_list_never_shows_another_tenants_campaigns(stack: Stack) -> None:
    name = prefix()
    one, two = stack.client(1), stack.client(2)
    ours = added(one, 1, example_body(f"{name}x"))
    # The same name is free in another tenant.
    theirs = added(two, 2, example_body(f"{name}x"))
    assert listed_ids(one, 1, name=name) == [ours]
    assert listed_ids(two, 2, name=name) == [theirs]
    every_id = [row["id"] for row in listed(two, 2, rowsPerPage=100)["data"]]
    assert ours not in every_id
    skill_one, ivr_one = counts(one)
    added(two, 2, ivr_body())
    assert counts(one) == (skill_one, ivr_one)


# -- delete --------------------------------------------------------------------------------


def one_url(stack: Stack, campaign_id: int, vdn: int = 1) -> str:
    return stack.base_url + paths.path(paths.ONE, vdn, campaign_id)


def test_archive_frees_the_name_and_the_count(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    ok(client.pause_campaign(1, campaign_id))
    before = counts(client)
    ok(client.delete_campaign(1, campaign_id, archive=True))
    refused(client.get_campaign(1, campaign_id), "0200007")
    for operation in ("pause", "resume", "modify", "delete"):
        refused(operate(stack, operation, 1, campaign_id), "0200007")
    assert listed_ids(client, 1, name=body["name"]) == []
    assert counts(client) == (before[0] - 1, before[1])
    # Another description: the same body signed in the same second would be a retry.
    again = modified(body, lambda b: b.update(description="again"))
    new_id = added(client, 1, again)
    assert new_id != campaign_id
    assert listed_ids(client, 1, name=body["name"]) == [new_id]


def test_delete_frees_the_name(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    ok(client.pause_campaign(1, campaign_id))
    ok(client.request("DELETE", one_url(stack, campaign_id), b'{"archiveHistory": 0}'))
    refused(client.get_campaign(1, campaign_id), "0200007")
    added(client, 1, modified(body, lambda b: b.update(description="again")))


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b'{"archiveHistory": 2}', "02000007", "archiveHistory"),
        (b'{"archiveHistory": -1}', "02000007", "archiveHistory"),
        (b'{"archiveHistory": "1"}', "02000006", "archiveHistory"),
        (b'{"archiveHistory": true}', "02000006", "archiveHistory"),
        (b'{"archiveHistory": 1.0}', "02000006", "archiveHistory"),
        (b"not json", "02000006", None),
        (b"[1]", "02000006", None),
        (b'{"archiveHistory": 0, "archiveHistory": 1}', "02000006", None),
    ],
)
def test_delete_body_errors(
    stack: Stack, executing: int, body: bytes, code: str, field: str | None
) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    refused(client.request("DELETE", one_url(stack, executing), body), code, field)
    assert fetched(client, 1, executing)["status"] == 3


def test_delete_body_may_start_with_a_byte_order_mark(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    body = b'\xef\xbb\xbf{"archiveHistory": 1}'
    ok(client.request("DELETE", one_url(stack, executing), body))
    assert client.get_campaign(1, executing).body["resultCode"] == "0200007"  # archived


def test_415_delete_with_a_text_body(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    response = client.request(
        "DELETE",
        one_url(stack, executing),
        b'{"archiveHistory": 1}',
        {"Content-Type": "text/plain"},
    )
    assert response.status == 415
    assert response.body["resultCode"] == "0200001"
    assert "Content-Type" in response.body["resultDesc"]
    assert fetched(client, 1, executing)["status"] == 3


# -- validateOnly --------------------------------------------------------------------------


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


def test_validate_only_modify_changes_nothing(stack: Stack) -> None:
    client = stack.client(1)
    body, other = example_body(), example_body()
    campaign_id = added(client, 1, body)
    added(client, 1, other)
    changed = modified(body, lambda b: b.update(name=b["name"] + "-v", maxAlertingTime=30))
    assert list(ok(client.update_campaign(1, campaign_id, changed, validate_only=True))) == (
        ENVELOPE_KEYS
    )
    found = fetched(client, 1, campaign_id)
    assert (found["name"], found["maxAlertingTime"], found["version"]) == (body["name"], 20, 1)
    taken = modified(body, lambda b: b.update(name=other["name"]))
    refused(client.update_campaign(1, campaign_id, taken, validate_only=True), "0200005")


@pytest.mark.parametrize("value", ["maybe", "1", "yes"])
def test_validate_only_must_be_true_or_false(stack: Stack, executing: int, value: str) -> None:
    client = stack.client(1)
    body = example_body()
    add_url = stack.base_url + paths.path(paths.ADD, 1) + f"?validateOnly={value}"
    modify_url = stack.base_url + paths.path(paths.MODIFY, 1, executing) + f"?validateOnly={value}"
    for method, url in (("POST", add_url), ("PUT", modify_url)):
        response = client.request(method, url, json.dumps(body).encode())
        refused(response, "02000007", "validateOnly")
    assert listed_ids(client, 1, name=body["name"]) == []
    assert fetched(client, 1, executing)["version"] == 1


@pytest.mark.parametrize("order", ["true&validateOnly=false", "false&validateOnly=true"])
def test_a_query_parameter_given_twice_is_refused(stack: Stack, executing: int, order: str) -> None:
    """Which of the two would count is ambiguous, whichever comes last."""
    client = stack.client(1)
    body = example_body()
    add_url = stack.base_url + paths.path(paths.ADD, 1) + f"?validateOnly={order}"
    refused(client.request("POST", add_url, json.dumps(body).encode()), "02000007", "validateOnly")
    assert listed_ids(client, 1, name=body["name"]) == []
    rows = order.replace("validateOnly", "rowsPerPage").replace("true", "5").replace("false", "500")
    list_url = stack.base_url + paths.path(paths.LIST, 1) + f"?rowsPerPage={rows}&curPage=1"
    refused(client.request("GET", list_url), "02000007", "rowsPerPage")
    assert fetched(client, 1, executing)["version"] == 1


# -- Idempotency-Key -----------------------------------------------------------------------


def test_idempotency_key_answers_the_same_campaign_when_signed_anew(stack: Stack) -> None:
    key = f"k-{uuid.uuid4()}"
    body = example_body()
    first = stack.post(body, headers={"Idempotency-Key": key})
    again = stack.post(body, headers={"Idempotency-Key": key}, timestamp=later_timestamp())
    assert first.request.headers["Authorization"] != again.request.headers["Authorization"]
    assert first.json()["resultCode"] == again.json()["resultCode"] == SUCCESS
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
    assert code_of(made[0]) == SUCCESS
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


# -- signing requests without a body ---------------------------------------------------------


def signed_by_hand(url: str, *, method: str = "GET", trailing_newline: bool = True) -> str:
    """An Authorization header for a bodiless request, signing `host` only."""
    ak, sk = KEYS[1]
    target = Target.parse(url)
    prefix_ = f"{auth_v2.SCHEME}/{ak}/{auth_v2.format_timestamp()}/host"
    canonical = auth_v2.canonical_request(
        method, target.path, target.query, "host", {"host": target.host_header}, b""
    )
    assert canonical.endswith(b"\n")
    if not trailing_newline:
        canonical = canonical[:-1]  # the old form: nothing after the canonical headers
    return f"{prefix_}/{auth_v2.signature(auth_v2.signing_key(sk, prefix_), canonical)}"


def test_a_get_signed_without_the_trailing_newline_is_refused(stack: Stack, executing: int) -> None:
    for url in (one_url(stack, executing), stack.base_url + paths.path(paths.LIST, 1)):
        accepted = raw_get(url, signed_by_hand(url))
        assert (accepted.status_code, accepted.json()["resultCode"]) == (200, SUCCESS)
        old = raw_get(url, signed_by_hand(url, trailing_newline=False))
        assert old.status_code == 401
        assert old.headers["www-authenticate"] == "auth-v2"
        assert old.json()["resultCode"] == "0200001"


def test_a_get_whose_query_changed_after_signing_is_refused(stack: Stack) -> None:
    ak, sk = KEYS[1]
    base = stack.base_url + paths.path(paths.LIST, 1)
    for signed_query, sent_query in (
        ("name=a", "name=b"),
        ("name=a", "name=a&status=3"),
        ("name=a&status=3", "name=a"),
        ("rowsPerPage=5", ""),
    ):
        signed_url = f"{base}?{signed_query}"
        authorization = sign_request(ak, sk, method="GET", url=signed_url)
        assert raw_get(signed_url, authorization).status_code == 200
        sent_url = f"{base}?{sent_query}" if sent_query else base
        changed = raw_get(sent_url, authorization)
        assert changed.status_code == 401, (signed_query, sent_query)
        assert changed.json()["resultCode"] == "0200001"


def test_bodiless_changes_are_signed_too(stack: Stack, executing: int) -> None:
    url = stack.base_url + paths.path(paths.PAUSE, 1, executing)
    old = httpx.put(
        url, headers={"Authorization": signed_by_hand(url, method="PUT", trailing_newline=False)}
    )
    assert old.status_code == 401
    assert fetched(stack.client(1), 1, executing)["status"] == 2
    new = httpx.put(url, headers={"Authorization": signed_by_hand(url, method="PUT")})
    assert (new.status_code, new.json()["resultCode"]) == (200, SUCCESS)
    assert fetched(stack.client(1), 1, executing)["status"] == 3


# -- health, availability and the OpenAPI document -----------------------------------------


def test_healthz(stack: Stack, offline_stack: Stack) -> None:
    for served in (stack, offline_stack):
        response = httpx.get(served.base_url + "/healthz", timeout=30)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz(stack: Stack, offline_stack: Stack) -> None:
    ready = httpx.get(stack.base_url + "/readyz", timeout=30)
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    offline = httpx.get(offline_stack.base_url + "/readyz", timeout=30)
    assert (offline.status_code, offline.json()) == (503, {"status": "unavailable"})


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200006_service_unavailable(offline_stack: Stack, operation: str) -> None:
    response = operate(offline_stack, operation, 1, 1)
    assert response.status == 503
    assert response.headers["retry-after"].isdigit()
    assert response.body["resultCode"] == "0200006"


def test_0200006_list_service_unavailable(offline_stack: Stack) -> None:
    response = offline_stack.client(1).list_campaigns(1)
    assert response.status == 503
    assert response.body["resultCode"] == "0200006"


def test_openapi_lists_every_operation(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    documented = response.json()["paths"]
    for operation in OPERATIONS:
        assert operation.path in documented, operation.path
        described = documented[operation.path].get(operation.method.lower())
        assert described is not None, (operation.method, operation.path)
        assert described["operationId"] == operation.operation_id
    vendor_paths = {path for path in documented if path.startswith("/rest/")}
    assert vendor_paths == {operation.path for operation in OPERATIONS}
    methods = {
        (path, method.upper())
        for path in vendor_paths
        for method in documented[path]
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert methods == {(operation.path, operation.method) for operation in OPERATIONS}


def test_every_field_outside_the_body_is_a_documented_parameter() -> None:
    """An error names such a field by its legacy name: the one the OpenAPI document lists,
    in the path, the query or a header."""
    documented = openapi.document()["paths"]
    for operation in OPERATIONS:
        described = documented[operation.path][operation.method.lower()]
        names = {parameter["name"] for parameter in described["parameters"]}
        assert set(operation.legacy_names().values()) <= names, operation.operation_id
    listing = next(o for o in OPERATIONS if o.operation_id == "listCampaigns")
    assert listing.legacy_names()["page_size"] == "rowsPerPage"
    assert listing.legacy_names()["skip"] == "curPage"


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="class")
def postgres_stack(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack on a fresh PostgreSQL database, for the tests of one class."""
    with contextmanager(_fresh_postgres_database)(postgres_admin_url) as url:
        started = start_stack(tmp_path_factory.mktemp("postgres"), database_url=url)
        try:
            yield started
        finally:
            started.stop()


class TestOnPostgreSQL:
    """The main lifecycle, an ended campaign and the list on PostgreSQL."""

    def test_lifecycle(self, postgres_stack: Stack) -> None:
        run_lifecycle(postgres_stack)

    def test_an_ended_campaign(self, postgres_stack: Stack) -> None:
        run_ended_campaign(postgres_stack)

    def test_list_pages_and_filters(self, postgres_stack: Stack) -> None:
        client = postgres_stack.client(1)
        name = prefix()
        ids = [added(client, 1, example_body(f"{name}{index}")) for index in range(3)]
        ivr = added(client, 1, ivr_body(f"{name}i"))
        newest_first = [ivr, *ids[::-1]]
        walked = [
            row["id"]
            for page in (1, 2)
            for row in listed(client, 1, name=name, rowsPerPage=2, curPage=page)["data"]
        ]
        assert walked == newest_first
        assert listed_ids(client, 1, name=name.upper()) == []
        assert listed_ids(client, 1, name=name, deviceType=3) == [ivr]
        ok(client.pause_campaign(1, ids[0]))
        assert listed_ids(client, 1, name=name, status=3) == [ids[0]]
        ok(client.delete_campaign(1, ids[0], archive=True))
        added(client, 1, modified(example_body(f"{name}0"), lambda b: b.update(priority=1)))
        assert listed(client, 1, name=name)["totalSize"] == 4


@pytest.mark.parametrize("name", ["rowsPerPage", "curPage", "status", "ccId"])
def test_list_integer_of_thousands_of_digits_is_02000007(stack: Stack, name: str) -> None:
    refused(stack.client(1).list_campaigns(1, **{name: "9" * 5000}), "02000007", name)


def test_list_page_beyond_32_bits_of_rows_is_02000007(stack: Stack) -> None:
    answer = stack.client(1).list_campaigns(1, curPage=2**31 - 1, rowsPerPage=100)
    refused(answer, "02000007", "curPage")


def test_list_empty_center_is_no_filter(stack: Stack) -> None:
    client = stack.client(1)
    assert listed(client, 1, ccId="")["totalSize"] == listed(client, 1)["totalSize"]
