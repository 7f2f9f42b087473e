"""Draining on shutdown: calls in flight finish, new calls are refused UNAVAILABLE.

grpcio's own graceful stop cancels the calls it has received but not yet handed to a
worker (the caller sees CANCELLED, which no client retries). So the server drains first,
while it still accepts calls: from `start()` on, new calls of the drained services are
answered UNAVAILABLE ("retry elsewhere") by the interceptor, and `wait_idle` returns when
the calls in flight have finished. Only then is the gRPC server stopped.
"""

from __future__ import annotations

import threading
import time

import grpc

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.errors import ServiceError


class ShuttingDown(ServiceError):
    status_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            ResultCode.RESULT_CODE_DATABASE_ERROR,
            "the server is shutting down; nothing was changed, retry on another replica",
        )


class Drain:
    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._in_flight = 0
        self._draining = False

    def enter(self) -> None:
        """A call starts; ShuttingDown once draining has begun."""
        with self._idle:
            if self._draining:
                raise ShuttingDown()
            self._in_flight += 1

    def leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def start(self) -> None:
        with self._idle:
            self._draining = True

    def wait_idle(self, timeout: float) -> float:
        """Wait until no call is in flight, at most `timeout` seconds; the time left."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        return max(0.0, deadline - time.monotonic())
