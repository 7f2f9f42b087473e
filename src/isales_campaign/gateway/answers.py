"""Every answer the gateway gives, in one table, and the functions that build them.

Each kind of answer (`ANSWERS`) has its HTTP status, its legacy code, the headers it goes
with and its description in the OpenAPI document, which lists its responses from here. No
other module chooses a status: they raise a `LegacyError` built here, or ask for an answer
by its kind. A failed call of the service becomes an answer here too (`RPC_ANSWERS`).

Two answers are not the gateway's own choice: uvicorn answers a connection beyond
ISALES_HTTP_MAX_CONNECTIONS itself (503, plain text), and Starlette's StaticFiles the
conditional and range requests for the assets of /docs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message

from isales_campaign.gateway import envelope
from isales_campaign.gateway.errors import AuthFailure, LegacyError
from isales_campaign.gateway.problems import Problem
from isales_campaign.legacy import auth_v2
from isales_campaign.legacy.wire import CONTENT_TYPE
from isales_campaign.result_codes import ResultCode, legacy_code

if TYPE_CHECKING:
    from isales_campaign.gateway.backend import Readiness

#: Seconds a client is asked to wait after a 503.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True, eq=False)
class Kind:
    """One kind of answer. Compared by identity: `error.kind is answers.UNAVAILABLE`."""

    #: What it says, in a few words.
    name: str
    status: int
    #: The envelope's legacy code; None when each answer carries its own (a refusal) or the
    #: answer has no envelope.
    code: str | None
    #: Its description in the OpenAPI document (`{success}`: what the operation answers).
    description: str
    #: Headers every answer of this kind carries.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Headers each answer of this kind sets to its own value.
    varying_headers: tuple[str, ...] = ()
    #: Whether the OpenAPI document lists it among the responses of the vendor's operations.
    documented: bool = True


_PARAMETER_ERROR = envelope.PARAMETER_ERROR
_CLOSE = {"Connection": "close"}

SUCCESS = Kind("success", 200, envelope.SUCCESS, f"resultCode {envelope.SUCCESS}: {{success}}")
# The vendor answers its refusals with HTTP 200 and their own legacy code.
REFUSED = Kind(
    "refusal",
    200,
    None,
    "Otherwise a legacy error code and a description naming every offending field by its JSON "
    "path.",
)
# Answered by the HTTP protocol itself, before any request exists; the connection is closed.
MALFORMED_REQUEST = Kind(
    "malformed request",
    400,
    _PARAMETER_ERROR,
    f"A request the HTTP parser refuses ({_PARAMETER_ERROR}).",
    _CLOSE,
)
UNAUTHORIZED = Kind(
    "authentication failed",
    401,
    _PARAMETER_ERROR,
    f"Authentication failed ({_PARAMETER_ERROR}).",
    {"WWW-Authenticate": auth_v2.SCHEME},
)
NOT_FOUND = Kind("not found", 404, _PARAMETER_ERROR, f"No such resource ({_PARAMETER_ERROR}).")
METHOD_NOT_ALLOWED = Kind(
    "method not allowed",
    405,
    _PARAMETER_ERROR,
    f"Method not allowed ({_PARAMETER_ERROR}).",
    varying_headers=("Allow",),
)
# The rest of a body that came too slowly may still come: the connection is closed.
BODY_TOO_SLOW = Kind(
    "body too slow",
    408,
    _PARAMETER_ERROR,
    f"The body did not arrive in time ({_PARAMETER_ERROR}).",
    _CLOSE,
)
BODY_TOO_LARGE = Kind(
    "body too large",
    413,
    _PARAMETER_ERROR,
    f"Body larger than the limit ({_PARAMETER_ERROR}).",
)
UNSUPPORTED_MEDIA_TYPE = Kind(
    "media type",
    415,
    _PARAMETER_ERROR,
    f"A body whose Content-Type is not application/json with UTF-8 ({_PARAMETER_ERROR}).",
)
# Answered by the HTTP protocol itself, without reading the rest; the connection is closed.
HEADERS_TOO_LARGE = Kind(
    "headers too large",
    431,
    _PARAMETER_ERROR,
    f"Request line and headers larger than the limit ({_PARAMETER_ERROR}).",
    _CLOSE,
)
# nginx's "client closed request": the status logged and counted for a request whose client
# left before it was whole. Nobody receives it, so the document does not list it.
CLIENT_CLOSED = Kind(
    "client closed request",
    499,
    None,
    "The client closed the connection before its request was whole (logged and counted; "
    "never sent).",
    documented=False,
)
INTERNAL_ERROR = Kind(
    "internal fault",
    500,
    _PARAMETER_ERROR,
    f"Internal fault of the gateway or the service ({_PARAMETER_ERROR}, with the request id).",
)
UNAVAILABLE = Kind(
    "service unavailable",
    503,
    envelope.DATABASE_ERROR,
    f"The campaign service is unavailable or timed out ({envelope.DATABASE_ERROR}).",
    {"Retry-After": str(RETRY_AFTER_SECONDS)},
)
# The gateway's own resources (/healthz, /readyz, /openapi.json, /docs): not in the envelope,
# and not answers of the vendor's operations.
SERVED = Kind("served", 200, None, "The gateway's own resource.", documented=False)
READY = Kind(
    "ready",
    200,
    None,
    "The campaign service answers, is SERVING and accepts this gateway's internal token.",
    documented=False,
)
NOT_READY = Kind(
    "not ready",
    503,
    None,
    "The campaign service does not answer, is not SERVING, or refuses this gateway's "
    "internal token.",
    documented=False,
)

#: Every kind of answer the gateway gives.
ANSWERS: tuple[Kind, ...] = (
    SUCCESS,
    REFUSED,
    MALFORMED_REQUEST,
    UNAUTHORIZED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TOO_SLOW,
    BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    HEADERS_TOO_LARGE,
    CLIENT_CLOSED,
    INTERNAL_ERROR,
    UNAVAILABLE,
    SERVED,
    READY,
    NOT_READY,
)

#: The answer to a failed call of the service, for the gRPC statuses that decide it: the
#: service could not answer (the client may retry), or it refused this gateway's own
#: credentials (a fault of the deployment, which the client can do nothing about). Any other
#: status is a refusal when it carries a documented legacy code, else an internal fault.
RPC_ANSWERS: Mapping[grpc.StatusCode, Kind] = {
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: INTERNAL_ERROR,
}

#: The description of every 404.
NOT_FOUND_DESC = "no such resource"
_INVALID_VALUE = legacy_code(ResultCode.RESULT_CODE_INVALID_VALUE)


def documented() -> dict[int, list[Kind]]:
    """The kinds the OpenAPI document lists for the vendor's operations, by status."""
    by_status: dict[int, list[Kind]] = {}
    for kind in sorted((k for k in ANSWERS if k.documented), key=lambda k: k.status):
        by_status.setdefault(kind.status, []).append(kind)
    return by_status


