"""auth-v2 failures: each is a 401 envelope and creates nothing; bodiless requests are signed."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from isales_campaign.client import sign_request
from isales_campaign.client.http import Target
from isales_campaign.legacy import auth_v2, paths
from isales_campaign.legacy.auth_v2 import authorization, canonical_request, format_timestamp
from isales_campaign.logs import JsonFormatter
from isales_campaign.metrics import SERVICE_METRICS
from tests.gateway.conftest import CONTENT_TYPE, KEYS, Stack, example_body, start_stack
from tests.gateway.helpers import SUCCESS, fetched, one_url


def assert_unauthorized(response: httpx.Response, reason: str) -> str:
    """A 401 envelope whose description says `reason`; the description."""
    assert response.status_code == 401, response.text
    body = response.json()
    assert list(body) == ["resultCode", "resultDesc", "returnCode", "returnDesc"]
    assert body["resultCode"] == body["returnCode"] == "0200001"
    desc: str = body["resultDesc"]
    assert desc == body["returnDesc"]
    assert desc.startswith(f"authentication failed: {reason}"), desc
    assert response.headers["www-authenticate"] == "auth-v2"
    return desc


def assert_not_created(stack: Stack, body: dict[str, Any]) -> None:
    """The same campaign, properly signed, is still new (no 0200005)."""
    assert stack.post(body).json()["resultCode"] == "0200000"


def _signature_for(stack: Stack, body: bytes, **kwargs: Any) -> str:
    ak, sk = KEYS[1]
    return sign_request(ak, sk, method="POST", url=stack.url(1), body=body, **kwargs)


def test_no_header(stack: Stack) -> None:
    body = example_body()
    assert_unauthorized(stack.post(body, keys=("", "")), "no Authorization header")
    assert_not_created(stack, body)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer abc", "garbled Authorization header"),
        ("auth-v2", "garbled Authorization header"),
        ("auth-v2/gw-ak-1/2024-01-01T00:00:00Z/host", "garbled Authorization header"),
        ("auth-v2/gw-ak-1/yesterday/host/" + "0" * 64, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/{now}/host/" + "A" * 64, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/{now}/host/" + "0" * 63, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/{now}/Host/" + "0" * 64, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/{now}/host;host/" + "0" * 64, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/2024-02-30T00:00:00Z/host/" + "0" * 64, "the timestamp is not"),
        ("auth-v2//{now}/host/" + "0" * 64, "garbled Authorization header"),
        ("auth-v2/gw-ak-1/{now}//" + "0" * 64, "garbled Authorization header"),
    ],
)
def test_garbled_header(stack: Stack, value: str, reason: str) -> None:
    body = example_body()
    header = value.format(now=format_timestamp())
    assert_unauthorized(stack.post(body, headers={"Authorization": header}), reason)
    assert_not_created(stack, body)


def test_bad_signature(stack: Stack) -> None:
    body = example_body()
    response = stack.post(body, keys=("gw-ak-1", "not-the-secret"))
    desc = assert_unauthorized(response, "the signature does not match")
    assert "not-the-secret" not in desc
    assert "gw-sk-1" not in desc
    # The client can diff the canonical request it signed against the gateway's.
    sent = response.request
    signed = {"host": sent.headers["host"]}
    mine = canonical_request("POST", sent.url.raw_path.decode(), "", "host", signed, sent.content)
    head, _, normalized_body = mine.rpartition(b"\n")
    assert f"canonical request is {head.decode()!r} followed by a newline" in desc
    assert f"({len(normalized_body)} bytes, SHA-256 {sha256(normalized_body).hexdigest()})" in desc
    assert_not_created(stack, body)


def test_unknown_access_key(stack: Stack) -> None:
    body = example_body()
    assert_unauthorized(stack.post(body, keys=("no-such-ak", "whatever")), "unknown access key")
    assert_unauthorized(stack.post(body, keys=("x" * 300, "whatever")), "unknown access key")
    assert_not_created(stack, body)


def test_access_key_of_another_vdn(stack: Stack) -> None:
    body = example_body()
    assert_unauthorized(
        stack.post(body, vdn=1, keys=KEYS[2]), "the access key belongs to VDN 2, not 1"
    )
    assert_not_created(stack, body)


@pytest.mark.parametrize("minutes", [-16, 16])
def test_timestamp_outside_the_window(stack: Stack, minutes: int) -> None:
    body = example_body()
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    desc = assert_unauthorized(
        stack.post(body, timestamp=format_timestamp(moment)), "the timestamp is 9"
    )
    assert "s away from the gateway's clock (" in desc
    assert "at most 900 s are accepted" in desc
    assert_not_created(stack, body)


def test_timestamp_inside_the_window(stack: Stack) -> None:
    moment = datetime.now(UTC) - timedelta(minutes=14)
    response = stack.post(example_body(), timestamp=format_timestamp(moment, millis=True))
    assert response.json()["resultCode"] == "0200000"


def test_body_changed_after_signing(stack: Stack) -> None:
    body = example_body()
    signed_for = orjson.dumps({**body, "maxAlertingTime": 21})
    assert_unauthorized(stack.post(body, sign_body=signed_for), "the signature does not match")
    assert_not_created(stack, body)


def test_host_not_signed(stack: Stack) -> None:
    body = example_body()
    assert_unauthorized(
        stack.post(body, signed=("content-length", "content-type")),
        "host must be among the signed headers",
    )
    assert_not_created(stack, body)


def test_signed_header_missing_from_the_request(stack: Stack) -> None:
    body = example_body()
    raw = orjson.dumps(body)
    signature = _signature_for(
        stack, raw, signed=("host", "x-extra"), extra_headers={"X-Extra": "1"}
    )
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": signature}
    assert_unauthorized(
        httpx.post(stack.url(1), content=raw, headers=headers),
        "the signed header x-extra is not in the request",
    )
    assert_not_created(stack, body)


def test_other_host_or_content_type_than_signed(stack: Stack) -> None:
    body = example_body()
    raw = orjson.dumps(body)
    other_host = _signature_for(stack, raw)  # signed for 127.0.0.1:port
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": other_host, "Host": "example.com"}
    desc = assert_unauthorized(
        httpx.post(stack.url(1), content=raw, headers=headers), "the signature does not match"
    )
    assert "host:example.com" in desc
    signed = _signature_for(
        stack, raw, signed=("content-type", "host"), content_type="application/json"
    )
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": signed}
    assert_unauthorized(
        httpx.post(stack.url(1), content=raw, headers=headers), "the signature does not match"
    )
    assert_not_created(stack, body)


def test_query_string_is_signed(stack: Stack) -> None:
    ak, sk = KEYS[1]
    body = example_body()
    raw = orjson.dumps(body)
    url = stack.url(1) + "?b=2&a=x%20y"
    signature = sign_request(ak, sk, method="POST", url=url, body=raw)
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": signature}
    tampered = httpx.post(stack.url(1) + "?b=3&a=x%20y", content=raw, headers=headers)
    assert_unauthorized(tampered, "the signature does not match")
    assert httpx.post(url, content=raw, headers=headers).json()["resultCode"] == "0200000"


def test_a_query_signed_on_the_uri_line_as_the_demo_client_does(stack: Stack) -> None:
    """The vendor's demo client carries `?validateOnly=true` in the URI it signs (path and
    query on one line, no query line); it is accepted, and still covers the query."""
    ak, sk = KEYS[1]
    body = example_body()
    raw = orjson.dumps(body)
    host = stack.base_url.removeprefix("http://")
    path = "/rest/isales/v2/openapi/campaigns/1"

    def demo_signed(query: str) -> str:
        headers = {"Host": host, "Content-Type": CONTENT_TYPE}
        return authorization(
            ak, sk, method="POST", path=f"{path}?{query}", query="", headers=headers, body=raw
        )

    def send(query: str, signature: str) -> httpx.Response:
        headers = {"Content-Type": CONTENT_TYPE, "Authorization": signature}
        return httpx.post(f"{stack.base_url}{path}?{query}", content=raw, headers=headers)

    checked = send("validateOnly=true", demo_signed("validateOnly=true"))
    assert checked.json()["resultCode"] == "0200000"
    assert checked.json()["returnObject"] == {"id": 0}  # checked only: nothing was added
    assert_unauthorized(
        send("validateOnly=false", demo_signed("validateOnly=true")), "the signature does not"
    )
    assert_not_created(stack, body)


def test_the_log_names_the_reason_but_no_secret(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = stack.post(example_body(), keys=("gw-ak-1", "sk-that-is-wrong"))
    assert_unauthorized(response, "the signature does not match")
    signature = response.request.headers["authorization"].rpartition("/")[2]
    lines = [JsonFormatter().format(r) for r in caplog.records]
    failures = [orjson.loads(line) for line in lines if "authentication failed" in line]
    assert failures
    assert failures[0]["reason"] == "the signature does not match"
    assert failures[0]["access_key"] == "gw-ak-1"
    assert failures[0]["request_id"] == response.headers["x-request-id"]
    for line in lines:
        assert signature not in line
        assert "sk-that-is-wrong" not in line
        assert "gw-sk-1" not in line


def test_a_gateway_with_another_internal_token_verifies_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack = start_stack(tmp_path, gateway_token="not-the-service-token")
    try:
        body = example_body()
        with caplog.at_level(logging.ERROR, logger="isales_campaign.gateway"):
            response = stack.post(body)
        assert response.status_code == 500
        assert response.json()["resultCode"] == "0200001"
        assert "ISALES_INTERNAL_TOKEN" in caplog.text
        assert "not-the-service-token" not in caplog.text
    finally:
        stack.stop()
    with sqlite3.connect(stack.settings.database_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM campaigns").fetchone() == (0,)


def test_a_service_that_requires_the_token_on_every_method_serves_its_gateway(
    tmp_path: Path,
) -> None:
    stack = start_stack(tmp_path, require_internal_token=True)
    try:
        client = stack.client(1)
        added = client.add_campaign(1, example_body())
        assert added.result_code == "0200000", added.body
        campaign_id = added.body["returnObject"]["id"]
        assert client.get_campaign(1, campaign_id).result_code == "0200000"
        assert httpx.get(stack.base_url + "/readyz", timeout=10).status_code == 200
    finally:
        stack.stop()


def _fetched(code: str) -> float:
    """GetAccessKey calls the service answered with `code` (its metrics: same process)."""
    value = SERVICE_METRICS.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "unary",
            "grpc_service": "isales.campaign.v2.AccessKeyService",
            "grpc_method": "GetAccessKey",
            "grpc_code": code,
        },
    )
    return value or 0.0


def test_a_tenant_key_is_fetched_once_for_many_signatures(tmp_path: Path) -> None:
    """A client that signs each request anew (a new timestamp) costs the gateway no call of
    the service per request: the access key is kept for a while."""
    stack = start_stack(tmp_path)

    def fetched() -> float:
        return _fetched("OK")

    try:
        before = fetched()
        moment = datetime.now(UTC)
        for seconds in range(3):  # three signatures, three timestamps
            timestamp = format_timestamp(moment - timedelta(seconds=seconds))
            response = stack.post(example_body(), timestamp=timestamp)
            assert response.json()["resultCode"] == "0200000"
        assert fetched() - before == 1
    finally:
        stack.stop()


def test_an_unknown_access_key_is_asked_about_once_in_a_while(stack: Stack) -> None:
    """Requests with a key nobody has do not each cost a call of the service."""
    unknown = f"unknown-{uuid.uuid4().hex}"
    before = _fetched("NOT_FOUND")
    for _ in range(3):
        assert_unauthorized(
            stack.post(example_body(), keys=(unknown, "whatever")), "unknown access key"
        )
    assert _fetched("NOT_FOUND") - before == 1


def raw_get(url: str, authorization: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": authorization}, timeout=30)


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
