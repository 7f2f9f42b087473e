"""Slow or idle clients cannot hold the gateway's connections: a request's headers and its
body each have a deadline, and ambiguous framing is refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.gateway.conftest import Stack, start_stack

#: The deadline of the gateway under test, in seconds.
DEADLINE = 0.5
#: Far beyond the deadline: a connection still open then was not closed by it.
PATIENCE = 20.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("strict"), http_read_timeout_seconds=DEADLINE)
    yield started
    started.stop()


def connect(stack: Stack) -> socket.socket:
    host, _, port = stack.base_url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_connection_that_sends_nothing_is_closed(strict: Stack) -> None:
    with connect(strict) as connection:
        assert read_all(connection) == b""


def test_a_connection_that_trickles_its_headers_is_closed(strict: Stack) -> None:
    with connect(strict) as connection:
        connection.settimeout(DEADLINE / 5)
        request = b"POST /rest/isales/v2/openapi/campaigns/1 HTTP/1.1\r\nHost: x\r\nX-Pad: "
        closed = False
        for _ in range(int(PATIENCE / (DEADLINE / 5))):
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