def documented_headers(kind: Kind) -> list[str]:
    """The headers of a kind that describe the answer (Connection describes the connection)."""
    return [name for name in (*kind.headers, *kind.varying_headers) if name != "Connection"]


# -- building the answers --------------------------------------------------------------------


def refusal(problems: Sequence[Problem]) -> LegacyError:
    """The request has these problems."""
    outcome = envelope.from_problems(problems)
    return LegacyError(REFUSED, outcome.desc, code=outcome.code)


def invalid(path: str, message: str) -> LegacyError:
    """The value at `path` is not one the operation takes (02000007)."""
    return LegacyError(REFUSED, f"{path}: {message}", code=_INVALID_VALUE)


def malformed_request(message: str) -> LegacyError:
    return LegacyError(MALFORMED_REQUEST, f"malformed HTTP request: {message}")


def unauthorized(failure: AuthFailure) -> LegacyError:
    return LegacyError(UNAUTHORIZED, failure.describe())


def not_found() -> LegacyError:
    return LegacyError(NOT_FOUND, NOT_FOUND_DESC)


def method_not_allowed(methods: Iterable[str]) -> LegacyError:
    """`methods`: every method of the path."""
    return LegacyError(
        METHOD_NOT_ALLOWED, "method not allowed", headers={"Allow": ", ".join(sorted(methods))}
    )


def body_too_slow(seconds: float) -> LegacyError:
    return LegacyError(BODY_TOO_SLOW, f"the request body did not arrive within {seconds:g} s")


def body_too_large(limit: int) -> LegacyError:
    return LegacyError(BODY_TOO_LARGE, f"the request body exceeds {limit} bytes")


