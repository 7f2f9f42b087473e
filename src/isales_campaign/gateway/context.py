"""Per-request context: the request id, one JSON log line and metrics per request, and a
last-resort answer for a fault of the gateway (`answers.INTERNAL_ERROR`).

Pure ASGI (not BaseHTTPMiddleware) so the request body is streamed untouched.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isales_campaign.gateway import answers
from isales_campaign.logs import REQUEST_ID_HEADER, REQUEST_ID_PATTERN
from isales_campaign.metrics import HTTP_HANDLED, HTTP_HANDLING_SECONDS

log = logging.getLogger("isales_campaign.gateway")

_HEADER = REQUEST_ID_HEADER.encode()


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
                HTTP_HANDLED.labels(str(status), state.get("result_code") or "").inc()
                HTTP_HANDLING_SECONDS.observe(elapsed)
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


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == _HEADER:  # kept only when safe in headers, gRPC metadata and logs
            text: str = bytes(value).decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex
