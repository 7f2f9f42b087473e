"""The call chain every call of the service runs in, over gRPC and in process alike."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from isales_campaign.internal_token import bearer
from isales_campaign.logs import REQUEST_ID_HEADER, current_request_id
from isales_campaign.metrics import SERVICE_METRICS
from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.call_chain import UNDECODABLE, CallChain, ChainedMethod
from isales_campaign.service.db.watchdog import call_deadline
from isales_campaign.service.drain import Drain
from isales_campaign.service.errors import CallFailed, CampaignNotFound

TOKEN = "chain-token"
GUARDED = "test.chain.Guarded"
OPEN = "test.chain.Open"


@pytest.fixture
def drain() -> Drain:
    return Drain()


@pytest.fixture
def chain(drain: Drain) -> CallChain:
    return CallChain(
        drain,
        drained=frozenset({GUARDED}),
        token_required=frozenset({GUARDED}),
        internal_token=TOKEN,
    )


def _method(chain: CallChain, name: str, service: str = GUARDED) -> ChainedMethod:
    return chain.method(f"/{service}/{name}")


WITH_TOKEN = (bearer(TOKEN),)


def _failure(method: ChainedMethod, metadata: Any = WITH_TOKEN, **call: Any) -> grpc.Status:
    with pytest.raises(CallFailed) as failed:
        method.serve(
            call.get("request", "request"),
            metadata,
            call.get("time_remaining", 5.0),
            call.get("handler", lambda _request: "answer"),
        )
    return failed.value.status


def _handled(service: str, method: str, code: str) -> float:
    value = SERVICE_METRICS.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_type": "unary", "grpc_service": service, "grpc_method": method, "grpc_code": code},
    )
    return value or 0.0


def test_a_call_is_answered_and_counted(chain: CallChain) -> None:
    method = _method(chain, "Counted")
    answer = method.serve("request", [bearer(TOKEN)], 5.0, lambda request: request.upper())
    assert answer == "REQUEST"
    assert _handled(GUARDED, "Counted", "OK") == 1


def test_a_refusal_is_its_rich_status_and_one_log_line(
    chain: CallChain, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(_request: object) -> object:
        raise CampaignNotFound(1, 42)

    with caplog.at_level(logging.INFO, logger="isales_campaign.service.call_chain"):
        status = _failure(_method(chain, "Refused"), handler=refuse)
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.details == "campaign 42 does not exist in VDN 1"
    rich = rpc_status.from_call(_as_call(status))
    assert rich is not None
    info = error_details_pb2.ErrorInfo()
    rich.details[0].Unpack(info)
    not_found = legacy_code(ResultCode.RESULT_CODE_CAMPAIGN_NOT_FOUND)
    assert info.reason == not_found
    [line] = [r for r in caplog.records if r.getMessage() == "call refused"]
    assert (line.grpc_code, line.result_code) == ("NOT_FOUND", not_found)  # type: ignore[attr-defined]
    assert _handled(GUARDED, "Refused", "NOT_FOUND") == 1


def test_a_fault_is_internal_with_its_traceback_in_the_log(
    chain: CallChain, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(_request: object) -> object:
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="isales_campaign.service.call_chain"):
        status = _failure(_method(chain, "Faulty"), handler=fail)
    assert (status.code, status.details) == (
        grpc.StatusCode.INTERNAL,
        "internal error; nothing was changed",
    )
    assert "a bug" not in status.details
    [line] = [r for r in caplog.records if r.getMessage() == "call failed unexpectedly"]
    assert line.exc_info is not None


def test_a_guarded_service_wants_the_internal_token(chain: CallChain) -> None:
    method = _method(chain, "Token")
    for metadata in ((), [bearer("another token")], [bearer(TOKEN), bearer(TOKEN)]):
        status = _failure(method, metadata)
        assert (status.code, status.details) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong internal token",
        )
    assert _handled(GUARDED, "Token", "UNAUTHENTICATED") == 3
    # Health and reflection answer anyone.
    assert _method(chain, "Open", OPEN).serve("request", (), 5.0, lambda r: r) == "request"


def test_without_a_configured_token_a_guarded_service_answers_nobody(drain: Drain) -> None:
    chain = CallChain(
        drain, drained=frozenset(), token_required=frozenset({GUARDED}), internal_token=""
    )
    status = _failure(_method(chain, "NoToken"), [bearer("")])
    assert status.code == grpc.StatusCode.UNAUTHENTICATED
    assert "ISALES_INTERNAL_TOKEN" in status.details


def test_a_draining_server_refuses_new_calls_of_its_services(
    chain: CallChain, drain: Drain
) -> None:
    drain.start()
    status = _failure(_method(chain, "Drained"))
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert "shutting down; nothing was changed" in status.details
    assert _method(chain, "Open", OPEN).serve("request", (), 5.0, lambda r: r) == "request"


def test_a_request_that_did_not_parse_is_invalid_argument(chain: CallChain) -> None:
    status = _failure(_method(chain, "Malformed"), request=UNDECODABLE)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in status.details


def test_a_call_whose_deadline_passed_before_it_started_is_not_run(chain: CallChain) -> None:
    ran: list[object] = []
    status = _failure(_method(chain, "Late"), time_remaining=0.0, handler=ran.append)
    assert status.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert ran == []
    assert _handled(GUARDED, "Late", "DEADLINE_EXCEEDED") == 1
    started = SERVICE_METRICS.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "unary", "grpc_service": GUARDED, "grpc_method": "Late"},
    )
    assert started == 1  # every call handled was started


def test_the_method_sees_the_request_id_and_the_deadline(chain: CallChain) -> None:
    seen: dict[str, Any] = {}

    def look(_request: object) -> None:
        seen["request_id"] = current_request_id.get()
        seen["deadline"] = call_deadline.get()

    method = _method(chain, "Scoped")
    before = time.monotonic()
    method.serve("r", [bearer(TOKEN), (REQUEST_ID_HEADER, "trace-7")], 2.0, look)
    assert seen["request_id"] == "trace-7"
    assert before + 1.5 < seen["deadline"] <= time.monotonic() + 2.0
    assert current_request_id.get() != "trace-7"  # the scope ends with the call
    method.serve("r", [bearer(TOKEN), (REQUEST_ID_HEADER, "a b")], None, look)
    assert seen["request_id"] != "a b"  # unsafe: replaced by a new one
    assert seen["deadline"] is None


class _CallEnd:
    """What a stream registers to run when its call ends (grpcio's `add_callback`)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def __call__(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        for callback in self.callbacks:
            callback()


def _stream(
    chain: CallChain, name: str, responses: Callable[[object], Iterator[Any]], **call: Any
) -> tuple[Iterator[Any], _CallEnd]:
    ended = _CallEnd()
    stream = chain.method(f"/{GUARDED}/{name}", "server_stream").stream(
        call.get("request", "request"),
        call.get("metadata", [*WITH_TOKEN, (REQUEST_ID_HEADER, "stream-1")]),
        call.get("time_remaining", 5.0),
        responses,
        ended,
    )
    return stream, ended


def _streamed(name: str, code: str) -> float:
    value = SERVICE_METRICS.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "server_stream",
            "grpc_service": GUARDED,
            "grpc_method": name,
            "grpc_code": code,
        },
    )
    return value or 0.0


