"""Draining on shutdown: calls in flight finish, new calls are refused UNAVAILABLE.

grpcio's own graceful stop cancels the calls it has received but not yet handed to a
worker (the caller sees CANCELLED, which no client retries). So the server drains first,
while it still accepts calls: from `start()` on, new calls of the drained services are
answered UNAVAILABLE ("retry elsewhere") by the interceptor, `wait_idle` returns when
the calls in flight have finished, and `wait_quiet` when callers have stopped sending (those
that watch health do once they hear NOT_SERVING). Only then is the gRPC server stopped.
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
        self._last_arrival = 0.0

    def enter(self) -> None:
        """A call starts; ShuttingDown once draining has begun."""
        with self._idle:
            if self._draining:
                self._last_arrival = time.monotonic()
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
            self._last_arrival = time.monotonic()  # a caller may not have heard yet

    def wait_idle(self, timeout: float) -> float:
        """Wait until no call is in flight, at most `timeout` seconds; the time left."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        return max(0.0, deadline - time.monotonic())

    def wait_quiet(self, quiet: float, timeout: float) -> float:
        """Wait until no call has arrived for `quiet` seconds since draining began, at most
        `timeout` seconds; the time left of `timeout`."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                now = time.monotonic()
                calm_at = min(self._last_arrival + quiet, deadline)
                if now >= calm_at:
                    return max(0.0, deadline - now)
                self._idle.wait(calm_at - now)
