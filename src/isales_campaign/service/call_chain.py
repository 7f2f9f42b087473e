"""What happens around every call of the service, over gRPC (`interceptors`) and in process
(`isales_campaign.local_backend`) alike, so that the two cannot differ:

1. the caller's request id (metadata `x-request-id`, or a new one) follows every log line
   written while serving the call, the caller is known to the use cases that record who made a
   change (`caller`), and its deadline bounds its database work (`db.watchdog`);
   a call whose deadline passed before it started is answered DEADLINE_EXCEEDED;
2. the internal token, on the services that require it (UNAUTHENTICATED without it);
3. the drain: during a shutdown new calls are refused UNAVAILABLE while those in flight
   finish (`drain`);
4. a request that is not a valid protobuf message is INVALID_ARGUMENT (grpcio would answer
   INTERNAL: a malformed request is the caller's fault);
5. the method itself;
6. a refusal is answered as its rich status (`answers`) and logged in one line; any other
   exception is INTERNAL, logged with its traceback;
7. the status code and duration go to the Prometheus metrics, and a refusal's legacy result
   code too.

A failed call raises `CallFailed` with the status to answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import Token
from typing import Any

import grpc

from isales_campaign.internal_token import presents
from isales_campaign.logs import (
    REQUEST_ID_HEADER,
    REQUEST_ID_PATTERN,
    current_request_id,
    new_request_id,
)
from isales_campaign.metrics import (
    GRPC_HANDLED,
    GRPC_HANDLING_SECONDS,
    GRPC_REFUSED,
    GRPC_STARTED,
)
from isales_campaign.result_codes import legacy_code
from isales_campaign.service import answers
from isales_campaign.service.caller import Caller, current_caller, no_certificate
from isales_campaign.service.db.watchdog import call_deadline
from isales_campaign.service.drain import Drain
from isales_campaign.service.errors import (
    CallerNotAuthorized,
    CallFailed,
    MalformedRequest,
    ServiceError,
)

log = logging.getLogger(__name__)

Metadata = Sequence[tuple[str, str | bytes]]

#: Stands in for a request whose bytes did not parse (the interceptor passes it on).
UNDECODABLE = object()


def _no_code() -> grpc.StatusCode | None:
    return None


class CallChain:
    def __init__(
        self,
        drain: Drain,
        *,
        drained: frozenset[str],
        token_required: frozenset[str],
        internal_token: str,
    ) -> None:
        """`drained`: the services refused during a shutdown; `token_required`: those that
        answer only callers presenting `internal_token` (nobody when it is empty). Other
        services (health, reflection) answer anyone, always."""
        self._drain = drain
        self._drained = drained
        self._token_required = token_required
        self._internal_token = internal_token
        #: Each method's chain, made on its first call (the methods are fixed, so this stays
        #: small): a call then costs a lookup, not new metric children.
        self._methods: dict[str, ChainedMethod] = {}

    def method(self, path: str, grpc_type: str = "unary") -> ChainedMethod:
        """The chain of the method `/package.Service/Method`; `grpc_type` as the metrics
        name it ("unary", "server_stream")."""
        chained = self._methods.get(path)
        if chained is None:
            service, _, name = path.strip("/").rpartition("/")
            chained = ChainedMethod(
                service,
                name,
                grpc_type,
                drain=self._drain if service in self._drained else None,
                token_required=service in self._token_required,
                internal_token=self._internal_token,
            )
            chained = self._methods.setdefault(path, chained)
        return chained


class ChainedMethod:
    def __init__(
        self,
        service: str,
        name: str,
        grpc_type: str,
        *,
        drain: Drain | None,
        token_required: bool,
        internal_token: str,
    ) -> None:
        self._name = name
        self._drain = drain
        self._token_required = token_required
        self._internal_token = internal_token
        self._grpc_type = grpc_type
        self._started_total = GRPC_STARTED.labels(grpc_type, service, name)
        self._handling_seconds = GRPC_HANDLING_SECONDS.labels(grpc_type, service, name)
        self._service = service
        self._handled_total: dict[grpc.StatusCode, Any] = {}
        self._refused_total: dict[tuple[grpc.StatusCode, str], Any] = {}

    def serve(
        self,
        request: Any,
        metadata: Metadata,
        time_remaining: float | None,
        method: Callable[[Any], Any],
        code_set: Callable[[], grpc.StatusCode | None] = _no_code,
        certificate_subject: Callable[[], str] = no_certificate,
    ) -> Any:
        """`method(request)` inside the chain; CallFailed with the status to answer.
        `code_set`: the code a method set without failing (grpcio's health servicer does);
        `certificate_subject`: the caller's client certificate's, read when a change needs
        it."""
        self._started_total.inc()
        if time_remaining is not None and time_remaining <= 0:  # waited for a worker too long
            self._handled(grpc.StatusCode.DEADLINE_EXCEEDED).inc()
            raise CallFailed(answers.DEADLINE_PASSED)
        caller = Caller(
            request_id_of(metadata), metadata, self._internal_token, certificate_subject
        )
        entered = _enter(caller, _deadline(time_remaining))
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        drain = None
        try:
            drain = self._admit(request, metadata)
            response = method(request)
            code = code_set() or grpc.StatusCode.OK
            return response
        except Exception as error:
            status = self._failed(error)
            code = status.code
            raise CallFailed(status) from None
        finally:
            if drain is not None:
                drain.leave()
            _leave(entered)
            self._handled(code).inc()
            self._handling_seconds.observe(time.perf_counter() - started)

    def stream(
        self,
        request: Any,
        metadata: Metadata,
        time_remaining: float | None,
        method: Callable[[Any], Iterator[Any]],
        when_done: Callable[[Callable[[], None]], object],
        certificate_subject: Callable[[], str] = no_certificate,
    ) -> Iterator[Any]:
        """`method(request)`'s responses inside the chain, as `serve` answers one:
        CallFailed with the status that ends the stream. `when_done(callback)`: run the
        callback when the call ends, however it ends (a client that goes away stops the
        reading of the responses, which then never end by themselves)."""
        self._started_total.inc()
        if time_remaining is not None and time_remaining <= 0:
            self._handled(grpc.StatusCode.DEADLINE_EXCEEDED).inc()
            raise CallFailed(answers.DEADLINE_PASSED)
        caller = Caller(
            request_id_of(metadata), metadata, self._internal_token, certificate_subject
        )
        return _ChainedStream(self, request, metadata, time_remaining, method, caller, when_done)

    def _admit(self, request: Any, metadata: Metadata) -> Drain | None:
        """Refuse a call without the token, during a drain, or whose request did not parse;
        the drain the call entered, if any."""
        if self._token_required:
            check_internal_token(metadata, self._internal_token)
        drain = None
        if self._drain is not None:
            self._drain.enter()
            drain = self._drain
        if request is UNDECODABLE:
            if drain is not None:
                drain.leave()
            raise MalformedRequest()
        return drain

    def _failed(self, error: Exception) -> grpc.Status:
        """The status a failed call is answered with (see `failure_status`); a refusal is
        counted with its legacy result code."""
        status = failure_status(self._name, error)
        if isinstance(error, ServiceError):
            self._refused(status.code, legacy_code(error.code)).inc()
        return status

    def _refused(self, code: grpc.StatusCode, result_code: str) -> Any:
        """The counter of calls refused with `code` and `result_code`, made when first
        needed (the result codes are the contract's: a bounded set)."""
        key = (code, result_code)
        counter = self._refused_total.get(key)
        if counter is None:
            counter = self._refused_total.setdefault(
                key,
                GRPC_REFUSED.labels(
                    self._grpc_type, self._service, self._name, code.name, result_code
                ),
            )
        return counter

    def _handled(self, code: grpc.StatusCode) -> Any:
        """The counter of calls answered `code`, made when first needed."""
        counter = self._handled_total.get(code)
        if counter is None:
            counter = self._handled_total.setdefault(
                code, GRPC_HANDLED.labels(self._grpc_type, self._service, self._name, code.name)
            )
        return counter


class _ChainedStream:
    """The responses of a server-streaming call, each read inside the chain's context (set
    and reset around every read: a generator's would outlive the thread's context when the
    call is dropped)."""

    def __init__(
        self,
        chained: ChainedMethod,
        request: Any,
        metadata: Metadata,
        time_remaining: float | None,
        method: Callable[[Any], Iterator[Any]],
        caller: Caller,
        when_done: Callable[[Callable[[], None]], object],
    ) -> None:
        self._chained = chained
        self._request = request
        self._metadata = metadata
        self._deadline = _deadline(time_remaining)
        self._method = method
        self._caller = caller
        self._responses: Iterator[Any] | None = None
        self._drain: Drain | None = None
        self._started = time.perf_counter()
        self._done = False
        self._done_lock = threading.Lock()
        # A call that ends before its responses do (the client went away) is CANCELLED.
        when_done(lambda: self._finish(grpc.StatusCode.CANCELLED))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        entered = _enter(self._caller, self._deadline)
        try:
            if self._responses is None:
                self._drain = self._chained._admit(self._request, self._metadata)
                self._responses = iter(self._method(self._request))
            return next(self._responses)
        except StopIteration:
            self._finish(grpc.StatusCode.OK)
            raise
        except Exception as error:
            status = self._chained._failed(error)
            self._finish(status.code)
            raise CallFailed(status) from None
        finally:
            _leave(entered)

    def _finish(self, code: grpc.StatusCode) -> None:
        """Count the call once, with the code it ended with, and leave the drain."""
        with self._done_lock:
            if self._done:
                return
            self._done = True
        if self._drain is not None:
            self._drain.leave()
        self._chained._handled(code).inc()
        self._chained._handling_seconds.observe(time.perf_counter() - self._started)


_Entered = tuple[Token[str | None], Token[Caller | None], Token[float | None]]


def _deadline(time_remaining: float | None) -> float | None:
    """The `time.monotonic()` by which a call must be answered (None: no deadline)."""
    return None if time_remaining is None else time.monotonic() + time_remaining


def _enter(caller: Caller, deadline: float | None) -> _Entered:
    """Set the call's context: its request id, its caller and its deadline."""
    return (
        current_request_id.set(caller.request_id),
        current_caller.set(caller),
        call_deadline.set(deadline),
    )


def _leave(entered: _Entered) -> None:
    request_id, caller, deadline = entered
    current_request_id.reset(request_id)
    current_caller.reset(caller)
    call_deadline.reset(deadline)


def check_internal_token(metadata: Metadata, token: str) -> None:
    """CallerNotAuthorized unless the call presents the internal token."""
    if not token:
        raise CallerNotAuthorized("this service has no internal token (ISALES_INTERNAL_TOKEN)")
    if not presents(metadata, token):
        raise CallerNotAuthorized("missing or wrong internal token")


def failure_status(method: str, error: Exception) -> grpc.Status:
    """The status a failed call is answered with, logged: a refusal's own rich status;
    INTERNAL for anything else (a fault of the service, with its traceback)."""
    if isinstance(error, ServiceError):
        status = answers.status_of(error)
        log.info(
            "call refused",
            extra={
                "method": method,
                "grpc_code": status.code.name,
                "result_code": legacy_code(error.code),
                "fields": [problem.path for problem in error.fields],
            },
        )
        return status
    log.error("call failed unexpectedly", exc_info=error, extra={"method": method})
    return answers.INTERNAL


def request_id_of(metadata: Metadata) -> str:
    """The caller's request id (metadata `x-request-id`) when it is safe, or a new one."""
    for key, value in metadata or ():
        if (
            key == REQUEST_ID_HEADER
            and isinstance(value, str)
            and REQUEST_ID_PATTERN.fullmatch(value)
        ):
            return value
    return new_request_id()
