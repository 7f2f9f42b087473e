"""The standard health service (`grpc.health.v1.Health`), as grpcio's `HealthServicer` serves
it, without its deadlock.

grpcio's sends a watcher its status while holding the lock that the server's own thread takes
when a watch ends (its close callback); a send waits for that thread to complete the previous
one, so that a watch starting or a status changing while another watch ends stops both for
good (seen on SIGTERM with a gateway's many channels watching: the drained server never
stopped). Here the status and the watchers are kept under one lock, held only to read or
change them, and sends are made under another, which keeps each watcher's statuses in the
order they were set; the server's thread takes only the first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeAlias

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: A `HealthCheckResponse.ServingStatus` value.
Status: TypeAlias = int
Send: TypeAlias = Callable[[health_pb2.HealthCheckResponse | None], object]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):
    """`Check` and `Watch` of each service's status, `set` to change one, and
    `enter_graceful_shutdown` (every service NOT_SERVING, for good)."""

    def __init__(self) -> None:
        self._state = threading.Lock()
        self._sending = threading.RLock()
        self._statuses: dict[str, Status] = {"": SERVING}
        self._watchers: dict[str, set[Send]] = {}
        self._shutting_down = False

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext | None
    ) -> health_pb2.HealthCheckResponse:
        with self._state:
            status = self._statuses.get(request.service)
        if status is None:
            if context is not None:
                context.set_code(grpc.StatusCode.NOT_FOUND)
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(  # type: ignore[override]  # grpcio's non-blocking streaming signature
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: Send,
    ) -> None:
        service = request.service
        with self._sending:
            with self._state:
                status = self._statuses.get(service, SERVICE_UNKNOWN)
                self._watchers.setdefault(service, set()).add(send_response_callback)
            context.add_callback(self._forget(service, send_response_callback))
            send_response_callback(health_pb2.HealthCheckResponse(status=status))

    # grpcio calls it with a callback that sends, instead of holding a thread per watcher.
    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]
    Watch.experimental_thread_pool = None  # type: ignore[attr-defined]

    def _forget(self, service: str, send: Send) -> Callable[[], None]:
        """What the server's thread runs when a watch ends: it takes the state lock only."""

        def forget() -> None:
            with self._state:
                self._watchers.get(service, set()).discard(send)
            send(None)

        return forget

    def set(self, service: str, status: Status) -> None:
        """Set a service's status and send it to its watchers (ignored once shutting down)."""
        with self._sending:
            with self._state:
                if self._shutting_down:
                    return
                self._statuses[service] = status
                watchers = list(self._watchers.get(service, ()))
            for send in watchers:
                send(health_pb2.HealthCheckResponse(status=status))

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING, and no later `set` changes that."""
        with self._sending:
            with self._state:
                services = list(self._statuses)
            for service in services:
                self.set(service, NOT_SERVING)
            with self._state:
                self._shutting_down = True
