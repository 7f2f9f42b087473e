"""The table of answers: how failed calls of the service are answered, and, against real
servers, every kind of answer of the vendor's paths provoked for real (and those that depend
on the route, on the history's path too): each is what the table says, and the statuses
observed are exactly those the OpenAPI document lists."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import grpc
import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from isales_campaign.client.http import LegacyResponse
from isales_campaign.gateway import answers
from isales_campaign.gateway.answers import ANSWERS, Kind
from isales_campaign.gateway.context import RequestContext
from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.legacy import paths
from isales_campaign.metrics import GATEWAY_METRICS
from isales_campaign.result_codes import from_legacy
from tests.gateway.conftest import Stack, example_body, start_stack
from tests.gateway.helpers import connect, failed_call, read_all
from tests.waiting import wait_for

_UNAVAILABLE_DESC = "the campaign service is unavailable; nothing was changed, retry later"


def test_every_kind_has_a_name_of_its_own_and_a_documented_code() -> None:
    names = [kind.name for kind in ANSWERS]
    assert len(set(names)) == len(names)
    for kind in ANSWERS:
        assert kind.code is None or from_legacy(kind.code) is not None, kind.name
        assert kind.description, kind.name


@pytest.mark.parametrize(
    ("error", "kind", "code", "desc"),
    [
        (
            failed_call(grpc.StatusCode.UNAVAILABLE, "connection refused"),
            answers.UNAVAILABLE,
            "0200006",
            _UNAVAILABLE_DESC,
        ),
        (
            failed_call(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"),
            answers.UNAVAILABLE,
            "0200006",
            _UNAVAILABLE_DESC,
        ),
        (
            failed_call(grpc.StatusCode.UNAVAILABLE, "the database is busy", "0200006"),
            answers.UNAVAILABLE,
            "0200006",
            "the database is busy",
        ),
        (
            failed_call(grpc.StatusCode.FAILED_PRECONDITION, "campaign 7 is executing", "0200011"),
            answers.REFUSED,
            "0200011",
            "campaign 7 is executing",
        ),
        (
            # The gateway's own credentials, refused: nothing the client can mend.
            failed_call(grpc.StatusCode.UNAUTHENTICATED, "bad token", "0200001"),
            answers.INTERNAL_ERROR,
            "0200001",
            "internal error (request id r-1)",
        ),
        (
            failed_call(grpc.StatusCode.INTERNAL, "a bug"),
            answers.INTERNAL_ERROR,
            "0200001",
            "internal error (request id r-1)",
        ),
    ],
    ids=["unavailable", "too slow", "database", "refusal", "gateway's token", "fault"],
)
def test_a_failed_call_is_answered_by_its_grpc_status_and_details(
    error: grpc.RpcError, kind: Kind, code: str, desc: str
) -> None:
    answer = answers.of_rpc_error(error, "r-1", unavailable=_UNAVAILABLE_DESC)
    assert (answer.kind, answer.code, answer.desc) == (kind, code, desc)


def test_a_fault_below_the_handlers_is_answered_as_an_internal_error() -> None:
    """The request context's last resort, for a fault the handlers did not catch."""

    async def broken(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise RuntimeError("a bug")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(RequestContext(broken)(scope, receive, send))
    assert sent[0]["status"] == answers.INTERNAL_ERROR.status
    assert orjson.loads(sent[1]["body"])["resultCode"] == answers.INTERNAL_ERROR.code


# -- every kind of answer, for real ------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What came back: the status, the headers (lower-case names) and the envelope's code."""

    status: int
    headers: Mapping[str, str]
    code: str | None
    #: Whether the client received it (not: only the gateway's count shows it).
    received: bool = True


@dataclass(frozen=True)
class Stacks:
    stack: Stack
    strict: Stack
    offline: Stack
    #: A gateway whose internal token the service refuses: every signed request faults.
    faulty: Stack


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("faulty"), gateway_token="not-the-token")
    yield started
    started.stop()


