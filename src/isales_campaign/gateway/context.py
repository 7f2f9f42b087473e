"""Per-request context: the request id, one JSON log line and metrics per request, and a
last-resort answer for a fault of the gateway (`answers.INTERNAL_ERROR`).

The metrics count the API's traffic: each request by its operation (the route's operation
id, `metrics.NO_OPERATION` when it reached none), HTTP status and legacy result code. The
gateway's own resources (/healthz, /readyz, /openapi.json, /docs) are not counted: probes and
document reads would inflate the request rate and skew the latency of the API.

Pure ASGI (not BaseHTTPMiddleware) so the request body is streamed untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isales_campaign.gateway import answers
from isales_campaign.logs import REQUEST_ID_HEADER, REQUEST_ID_PATTERN, new_request_id
from isales_campaign.metrics import HTTP_HANDLED, HTTP_HANDLING_SECONDS, NO_OPERATION

log = logging.getLogger("isales_campaign.gateway")

_HEADER = REQUEST_ID_HEADER.encode()


class RequestContext:
    def __init__(self, app: ASGIApp, operations: Collection[str] = ()) -> None:
        """`operations`: the names of the routes of the API's operations; a request another
        route took is the gateway's own resource, and not counted."""
        self.app = app
        self._operations = frozenset(operations)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        elapsed: float | None = None

        def count() -> float:
            """Count the request once, before its last byte leaves: whoever has the answer
            finds it in the metrics."""
            nonlocal elapsed
            if elapsed is None:
                elapsed = time.perf_counter() - started
                operation = self._operation(scope, state)
                if operation is not None:
                    count_request(operation, status, state.get("result_code") or "", elapsed)
            return elapsed

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            elif not message.get("more_body", False):
                count()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Bad input never ends here; this is a fault of the gateway itself.
            log.exception("unhandled error", extra={"request_id": request_id})
            if status == 0:
                for message in answers.messages(answers.internal_error(request_id)):
                    await send_with_id(message)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "result_code": state.get("result_code"),
                    "access_key": state.get("access_key"),
                    "duration_ms": round(count() * 1000, 3),
                },
            )

    def _operation(self, scope: Scope, state: dict[str, Any]) -> str | None:
        """The request's `operation` label; None for the gateway's own resources."""
        operation = state.get("operation")  # set by the pipeline as it takes the request
        if operation is not None:
            name: str = operation.operation_id
            return name
        route = scope.get("route")  # the route Starlette chose, if any
        if route is not None and getattr(route, "name", None) not in self._operations:
            return None
        return NO_OPERATION  # no route, or an operation's path with another method


#: The children of the metrics by their labels, made when first needed (the labels are
#: bounded): a request costs a lookup, not the locks of `labels()`.
_counters: dict[tuple[str, int, str], Any] = {}
_histograms: dict[tuple[str, int], Any] = {}


def count_request(operation: str, status: int, result_code: str, seconds: float | None) -> None:
    """Count an answered request; `seconds`: the time it took (None: unknown, not observed)."""
    key = (operation, status, result_code)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters.setdefault(
            key, HTTP_HANDLED.labels(operation, str(status), result_code)
        )
    counter.inc()
    if seconds is not None:
        histogram = _histograms.get((operation, status))
        if histogram is None:
            histogram = _histograms.setdefault(
                (operation, status), HTTP_HANDLING_SECONDS.labels(operation, str(status))
            )
        histogram.observe(seconds)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == _HEADER:  # kept only when safe in headers, gRPC metadata and logs
            text: str = bytes(value).decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(text):
                return text
            break
    return new_request_id()
