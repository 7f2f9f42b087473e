"""Prometheus metrics of the gRPC server and the gateway, served on ISALES_METRICS_LISTEN.

The gRPC server's metrics take the names and labels of go-grpc-prometheus
(`grpc_server_started_total`, `grpc_server_handled_total`,
`grpc_server_handling_seconds`) for its unary and server-streaming calls; the gateway's carry
the legacy result code.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from isales_campaign.config import split_listen

log = logging.getLogger(__name__)

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "gRPC calls started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls completed by the server, by method and status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer a gRPC call.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
CHANGE_WATCHERS = Gauge(
    "isales_change_watchers",
    "Watchers of the change feed (WatchCampaignChanges) this process serves now.",
)
HTTP_HANDLED = Counter(
    "isales_gateway_requests_total",
    "REST requests answered by the gateway, by HTTP status and legacy result code.",
    ["status", "result_code"],
)
HTTP_HANDLING_SECONDS = Histogram(
    "isales_gateway_request_seconds",
    "Time the gateway took to answer a REST request.",
)


def serve_metrics(listen: str) -> None:
    """Expose /metrics on `listen` (host:port) in a background thread; "" does nothing."""
    if not listen:
        return
    host, port = split_listen(listen, "ISALES_METRICS_LISTEN")
    start_http_server(port, addr=host)
    log.info("metrics listening", extra={"address": listen})
