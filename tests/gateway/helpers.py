"""Helpers for the tests that talk to the gateway as a legacy client: checking the envelope,
adding and listing campaigns, one operation on one campaign, the whole lifecycle (also run
in process and on PostgreSQL), raw connections for what no client library sends, and failed
calls of the service as the gateway receives them."""

from __future__ import annotations

import copy
import json
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import Executable, update

from isales_campaign.client.http import LegacyClient, LegacyResponse
from isales_campaign.legacy import auth_v2, paths
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaigns
from tests.gateway.conftest import EXAMPLE_POLICY_JSON, Stack, example_body, ivr_body

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


def envelope_of(response: httpx.Response, status: int, code: str) -> str:
    """The description of an envelope with this HTTP status and legacy code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resultCode"] == body["returnCode"] == code
    assert "Traceback" not in response.text
    return str(body["resultDesc"])


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
    changed = run_statement(
        stack,
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(end_at=datetime(2000, 1, 1)),  # naive UTC, as stored
    )
    assert changed == 1


def run_statement(stack: Stack, statement: Executable) -> int:
    """Run a statement on the stack's database, behind the service's back; the rows it
    changed."""
    engine = create_database_engine(stack.settings.database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            rowcount: int = connection.execute(statement).rowcount
            return rowcount
    finally:
        engine.dispose()


#: How each operation on one campaign travels: method, path template, body.
OPERATION_REQUESTS: dict[str, tuple[str, str, bool]] = {
    "get": ("GET", paths.ONE, False),
    "modify": ("PUT", paths.MODIFY, True),
    "pause": ("PUT", paths.PAUSE, False),
    "resume": ("PUT", paths.RESUME, False),
    "delete": ("DELETE", paths.ONE, False),
    "changes": ("GET", paths.CHANGES, False),
}


def operate(
    stack: Stack, operation: str, vdn: int | str, campaign_id: int | str, *, key_of: int = 1
) -> LegacyResponse:
    """One operation on one campaign, signed with VDN `key_of`'s key, ids as raw path text."""
    method, template, has_body = OPERATION_REQUESTS[operation]
    body = json.dumps(example_body()).encode() if has_body else b""
    url = stack.base_url + paths.path(template, vdn, campaign_id)
    return stack.client(key_of).request(method, url, body)


def modified(body: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    change(changed)
    return changed


def one_url(stack: Stack, campaign_id: int, vdn: int = 1) -> str:
    return stack.base_url + paths.path(paths.ONE, vdn, campaign_id)


# -- raw connections -----------------------------------------------------------------------

#: Far beyond any deadline of a gateway under test: a connection still open then was not
#: closed by it.
PATIENCE = 20.0


def connect(stack: Stack) -> socket.socket:
    host, _, port = stack.base_url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


# -- failed calls of the service ------------------------------------------------------------


#: The trailer that carries a rich status (grpc_status reads it).
_DETAILS_KEY = "grpc-status-details-bin"


class FailedCall(grpc.RpcError):
    """A failed call as grpc raises it, with the rich status the service attaches."""

    def __init__(self, code: grpc.StatusCode, message: str, *details: Any) -> None:
        super().__init__(message)
        self._code = code
        self._message = message
        status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    # Any: grpc's stubs type the metadata as a class it is not (pairs of name and value).
    def trailing_metadata(self) -> Any:
        if not self._status.details:
            return ()
        return ((_DETAILS_KEY, self._status.SerializeToString()),)


def failed_call(
    code: grpc.StatusCode,
    message: str,
    reason: str | None = None,
    violations: tuple[tuple[str, str, str], ...] = (),
    **metadata: str,
) -> FailedCall:
    """A failed call with an ErrorInfo of this reason (its metadata too), if any, and a
    BadRequest of these (field, legacy code, description) violations, if any."""
    details: list[Any] = []
    if reason is not None:
        details.append(error_details_pb2.ErrorInfo(reason=reason, metadata=metadata))
    if violations:
        bad = error_details_pb2.BadRequest()
        for field, code_, description in violations:
            bad.field_violations.add(field=field, reason=code_, description=description)
        details.append(bad)
    return FailedCall(code, message, *details)


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
