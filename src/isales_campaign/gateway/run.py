"""Serving the gateway with uvicorn, with a graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import math
import signal
import socket
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from isales_campaign.config import Settings, split_listen
from isales_campaign.gateway.app import create_app
from isales_campaign.gateway.errors import ListenError
from isales_campaign.gateway.protocol import bounded_protocol
from isales_campaign.memory import freeze_startup_objects

log = logging.getLogger("isales_campaign.gateway")


class GatewayServer(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM/SIGINT after shutting down, which would kill
    `isales serve` before it stops its gRPC server; this server just returns instead. It
    says "gateway listening" once its sockets listen."""

    def __init__(self, config: uvicorn.Config, address: str, backend: str) -> None:
        super().__init__(config)
        self._address = address
        self._backend = backend

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info(
                "gateway listening", extra={"address": self._address, "backend": self._backend}
            )

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
    backend = settings.grpc_target if app is None else "given by the caller"
    return GatewayServer(config, settings.http_listen, backend)


def bind(settings: Settings) -> list[socket.socket]:
    """Sockets bound to ISALES_HTTP_LISTEN, one per address its host stands for, listening
    only once the gateway serves; ListenError, saying why in one line, when one cannot be
    bound. Bound before anything else starts, so that a taken port stops a start at once."""
    host, port = split_listen(settings.http_listen, "ISALES_HTTP_LISTEN")
    cannot = f"cannot listen on {settings.http_listen} (ISALES_HTTP_LISTEN)"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ListenError(f"{cannot}: {_sentence(error.strerror or str(error))}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, protocol, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, protocol)
            sockets.append(sock)
            # As asyncio's own create_server binds: a restart reuses the port at once, and
            # an IPv6 socket leaves IPv4 to its own.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise ListenError(f"{cannot}: {_sentence(error.strerror or str(error))}") from None
    return sockets


def _sentence(reason: str) -> str:
    """The system's reason as the rest of a sentence ("address already in use")."""
    return reason[:1].lower() + reason[1:]


def run_gateway(
    settings: Settings, app: ASGIApp | None = None, sockets: list[socket.socket] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, let in-flight requests finish, then return. `sockets`:
    those `bind` gave; without them the gateway binds its own (ListenError)."""
    sockets = bind(settings) if sockets is None else sockets
    try:
        server = gateway_server(settings, app)
        if not settings.internal_token:
            log.warning(
                "ISALES_INTERNAL_TOKEN is not set: the service will not give this gateway the "
                "access keys, so every signed request will be refused"
            )
        freeze_startup_objects()
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
    log.info("gateway stopped")