def _of(response: httpx.Response | LegacyResponse) -> Observed:
    if isinstance(response, LegacyResponse):
        return Observed(response.status, response.headers, response.body.get("resultCode"))
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Observed(response.status_code, headers, response.json().get("resultCode"))


def _sent_raw(stack: Stack, request: bytes) -> Observed:
    """The answer to bytes no client library sends, read until the gateway closes."""
    with connect(stack) as connection:
        # Refused before it was all sent, the answer is on its way all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        answer = read_all(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Observed(int(status_line.split()[1]), headers, orjson.loads(body).get("resultCode"))


def _counted() -> dict[tuple[str, str], float]:
    """The gateway's count of answered requests by (status, result code)."""
    counted: dict[tuple[str, str], float] = {}
    for family in GATEWAY_METRICS.collect():
        for sample in family.samples:
            if sample.name == "isales_gateway_requests_total":
                key = (sample.labels["status"], sample.labels["result_code"])
                counted[key] = counted.get(key, 0.0) + sample.value
    return counted


def _left_mid_body(stacks: Stacks) -> Observed:
    """Nobody receives this answer: it is observed where the gateway counts it."""
    before = _counted()
    with connect(stacks.stack) as connection:
        connection.sendall(
            f"POST {paths.path(paths.ADD, 1)} HTTP/1.1\r\nHost: x\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na'
        )
    wait_for(lambda: _counted() != before, "the closed request counted")
    grown = [key for key, value in _counted().items() if value > before.get(key, 0.0)]
    assert len(grown) == 1, grown
    status, code = grown[0]
    return Observed(int(status), {}, code or None, received=False)


_ADD = paths.path(paths.ADD, 1)
_ONE = paths.path(paths.ONE, 1, 1)

