"""The Starlette app: the legacy add-campaign call, the OpenAPI document, the error answers.

Order of checks for POST /rest/isales/v2/openapi/campaigns/{vdnId} (cheap before costly,
nothing reaches CampaignService unless every check passed):
413 body too large -> 415 media type -> 401 auth-v2 -> 02000007 vdnId -> 401 AK of another
VDN -> 02000006/02000008 translation -> AddCampaign.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from isales_campaign.config import Settings
from isales_campaign.gateway import envelope, openapi
from isales_campaign.gateway.auth import FAILURE_DESC, AuthFailure, SignedRequest, authenticate
from isales_campaign.gateway.backend import Backend
from isales_campaign.gateway.body import BodyTooLarge, is_json_utf8, read_body
from isales_campaign.gateway.context import RequestContext
from isales_campaign.gateway.translate import translate_add_campaign
from isales_campaign.result_codes import ResultCode, legacy_code

log = logging.getLogger("isales_campaign.gateway")

ADD_CAMPAIGN_PATH = "/rest/isales/v2/openapi/campaigns/{vdnId}"
MEDIA_TYPE = "application/json;charset=UTF-8"
#: Seconds a client is asked to wait after a 503.
RETRY_AFTER_SECONDS = 5
_INVALID_VALUE = legacy_code(ResultCode.RESULT_CODE_INVALID_VALUE)


def create_app(settings: Settings) -> Starlette:
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.backend.start()
        try:
            yield
        finally:
            await gateway.backend.close()

    app = Starlette(
        routes=[
            Route(ADD_CAMPAIGN_PATH, gateway.add_campaign, methods=["POST"]),
            Route("/openapi.json", gateway.openapi, methods=["GET"]),
        ],
        middleware=[Middleware(RequestContext)],
        exception_handlers={HTTPException: gateway.http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a redirect would drop the signed POST body
    return app


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = Backend(
            settings.grpc_target,
            settings.grpc_timeout_seconds,
            settings.internal_token,
            settings.grpc_target_tls,
        )

    async def add_campaign(self, request: Request) -> Response:
        request_id: str = request.state.request_id
        limit = self.settings.max_body_bytes
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            desc = f"the request body exceeds {limit} bytes"
            return _answer(request, 413, envelope.PARAMETER_ERROR, desc)
        if not is_json_utf8(request.headers.get("content-type")):
            desc = "Content-Type must be application/json;charset=UTF-8"
            return _answer(request, 415, envelope.PARAMETER_ERROR, desc)

        signed = SignedRequest(
            request.method,
            request.scope.get("raw_path") or request.url.path.encode(),
            request.scope.get("query_string", b""),
            request.headers,
            body,
        )
        try:
            caller = await authenticate(
                signed,
                self.backend,
                max_skew_seconds=self.settings.auth_max_skew_seconds,
                request_id=request_id,
            )
        except AuthFailure as failure:
            return _unauthorized(request, failure)
        except grpc.aio.AioRpcError as error:
            return _backend_failure(request, error, adding=False)
        request.state.access_key = caller.access_key

        vdn_id = _vdn_id(request.path_params["vdnId"])
        if vdn_id is None:
            return _answer(request, 200, _INVALID_VALUE, "vdnId: must be an integer from 1 to 9999")
        if caller.vdn_id != vdn_id:
            reason = f"access key belongs to VDN {caller.vdn_id}, not {vdn_id}"
            return _unauthorized(request, AuthFailure(reason, caller.access_key))

        translated = translate_add_campaign(body, vdn_id)
        if isinstance(translated, list):
            outcome = envelope.from_problems(translated)
            return _answer(request, outcome.http_status, outcome.code, outcome.desc)
        # The same signed request sent again (a retry after a timeout) is answered
        # with the campaign it created, instead of "name taken".
        translated.idempotency_key = caller.signature
        try:
            added = await self.backend.add_campaign(translated, request_id)
        except grpc.aio.AioRpcError as error:
            return _backend_failure(request, error, adding=True)
        return _answer(request, 200, envelope.SUCCESS, "", {"id": added.id})

    async def openapi(self, _request: Request) -> Response:
        return Response(openapi.document_bytes(), media_type="application/json")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """404 and 405 from the router, in the envelope."""
        assert isinstance(exc, HTTPException)
        desc = {404: "no such resource", 405: "method not allowed"}.get(exc.status_code, exc.detail)
        response = _answer(request, exc.status_code, envelope.PARAMETER_ERROR, desc)
        response.headers.update(exc.headers or {})
        return response


def _vdn_id(text: str) -> int | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        return None
    value = int(text)
    return value if 1 <= value <= 9999 else None


def _answer(
    request: Request,
    status: int,
    code: str,
    desc: str,
    return_object: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request.state.result_code = code
    content = envelope.render(code, desc, return_object)
    return Response(content, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _unauthorized(request: Request, failure: AuthFailure) -> Response:
    log.warning(
        "authentication failed",
        extra={
            "request_id": request.state.request_id,
            "reason": failure.reason,
            "access_key": failure.access_key,
        },
    )
    headers = {"WWW-Authenticate": "auth-v2"}
    return _answer(request, 401, envelope.PARAMETER_ERROR, FAILURE_DESC, headers=headers)


def _backend_failure(request: Request, error: grpc.aio.AioRpcError, *, adding: bool) -> Response:
    request_id = request.state.request_id
    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
        # The gateway's own credentials, not the caller's: a deployment fault.
        log.error(
            "the campaign service refused this gateway's ISALES_INTERNAL_TOKEN",
            extra={"request_id": request_id},
        )
        return _internal_error(request)
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and adding:
        unavailable = (
            "the service did not answer in time; the campaign may have been stored: "
            "send the same signed request again to learn its id"
        )
    else:
        unavailable = "the campaign service is unavailable; nothing was stored, retry later"
    outcome = envelope.from_rpc_error(error, unavailable=unavailable)
    if outcome is None:
        log.error(
            "unexpected answer from the campaign service",
            extra={"request_id": request_id, "grpc_code": error.code().name},
        )
        return _internal_error(request)
    if outcome.http_status == 503:
        log.warning(
            "campaign service unavailable",
            extra={"request_id": request_id, "grpc_code": error.code().name},
        )
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return _answer(request, 503, outcome.code, outcome.desc, headers=headers)
    return _answer(request, outcome.http_status, outcome.code, outcome.desc)


def _internal_error(request: Request) -> Response:
    desc = f"internal error (request id {request.state.request_id})"
    return _answer(request, 500, envelope.PARAMETER_ERROR, desc)
