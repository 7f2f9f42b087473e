"""Prometheus metrics of the gRPC server and the gateway, served on ISALES_METRICS_LISTEN.

Each side keeps its metrics in a registry of its own (`SERVICE_METRICS`, `GATEWAY_METRICS`),
and a process serves those of the sides it runs, with prometheus_client's default registry
(the process, the interpreter's garbage collector, and `isales_build_info`): `isales
grpc-server` the service's, `isales gateway` the gateway's, `isales serve` both. The README's
"Metrics" section lists every metric with its labels.

The gRPC server's metrics take the names and labels of go-grpc-prometheus
(`grpc_server_started_total`, `grpc_server_handled_total`,
`grpc_server_handling_seconds`) for its unary and server-streaming calls; its refusals are
also counted by their legacy result code. The gateway's carry the operation and the legacy
result code. Label values are bounded: methods, operations, status codes and result codes
are fixed sets, never a path or an id.

Nothing here costs a call more than incrementing a counter child the caller keeps: the
gauges of the server's state are read when scraped (`ServerGauges`).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Protocol, runtime_checkable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from isales_campaign import release
from isales_campaign.config import split_listen

log = logging.getLogger(__name__)

#: The metrics of the gRPC server (and of the service's calls made in process).
SERVICE_METRICS = CollectorRegistry()
#: The metrics of the REST gateway.
GATEWAY_METRICS = CollectorRegistry()
#: The only path the metrics port serves.
METRICS_PATH = "/metrics"


# -- every process ---------------------------------------------------------------------------

BUILD_INFO = Info("isales_build", "The release this process runs.", registry=REGISTRY)
BUILD_INFO.info({"version": release()})

# -- the service -----------------------------------------------------------------------------

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "gRPC calls started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
    registry=SERVICE_METRICS,
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls completed by the server, by method and status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    registry=SERVICE_METRICS,
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer a gRPC call.",
    ["grpc_type", "grpc_service", "grpc_method"],
    registry=SERVICE_METRICS,
)
GRPC_REFUSED = Counter(
    "isales_grpc_server_refused_total",
    "gRPC calls the service refused, by status code and legacy result code (ErrorInfo.reason).",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code", "result_code"],
    registry=SERVICE_METRICS,
)
CHANGE_WATCHERS = Gauge(
    "isales_change_watchers",
    "Watchers of the change feed (WatchCampaignChanges) this process serves now.",
    registry=SERVICE_METRICS,
)

# -- the gateway -----------------------------------------------------------------------------

#: The `operation` of a request that reached no operation: its path or its method matched
#: none (404, 405), or it was refused before routing (400, 431, an encoded delimiter).
NO_OPERATION = "none"

HTTP_HANDLED = Counter(
    "isales_gateway_requests_total",
    "REST requests answered by the gateway, by operation, HTTP status and legacy result code.",
    ["operation", "status", "result_code"],
    registry=GATEWAY_METRICS,
)
HTTP_HANDLING_SECONDS = Histogram(
    "isales_gateway_request_seconds",
    "Time the gateway took to answer a REST request, by operation and HTTP status.",
    ["operation", "status"],
    registry=GATEWAY_METRICS,
)


# -- the server's state, read when scraped ---------------------------------------------------


@runtime_checkable
class PoolState(Protocol):
    """What the gauges read of a connection pool (SQLAlchemy's QueuePool; other pools do not
    count their connections)."""

    def size(self) -> int: ...
    def checkedout(self) -> int: ...
    def checkedin(self) -> int: ...
    def overflow(self) -> int: ...


@dataclass(frozen=True, eq=False)
class ServerState:
    """How to read one running server's state (see `ServerGauges`)."""

    #: The database answered the server's last health probe.
    database_up: Callable[[], bool]
    #: The server is draining (shutting down).
    draining: Callable[[], bool]
    #: Its connection pool now; gauged if it is a `PoolState`.
    pool: Callable[[], object]


class ServerGauges:
    """The gauges of the gRPC servers running in this process, read when scraped: a call
    costs nothing for them. A deployed process runs one server; when several run (tests),
    the database is up only if it is for all, a process drains if any server does, and the
    pools' connections add up."""

    def __init__(self) -> None:
        self._servers: list[ServerState] = []
        self._lock = threading.Lock()

    def watch(self, server: ServerState) -> None:
        with self._lock:
            self._servers.append(server)

    def forget(self, server: ServerState) -> None:
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    def describe(self) -> Iterable[Metric]:
        return self._families(())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            servers = tuple(self._servers)
        return self._families(servers)

    def _families(self, servers: tuple[ServerState, ...]) -> list[Metric]:
        up = GaugeMetricFamily(
            "isales_database_up",
            "1 if the database answered the server's last health probe, else 0.",
        )
        draining = GaugeMetricFamily(
            "isales_draining", "1 while the server drains (shutting down), else 0."
        )
        pool = [
            (GaugeMetricFamily(f"isales_database_pool_{name}", meaning), read)
            for name, meaning, read in _POOL_GAUGES
        ]
        if servers:
            up.add_metric([], float(all(server.database_up() for server in servers)))
            draining.add_metric([], float(any(server.draining() for server in servers)))
            pools = [p for p in (s.pool() for s in servers) if isinstance(p, PoolState)]
            for family, read in pool if pools else ():
                family.add_metric([], float(sum(read(p) for p in pools)))
        return [up, draining, *(family for family, _ in pool)]


#: The gauges of the database pool: name (after `isales_database_pool_`), meaning, reading.
_POOL_GAUGES: tuple[tuple[str, str, Callable[[PoolState], int]], ...] = (
    (
        "size",
        "Connections the server's database pool keeps once opened (more, its overflow, are "
        "closed when returned).",
        lambda pool: pool.size(),
    ),
    ("checked_out", "Connections of the pool in use now.", lambda pool: pool.checkedout()),
    ("idle", "Connections of the pool open and unused now.", lambda pool: pool.checkedin()),
    # SQLAlchemy's overflow is negative while fewer connections than the size are open.
    (
        "overflow",
        "Connections open now beyond the pool's size.",
        lambda pool: max(0, pool.overflow()),
    ),
)


#: The gRPC servers of this process (`service.server` adds each it starts).
SERVER_GAUGES = ServerGauges()
SERVICE_METRICS.register(SERVER_GAUGES)


# -- the metrics port ------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape never holds up the exit


def metrics_registry(*owned: CollectorRegistry) -> CollectorRegistry:
    """What a process serves: the process's metrics (default registry) and `owned`."""
    served = CollectorRegistry(auto_describe=True)
    for registry in (REGISTRY, *owned):
        served.register(registry)  # a metric in two of them is refused here
    return served


def metrics_app(registry: CollectorRegistry) -> Callable[..., Iterator[bytes]]:
    """The WSGI app of the metrics port: `registry` at /metrics, 404 at any other path."""
    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return iter([f"not found: the metrics are at {METRICS_PATH}\n".encode()])
        return iter(exposition(environ, start_response))

    return app


def serve_metrics(listen: str, *owned: CollectorRegistry) -> WSGIServer | None:
    """Serve the process's metrics and `owned` at /metrics on `listen` (host:port) in a
    background thread; "" serves nothing. The server, to be shut down by its owner."""
    if not listen:
        return None
    host, port = split_listen(listen, "ISALES_METRICS_LISTEN")
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("MetricsServer", (_MetricsServer,), {"address_family": family})
    app = metrics_app(metrics_registry(*owned))
    server: WSGIServer = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics listening", extra={"address": listen, "path": METRICS_PATH})
    return server