def unsupported_media_type() -> LegacyError:
    return LegacyError(UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {CONTENT_TYPE}")


def headers_too_large(limit: int) -> LegacyError:
    return LegacyError(HEADERS_TOO_LARGE, f"the request line and headers exceed {limit} bytes")


def internal_error(request_id: str) -> LegacyError:
    return LegacyError(INTERNAL_ERROR, f"internal error (request id {request_id})")


def of_rpc_error(
    error: grpc.RpcError,
    request_id: str,
    *,
    unavailable: str,
    parameters: Mapping[str, str] | None = None,
) -> LegacyError:
    """The answer for a failed call of the service (see `RPC_ANSWERS`). `unavailable`
    describes an unavailable service that did not say why; `parameters` names the request
    fields that travel outside the body (see `envelope.json_path`)."""
    kind = RPC_ANSWERS.get(error.code(), REFUSED)
    if kind is UNAVAILABLE:
        reported = envelope.database_error(error)
        return LegacyError(UNAVAILABLE, unavailable if reported is None else reported)
    if kind is REFUSED:
        outcome = envelope.from_rpc_error(error, parameters)
        if outcome is not None:
            return LegacyError(REFUSED, outcome.desc, code=outcome.code)
    return internal_error(request_id)


def of_http_exception(exc: HTTPException, methods: Iterable[str]) -> LegacyError:
    """The answer for Starlette's routing failures: not found, or a method the path does
    not have (`methods`: those it has)."""
    if exc.status_code == NOT_FOUND.status:
        return not_found()
    if exc.status_code == METHOD_NOT_ALLOWED.status:
        return method_not_allowed(methods)
    # Starlette raises no other for these routes (StaticFiles' 401 needs an unreadable file
    # in the installed package): its status is passed on.
    passed_on = Kind("routing failure", exc.status_code, _PARAMETER_ERROR, "", documented=False)
    return LegacyError(passed_on, exc.detail, headers=exc.headers)


# -- sending them ----------------------------------------------------------------------------


def success(
    request: Request,
    return_object: dict[str, Any] | None,
    top_level: Mapping[str, Any],
    headers: Mapping[str, str],
) -> Response:
    """The envelope of a success, with `returnObject` or fields beside its keys."""
    request.state.result_code = envelope.SUCCESS
    content = envelope.render(envelope.SUCCESS, "", return_object, top_level=top_level)
    return Response(content, SUCCESS.status, headers=headers, media_type=CONTENT_TYPE)


def response(request: Request, error: LegacyError) -> Response:
    """The envelope of an answer other than success."""
    request.state.result_code = error.code
    content = envelope.render(error.code, error.desc)
    headers = {**error.kind.headers, **error.headers}
    return Response(content, error.kind.status, headers=headers, media_type=CONTENT_TYPE)


def messages(error: LegacyError) -> tuple[Message, Message]:
    """The ASGI messages of an answer other than success, for code below Starlette."""
    headers, body = _raw(error)
    start: Message = {
        "type": "http.response.start",
        "status": error.kind.status,
        "headers": headers,
    }
    return start, {"type": "http.response.body", "body": body}


def http_message(error: LegacyError) -> bytes:
    """An answer other than success as HTTP/1.1 bytes, for the protocol below ASGI."""
    headers, body = _raw(error)
    status = error.kind.status
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    head += [name + b": " + value for name, value in headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def client_closed() -> Response:
    """What is logged and counted for a client that left (it receives nothing)."""
    return Response(status_code=CLIENT_CLOSED.status)


def health() -> Response:
    """/healthz: the process lives and serves HTTP."""
    return JSONResponse({"status": "ok"}, SERVED.status)


def readiness(checked: Readiness) -> Response:
    """/readyz: whether a request would be served now (the campaign service answers, reports
    SERVING and accepts this gateway's internal token); if not, which part fails and why."""
    if checked.ready:
        return JSONResponse({"status": "ok"}, READY.status)
    body = {"status": "unavailable", "failing": checked.failing, "reason": checked.reason}
    return JSONResponse(body, NOT_READY.status)


def _raw(error: LegacyError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and the body of an answer sent without Starlette."""
    body = envelope.render(error.code, error.desc)
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in {**error.kind.headers, **error.headers}.items():
        headers.append((name.lower().encode(), value.encode()))
    return headers, body