def test_a_stream_reads_each_response_inside_the_call_and_is_counted_once(
    chain: CallChain, drain: Drain
) -> None:
    def responses(_request: object) -> Iterator[Any]:
        for _ in range(2):
            yield current_request_id.get()

    stream, ended = _stream(chain, "Streamed", responses)
    assert list(stream) == ["stream-1", "stream-1"]
    assert current_request_id.get() != "stream-1"  # set around each read only
    ended.end()  # grpcio runs the callback when the call ends, as it always does
    assert _streamed("Streamed", "OK") == 1
    assert _streamed("Streamed", "CANCELLED") == 0
    drain.start()
    drain.wait_idle(time.monotonic())  # the stream left the drain: nothing in flight


def test_a_streams_deadline_is_the_one_it_started_with(chain: CallChain) -> None:
    def deadlines(_request: object) -> Iterator[Any]:
        for _ in range(2):
            yield call_deadline.get()
            time.sleep(0.05)

    stream, _ = _stream(chain, "Deadline", deadlines, time_remaining=5.0)
    first, second = list(stream)
    assert first == second


def test_a_stream_its_client_left_is_cancelled_and_leaves_the_drain(
    chain: CallChain, drain: Drain
) -> None:
    def endless(_request: object) -> Iterator[Any]:
        while True:
            yield "more"

    stream, ended = _stream(chain, "Left", endless)
    assert next(stream) == "more"
    ended.end()  # the client went away; nobody reads on
    assert _streamed("Left", "CANCELLED") == 1
    drain.start()
    started = time.monotonic()
    drain.wait_idle(started + 5)
    assert time.monotonic() - started < 4  # not held by the stream


def test_a_stream_is_refused_like_a_call(chain: CallChain, drain: Drain) -> None:
    def refuse(_request: object) -> Iterator[Any]:
        raise CampaignNotFound(1, 42)
        yield  # a generator

    for name, responses, call, code in (
        ("NoToken", refuse, {"metadata": ()}, grpc.StatusCode.UNAUTHENTICATED),
        ("Malformed", refuse, {"request": UNDECODABLE}, grpc.StatusCode.INVALID_ARGUMENT),
        ("Refusing", refuse, {}, grpc.StatusCode.NOT_FOUND),
    ):
        stream, _ = _stream(chain, name, responses, **call)
        with pytest.raises(CallFailed) as failed:
            next(stream)
        assert failed.value.status.code == code
        assert _streamed(name, code.name) == 1
    drain.start()
    stream, _ = _stream(chain, "Drained", refuse)
    with pytest.raises(CallFailed) as failed:
        next(stream)
    assert failed.value.status.code == grpc.StatusCode.UNAVAILABLE


def _as_call(status: grpc.Status) -> Any:
    """`rpc_status.from_call` reads a call's code, details and trailing metadata."""

    class Call:
        def code(self) -> grpc.StatusCode:
            return status.code

        def details(self) -> str:
            return status.details

        def trailing_metadata(self) -> Any:
            return status.trailing_metadata

    return Call()
