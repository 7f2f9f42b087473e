"""Slow or idle clients cannot hold the gateway's connections: a request's headers and its
body each have a deadline, and ambiguous framing is refused."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import orjson
import pytest

from isales_campaign.gateway.answers import CLIENT_CLOSED
from isales_campaign.metrics import GATEWAY_METRICS
from tests.gateway.conftest import STRICT_DEADLINE, Stack, start_stack
from tests.gateway.helpers import PATIENCE, connect, read_all
from tests.waiting import wait_for


def test_a_connection_that_sends_nothing_is_closed(strict: Stack) -> None:
    with connect(strict) as connection:
        assert read_all(connection) == b""


def test_a_connection_that_trickles_its_headers_is_closed(strict: Stack) -> None:
    with connect(strict) as connection:
        connection.settimeout(STRICT_DEADLINE / 5)
        request = b"POST /rest/isales/v2/openapi/campaigns/1 HTTP/1.1\r\nHost: x\r\nX-Pad: "
        closed = False
        for _ in range(int(PATIENCE / (STRICT_DEADLINE / 5))):
            try:
                connection.sendall(request[:1] or b"a")
                request = request[1:]
                if connection.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue  # nothing from the server yet: keep trickling
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed


def test_a_body_that_does_not_arrive_is_answered_408(strict: Stack) -> None:
    with connect(strict) as connection:
        connection.sendall(
            b"POST /rest/isales/v2/openapi/campaigns/1 HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": '
        )
        answer = read_all(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert orjson.loads(body)["resultCode"] == "0200001"


def test_content_length_with_chunked_encoding_is_refused(strict: Stack) -> None:
    with connect(strict) as connection:
        connection.sendall(
            b"POST /rest/isales/v2/openapi/campaigns/1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        answer = read_all(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert orjson.loads(body)["resultCode"] == "0200001"


def test_a_prompt_client_is_served_on_a_kept_alive_connection(strict: Stack) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(strict) as connection, connection.makefile("rb") as responses:
        for _ in range(3):
            connection.sendall(request)
            assert responses.readline().startswith(b"HTTP/1.1 200 ")
            length = 0
            while (line := responses.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            assert orjson.loads(responses.read(length)) == {"status": "ok"}


def _status_of_healthz(connection: socket.socket) -> bytes:
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return connection.recv(65536).split(b"\r\n", 1)[0]


def test_connections_beyond_the_cap_are_answered_503(tmp_path: Path) -> None:
    capped = start_stack(tmp_path, http_max_connections=2)
    try:
        with connect(capped) as first:
            assert _status_of_healthz(first) == b"HTTP/1.1 200 OK"
            # The first is held open (the cap counts it, with the new one): one too many.
            with connect(capped) as second:
                assert _status_of_healthz(second) == b"HTTP/1.1 503 Service Unavailable"
    finally:
        capped.stop()


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 200),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            200,
        ),
    ],
    ids=["CONNECT", "h2c upgrade", "websocket upgrade"],
)
def test_unknown_methods_and_upgrades_are_answered_quietly(
    strict: Stack, caplog: pytest.LogCaptureFixture, request_head: bytes, status: int
) -> None:
    caplog.set_level(logging.INFO)
    with connect(strict) as connection:
        connection.sendall(request_head)
        answer = read_all(connection)  # closed at the latest by the deadline for a next request
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def closed_requests() -> float:
    labels = {"operation": "addCampaign", "status": str(CLIENT_CLOSED.status), "result_code": ""}
    return GATEWAY_METRICS.get_sample_value("isales_gateway_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 100\r\n", b"Transfer-Encoding: gzip\r\n"],
    ids=["Content-Length", "Transfer-Encoding gzip"],
)
def test_a_client_that_leaves_mid_body_is_a_closed_request(
    strict: Stack, caplog: pytest.LogCaptureFixture, framing: bytes
) -> None:
    """Not an error of the gateway's: one line at INFO and a count, no 500, no traceback."""
    caplog.set_level(logging.INFO)
    before = closed_requests()
    with connect(strict) as connection:
        connection.sendall(
            b"POST /rest/isales/v2/openapi/campaigns/1 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n" + framing + b'\r\n{"na'
        )
    wait_for(lambda: closed_requests() == before + 1, "the closed request counted")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert [getattr(r, "status", None) for r in lines] == [CLIENT_CLOSED.status]
    assert lines[0].levelno == logging.INFO


def test_headers_beyond_the_limit_are_answered_431_without_reading_them(strict: Stack) -> None:
    """A 1 MiB header line: the gateway answers once the limit (32 KiB) is passed and closes
    the connection, without waiting for (or holding) the rest."""
    with connect(strict) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(1024):
                connection.sendall(b"a" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the gateway, as it should be: the answer was sent before
        answer = read_all(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head
    refusal = orjson.loads(body)
    assert refusal["resultCode"] == "0200001"
    assert refusal["resultDesc"] == "the request line and headers exceed 32768 bytes"


def test_headers_within_the_limit_are_served(strict: Stack) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n"
    with connect(strict) as connection:
        for _ in range(2):  # the limit is per request, not per connection
            connection.sendall(request)
            head = connection.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 "), head