#: How each kind of answer of the vendor's paths is provoked.
PROVOKED: dict[Kind, Callable[[Stacks], Observed]] = {
    answers.SUCCESS: lambda s: _of(s.stack.post(example_body())),
    answers.REFUSED: lambda s: _of(s.stack.post({**example_body(), "priority": 9})),
    answers.MALFORMED_REQUEST: lambda s: _sent_raw(
        s.stack,
        f"POST {_ADD} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    answers.UNAUTHORIZED: lambda s: _of(s.stack.post(example_body(), keys=("", ""))),
    answers.NOT_FOUND: lambda s: _of(
        s.stack.client(1).request("GET", s.stack.base_url + paths.path(paths.ONE, 1, "1%2F9"))
    ),
    answers.METHOD_NOT_ALLOWED: lambda s: _of(httpx.patch(s.stack.base_url + _ONE)),
    answers.BODY_TOO_SLOW: lambda s: _sent_raw(
        s.strict,
        f"POST {_ADD} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode() + b"{",
    ),
    answers.BODY_TOO_LARGE: lambda s: _of(s.offline.post(b"{" + b" " * 5000 + b"}")),
    answers.UNSUPPORTED_MEDIA_TYPE: lambda s: _of(
        s.stack.post(example_body(), headers={"Content-Type": "text/plain"})
    ),
    answers.HEADERS_TOO_LARGE: lambda s: _sent_raw(
        s.stack,
        f"GET {_ONE} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode()
        + b"a" * (s.stack.settings.http_max_header_bytes + 1024),
    ),
    answers.CLIENT_CLOSED: _left_mid_body,
    answers.INTERNAL_ERROR: lambda s: _of(s.faulty.post(example_body())),
    answers.UNAVAILABLE: lambda s: _of(s.offline.post(example_body())),
}


def _check(kind: Kind, answer: Observed) -> None:
    """The answer is what the table says of its kind."""
    assert answer.status == kind.status, (kind.name, answer)
    assert kind.code is None or answer.code == kind.code, (kind.name, answer)
    for name, value in kind.headers.items():
        assert answer.headers.get(name.lower()) == value, (kind.name, name, answer)
    for name in kind.varying_headers:
        assert name.lower() in answer.headers, (kind.name, name, answer)


def test_the_openapi_document_lists_exactly_the_statuses_the_vendors_paths_answer(
    stack: Stack, strict: Stack, offline_stack: Stack, faulty: Stack
) -> None:
    # Every kind answered on the vendor's paths is provoked; the others answer the gateway's
    # own resources (/healthz, /readyz, /openapi.json, /docs).
    own = {answers.SERVED, answers.READY, answers.NOT_READY}
    assert set(PROVOKED) == set(ANSWERS) - own

    stacks = Stacks(stack, strict, offline_stack, faulty)
    observed = {kind: provoke(stacks) for kind, provoke in PROVOKED.items()}
    for kind, answer in observed.items():
        _check(kind, answer)

    # 499 is the status logged and counted for a client that left before its request was
    # whole: no client ever receives it, and the document says what a client receives.
    received = {answer.status for answer in observed.values() if answer.received}
    assert {answer.status for answer in observed.values()} - received == {499}
    document = httpx.get(stack.base_url + "/openapi.json", timeout=30).json()
    for operation in OPERATIONS:
        described = document["paths"][operation.path][operation.method.lower()]
        assert {int(status) for status in described["responses"]} == received, (
            operation.operation_id
        )


def _changes(stack: Stack, campaign_id: int | str = 1) -> str:
    return stack.base_url + paths.path(paths.CHANGES, 1, campaign_id)


def _history_of_a_new_campaign(stacks: Stacks) -> Observed:
    client = stacks.stack.client(1)
    campaign_id = client.add_campaign(1, example_body()).body["returnObject"]["id"]
    return _of(client.list_campaign_changes(1, campaign_id))


#: How each kind of answer that depends on the route is provoked on the history's path (this
#: gateway's extension); those decided below the router are the same on every path.
HISTORY_PROVOKED: dict[Kind, Callable[[Stacks], Observed]] = {
    answers.SUCCESS: _history_of_a_new_campaign,
    answers.REFUSED: lambda s: _of(s.stack.client(1).list_campaign_changes(1, 1, rowsPerPage=101)),
    answers.UNAUTHORIZED: lambda s: _of(httpx.get(_changes(s.stack))),
    answers.NOT_FOUND: lambda s: _of(s.stack.client(1).request("GET", _changes(s.stack, "1%2F9"))),
    answers.METHOD_NOT_ALLOWED: lambda s: _of(httpx.post(_changes(s.stack))),
    answers.BODY_TOO_LARGE: lambda s: _of(
        s.offline.client(1).request("GET", _changes(s.offline), b"{" + b" " * 5000 + b"}")
    ),
    answers.UNSUPPORTED_MEDIA_TYPE: lambda s: _of(
        s.stack.client(1).request("GET", _changes(s.stack), b"{}", {"Content-Type": "text/plain"})
    ),
    answers.INTERNAL_ERROR: lambda s: _of(s.faulty.client(1).list_campaign_changes(1, 1)),
    answers.UNAVAILABLE: lambda s: _of(s.offline.client(1).list_campaign_changes(1, 1)),
}


def test_the_history_answers_as_the_table_says_and_documents_it(
    stack: Stack, strict: Stack, offline_stack: Stack, faulty: Stack
) -> None:
    stacks = Stacks(stack, strict, offline_stack, faulty)
    observed = {kind: provoke(stacks) for kind, provoke in HISTORY_PROVOKED.items()}
    for kind, answer in observed.items():
        _check(kind, answer)
    assert observed[answers.METHOD_NOT_ALLOWED].headers["allow"] == "GET, HEAD"
    document = httpx.get(stack.base_url + "/openapi.json", timeout=30).json()
    described = document["paths"][paths.CHANGES]["get"]["responses"]
    assert {answer.status for answer in observed.values()} <= {int(s) for s in described}
