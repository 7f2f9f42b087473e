"""A client-side bound on every use of a PostgreSQL (psycopg) connection.

The server-side bounds (statement_timeout, lock_timeout) are kept by the server, and TCP's
by the peer's kernel: a server that is frozen or cut off behind a proxy keeps neither, and a
statement sent to it would wait for good. So each checked-out connection gets a deadline;
past it, the watchdog shuts its socket down, which fails the waiting call at once (libpq
then reports a broken connection, and the pool discards it).

A connection is also cut shortly before the deadline of the gRPC call it serves, so that
the caller hears UNAVAILABLE rather than giving up on an answer that may still come.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

#: `time.monotonic()` by which the call being served must be answered (its gRPC deadline);
#: set by the call chain (`service.call_chain`).
call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)
#: Seconds kept in hand to answer before the caller's deadline.
ANSWER_MARGIN = 0.5
#: The least time a checked-out connection gets, however close the caller's deadline.
LEAST_LEASE = 0.1


def time_left(timeout: float | None) -> float | None:
    """Seconds a database wait of the call being served may take: `timeout` (None: no
    bound), or less when the caller's gRPC deadline is nearer."""
    caller = call_deadline.get()
    if caller is None:
        return timeout
    remaining = max(0.0, caller - ANSWER_MARGIN - time.monotonic())
    return remaining if timeout is None else min(timeout, remaining)


@dataclass
class _Lease:
    deadline: float
    #: A duplicate of the connection's socket, owned here: libpq closes its own descriptor
    #: when the connection breaks, and the number may then be given to another socket.
    socket: socket.socket


class Watchdog:
    def __init__(self, timeout: float) -> None:
        """`timeout`: seconds a connection may stay checked out."""
        self._timeout = timeout
        self._leases: dict[int, _Lease] = {}  # by id() of the DBAPI connection
        self._changed = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._watch, name="db-watchdog", daemon=True).start()

    def attach(self, engine: Engine) -> None:
        event.listen(engine.pool, "checkout", self._checkout)
        # A connection that is checked in, invalidated or closed is no longer watched; nor is
        # one detached from the pool (its owner bounds it: the change listener waits for good).
        event.listen(engine.pool, "checkin", self._release)
        event.listen(engine.pool, "detach", self._release)
        event.listen(engine.pool, "invalidate", self._release)
        event.listen(engine.pool, "close", self._release)
        event.listen(engine, "engine_disposed", self._stop)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        deadline = time.monotonic() + max(time_left(self._timeout) or 0.0, LEAST_LEASE)
        duplicate = socket.socket(fileno=os.dup(dbapi_connection.pgconn.socket))
        with self._changed:
            self._drop(id(dbapi_connection))
            self._leases[id(dbapi_connection)] = _Lease(deadline, duplicate)
            self._changed.notify()

    def _release(self, dbapi_connection: Any, *_args: Any) -> None:
        if dbapi_connection is None:  # checked in after an invalidation: released then
            return
        with self._changed:
            self._drop(id(dbapi_connection))

    def _drop(self, key: int) -> None:
        lease = self._leases.pop(key, None)
        if lease is not None:
            lease.socket.close()

    def _stop(self, _engine: Engine) -> None:
        with self._changed:
            self._stopped = True
            for key in list(self._leases):
                self._drop(key)
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while not self._stopped:
                now = time.monotonic()
                for key, lease in list(self._leases.items()):
                    if lease.deadline <= now:
                        log.warning("cutting a database connection that did not answer in time")
                        with contextlib.suppress(OSError):
                            lease.socket.shutdown(socket.SHUT_RDWR)
                        self._drop(key)
                upcoming = [lease.deadline for lease in self._leases.values()]
                self._changed.wait(min(upcoming) - now if upcoming else None)
