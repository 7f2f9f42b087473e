"""The Starlette app: the vendor's operations (see `operations.OPERATIONS`) through one
pipeline (see `pipeline`), health endpoints, the OpenAPI document, and one handler per
kind of failure (each answers as `answers` says)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from isales_campaign.config import Settings
from isales_campaign.gateway import answers, docs, openapi
from isales_campaign.gateway.backend import Backend, GrpcBackend
from isales_campaign.gateway.context import RequestContext
from isales_campaign.gateway.encoded_delimiters import RefuseEncodedDelimiters
from isales_campaign.gateway.errors import LegacyError
from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.gateway.pipeline import Pipeline, backend_failure

#: Failures of a call that may mean no server could be reached.
_UNREACHED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def create_app(settings: Settings, backend: Backend | None = None) -> Starlette:
    """The gateway app; its backend is the gRPC service at ISALES_GRPC_TARGET unless
    `backend` is given (`isales serve` hands it the service of its own process)."""
    if backend is None:
        backend = GrpcBackend(
            settings.grpc_target,
            settings.grpc_timeout_seconds,
            settings.internal_token,
            settings.grpc_target_tls,
            settings.grpc_connections,
        )
    pipeline = Pipeline(settings, backend)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    async def healthz(_request: Request) -> Response:
        return answers.health()

    async def readyz(_request: Request) -> Response:
        """A request would be served now: the campaign service answers, reports SERVING and
        accepts this gateway's internal token."""
        return answers.readiness(await backend.ready())

    async def backend_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, grpc.aio.AioRpcError)
        cause = None
        if exc.code() in _UNREACHED:
            # A call that waited for a ready server only says that its deadline passed: the
            # readiness check (shared, at most one a second) says why none was ready.
            cause = (await backend.ready()).reason or None
        return answers.response(request, backend_failure(request, exc, cause))

    async def openapi_document(_request: Request) -> Response:
        document = openapi.document_bytes()
        return Response(document, answers.SERVED.status, media_type="application/json")

    routes: list[BaseRoute] = [
        Route(op.path, pipeline.handler(op), methods=[op.method], name=op.operation_id)
        for op in OPERATIONS
    ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
        *docs.routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestContext, operations=[op.operation_id for op in OPERATIONS]),
            Middleware(RefuseEncodedDelimiters),
        ],
        exception_handlers={
            LegacyError: _legacy_error,
            grpc.aio.AioRpcError: backend_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a redirect would drop the signed body
    return app


async def _legacy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LegacyError)
    return answers.response(request, exc)


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    """The client left before its request was whole: its mistake or its choice, not an error."""
    return answers.client_closed()


async def _http_error(request: Request, exc: Exception) -> Response:
    """Not found and method not allowed from the router, in the envelope."""
    assert isinstance(exc, HTTPException)
    # Starlette's 405 names the methods of the first route of the path only; one path may
    # have several (GET and DELETE of one campaign).
    return answers.response(request, answers.of_http_exception(exc, _allowed_methods(request)))


def _allowed_methods(request: Request) -> set[str]:
    """The methods of every route of the request's path."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
            allowed |= route.methods or set()
    return allowed
