"""Draining on shutdown: calls in flight finish, new calls are refused UNAVAILABLE.

grpcio's own graceful stop cancels the calls it has received but not yet handed to a
worker (the caller sees CANCELLED, which no client retries). So the server drains first,
while it still accepts calls: from `start()` on, new calls of the drained services are
answered UNAVAILABLE ("retry elsewhere") by the call chain, `wait_idle` returns when
the calls in flight have finished, and `wait_quiet` when callers have stopped sending (those
that watch health do once they hear NOT_SERVING). Only then is the gRPC server stopped.
"""

from __future__ import annotations

import threading
import time

from isales_campaign.service.errors import ShuttingDown


class Drain:
    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._in_flight = 0
        self._draining = False
        self._last_arrival = 0.0

    @property
    def draining(self) -> bool:
        """Whether draining has begun."""
        return self._draining

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

    def wait_idle(self, deadline: float) -> None:
        """Wait until no call is in flight, at most until `deadline` (time.monotonic())."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, deadline - time.monotonic())

    def wait_quiet(self, quiet: float, deadline: float) -> None:
        """Wait until no call has arrived for `quiet` seconds since draining began, at most
        until `deadline` (time.monotonic())."""
        with self._idle:
            while (calm_at := min(self._last_arrival + quiet, deadline)) > time.monotonic():
                self._idle.wait(calm_at - time.monotonic())
