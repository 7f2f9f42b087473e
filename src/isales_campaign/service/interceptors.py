"""Server interceptors: what every call gets before its servicer sees it.

* The caller's request id (metadata `x-request-id`, or a new one) follows every
  log line written while serving the call.
* The call's deadline bounds its database work (see `db.watchdog`).
* A request that is not a valid protobuf message is answered INVALID_ARGUMENT
  (grpcio would answer INTERNAL): a malformed request is the caller's fault.
* A `ServiceError` raised by a servicer is answered as its rich status, and
  logged; any other exception is INTERNAL, logged with its traceback. This is
  the one place where errors become statuses.
* During a shutdown, new calls are refused UNAVAILABLE while those in flight
  finish (see `drain`).
* With ISALES_REQUIRE_INTERNAL_TOKEN, a call without the internal token is
  refused UNAUTHENTICATED.
* Its status code and duration go to the Prometheus metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from isales_campaign.logs import REQUEST_ID_HEADER, REQUEST_ID_PATTERN, current_request_id
from isales_campaign.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_STARTED
from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.db.watchdog import call_deadline
from isales_campaign.service.drain import Drain
from isales_campaign.service.errors import ServiceError, check_internal_token

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:  # not subscriptable at run time
    _Handler = grpc.RpcMethodHandler


class MalformedRequest(ServiceError):
    status_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_CONVERSION_ERROR,
            "the request is not a valid protobuf message of this method's request type",
        )


class _Undecodable:
    """Stands in for a request whose bytes did not parse."""


_UNDECODABLE = _Undecodable()


class RequestInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        drain: Drain,
        own_services: frozenset[str],
        *,
        internal_token: str = "",
        require_token: bool = False,
    ) -> None:
        """`own_services`: the services that `drain` refuses during a shutdown and that, with
        `require_token`, answer only callers presenting `internal_token` (nobody when it is
        empty); health and reflection answer anyone, always."""
        self._drain = drain
        self._own_services = own_services
        self._internal_token = internal_token
        self._require_token = require_token
        #: The wrapped handler of each method called so far (the servers' methods are fixed,
        #: so it stays small): a call then costs a lookup instead of a new handler.
        self._wrapped: dict[str, _Handler] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        wrapped = self._wrapped.get(handler_call_details.method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = self._wrap(handler_call_details.method, handler)
        return self._wrapped.setdefault(handler_call_details.method, wrapped)

    def _wrap(self, path: str, handler: _Handler) -> _Handler:
        service, _, method = path.strip("/").rpartition("/")
        inner = handler.unary_unary
        assert inner is not None
        deserialize = handler.request_deserializer
        own = service in self._own_services
        drain = self._drain if own else None
        token_required = own and self._require_token
        internal_token = self._internal_token
        started_total = GRPC_STARTED.labels("unary", service, method)
        handling_seconds = GRPC_HANDLING_SECONDS.labels("unary", service, method)
        handled_total: dict[grpc.StatusCode, Any] = {}

        def lenient_deserialize(data: bytes) -> Any:
            try:
                return deserialize(data) if deserialize is not None else data
            except Exception:
                return _UNDECODABLE

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = context.invocation_metadata()
            scope = CallScope(request_id_of(metadata), context.time_remaining())
            started_total.inc()
            started = time.perf_counter()
            failed = True
            entered: Drain | None = None
            try:
                if token_required:
                    check_internal_token(metadata, internal_token)
                if drain is not None:
                    drain.enter()
                    entered = drain
                if request is _UNDECODABLE:
                    raise MalformedRequest()
                response = inner(request, context)
                failed = False
                return response
            except Exception as error:
                context.abort_with_status(failure_status(method, error))
            finally:
                if entered is not None:
                    entered.leave()
                scope.close()
                # An abort sets the code; any other exception is answered UNKNOWN.
                # (ServicerContext.code() exists since grpcio 1.38; the stubs lack it.)
                set_code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
                code = set_code or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
                counter = handled_total.get(code)
                if counter is None:
                    counter = handled_total.setdefault(
                        code, GRPC_HANDLED.labels("unary", service, method, code.name)
                    )
                counter.inc()
                handling_seconds.observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=lenient_deserialize,
            response_serializer=handler.response_serializer,
        )


class CallScope:
    """What the code serving a call sees of it until `close()`: the request id in every log
    line, and the deadline for its database work."""

    def __init__(self, request_id: str, time_remaining: float | None) -> None:
        self._request_id = current_request_id.set(request_id)
        self._deadline = call_deadline.set(
            None if time_remaining is None else time.monotonic() + time_remaining
        )

    def close(self) -> None:
        current_request_id.reset(self._request_id)
        call_deadline.reset(self._deadline)


def failure_status(method: str, error: Exception) -> grpc.Status:
    """The status a failed call is answered with, logged: a `ServiceError`'s own rich
    status; INTERNAL for anything else (a fault of the service, with its traceback)."""
    if isinstance(error, ServiceError):
        _log_refusal(method, error)
        return rpc_status.to_status(error.to_status())
    log.error("call failed unexpectedly", exc_info=error, extra={"method": method})
    return _INTERNAL


_INTERNAL = rpc_status.to_status(
    status_pb2.Status(
        code=grpc.StatusCode.INTERNAL.value[0], message="internal error; nothing was changed"
    )
)


def _log_refusal(method: str, error: ServiceError) -> None:
    log.info(
        "call refused",
        extra={
            "method": method,
            "grpc_code": error.status_code.name,
            "result_code": legacy_code(error.code),
            "fields": [problem.path for problem in error.fields],
        },
    )


def request_id_of(metadata: Any) -> str:
    """The caller's request id (metadata `x-request-id`) when it is safe, or a new one."""
    for key, value in metadata or ():
        if (
            key == REQUEST_ID_HEADER
            and isinstance(value, str)
            and REQUEST_ID_PATTERN.fullmatch(value)
        ):
            return value
    return uuid.uuid4().hex
