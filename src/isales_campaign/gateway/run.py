"""Serving the gateway with uvicorn, with a graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import math
import signal
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from isales_campaign.config import Settings, split_listen
from isales_campaign.gateway.app import create_app
from isales_campaign.gateway.protocol import bounded_protocol

log = logging.getLogger("isales_campaign.gateway")


class GatewayServer(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM/SIGINT after shutting down, which would kill
    `isales serve` before it stops its gRPC server; this server just returns instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for in-flight requests
        else:
            log.info("gateway shutting down", extra={"signal": signal.Signals(sig).name})
            self.should_exit = True


def gateway_server(settings: Settings, app: ASGIApp | None = None) -> GatewayServer:
    host, port = split_listen(settings.http_listen, "ISALES_HTTP_LISTEN")
    config = uvicorn.Config(
        app or create_app(settings),
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # keep the JSON logging of isales_campaign.logs
        access_log=False,  # the gateway logs one line per request itself, with its id
        server_header=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds),
        # Slow or idle clients cannot exhaust the gateway: a deadline and a size limit for
        # each request's headers (and, in the pipeline, for its body), idle keep-alive
        # connections closed, and at most so many connections at once (more are answered 503).
        http=bounded_protocol(settings.http_read_timeout_seconds, settings.http_max_header_bytes),
        loop="uvloop",
        timeout_keep_alive=5,
        limit_concurrency=settings.http_max_connections,
    )
    return GatewayServer(config)


def run_gateway(settings: Settings, app: ASGIApp | None = None) -> None:
    """Serve until SIGTERM or SIGINT, let in-flight requests finish, then return."""
    server = gateway_server(settings, app)
    if not settings.internal_token:
        log.warning(
            "ISALES_INTERNAL_TOKEN is not set: the service will not give this gateway the "
            "access keys, so every signed request will be refused"
        )
    log.info(
        "gateway listening",
        extra={
            "address": settings.http_listen,
            "backend": settings.grpc_target if app is None else "given by the caller",
        },
    )
    server.run()
    log.info("gateway stopped")
