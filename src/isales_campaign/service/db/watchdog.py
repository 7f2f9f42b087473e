"""A client-side bound on every use of a PostgreSQL connection.

The server-side bounds (statement_timeout, lock_timeout) are kept by the server, and TCP's
by the peer's kernel: a server that is frozen or cut off behind a proxy keeps neither, and a
statement sent to it would wait for good. So each checked-out connection gets a deadline;
past it, the watchdog shuts its socket down, which fails the waiting call at once (libpq
then reports a broken connection, and the pool discards it).

A connection is also cut shortly before the deadline of the gRPC call it serves, so that
the caller hears UNAVAILABLE rather than giving up on an answer that may still come.

A connection cut while its COMMIT was on the way leaves the outcome unknown: the thread that
used it learns so from `outcome_unknown()`, and must not answer "nothing was changed".
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
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

_WATCHDOGS: WeakKeyDictionary[Engine, Watchdog] = WeakKeyDictionary()

#: `time.monotonic()` by which the call being served must be answered (its gRPC deadline),
#: if it has one; set by the interceptor.
call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)
#: Seconds kept in hand to answer before the caller's deadline.
ANSWER_MARGIN = 0.5


@dataclass
class _Lease:
    deadline: float
    thread: int
    fd: int
    committing: bool = False


def outcome_unknown(engine: Engine) -> bool:
    """Whether the watchdog of `engine` cut this thread's last COMMIT (and forget it)."""
    watchdog = _WATCHDOGS.get(engine)
    return watchdog is not None and watchdog.outcome_unknown()


class Watchdog:
    def __init__(self, timeout: float) -> None:
        """`timeout`: seconds a connection may stay checked out."""
        self._timeout = timeout
        self._leases: dict[int, _Lease] = {}  # by id() of the DBAPI connection
        self._unknown: set[int] = set()  # threads whose COMMIT was cut
        self._changed = threading.Condition()
        threading.Thread(target=self._watch, name="db-watchdog", daemon=True).start()

    def attach(self, engine: Engine) -> None:
        event.listen(engine.pool, "checkout", self._checkout)
        # A connection that is checked in, invalidated or closed is no longer watched (its
        # descriptor may be given to another socket).
        event.listen(engine.pool, "checkin", self._release)
        event.listen(engine.pool, "invalidate", self._release)
        event.listen(engine.pool, "close", self._release)
        event.listen(engine, "commit", self._commit)
        _WATCHDOGS[engine] = self

    def outcome_unknown(self) -> bool:
        """Whether this thread's last COMMIT was cut (and forget it)."""
        with self._changed:
            thread = threading.get_ident()
            if thread in self._unknown:
                self._unknown.discard(thread)
                return True
            return False

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        deadline = time.monotonic() + self._timeout
        caller = call_deadline.get()
        if caller is not None:  # answer before the caller gives up
            deadline = min(deadline, caller - ANSWER_MARGIN)
        lease = _Lease(deadline, threading.get_ident(), dbapi_connection.pgconn.socket)
        with self._changed:
            self._leases[id(dbapi_connection)] = lease
            self._changed.notify()

    def _release(self, dbapi_connection: Any, *_args: Any) -> None:
        if dbapi_connection is None:  # checked in after an invalidation: released then
            return
        with self._changed:
            self._leases.pop(id(dbapi_connection), None)

    def _commit(self, connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        with self._changed:
            lease = self._leases.get(id(dbapi_connection))
            if lease is not None:
                lease.committing = True

    def _watch(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                expired = [key for key, lease in self._leases.items() if lease.deadline <= now]
                for key in expired:
                    lease = self._leases.pop(key)
                    if lease.committing:
                        self._unknown.add(lease.thread)
                    _cut(lease.fd)
                upcoming = [lease.deadline for lease in self._leases.values()]
                self._changed.wait(min(upcoming) - now if upcoming else None)


def _cut(fd: int) -> None:
    """Shut the connection's socket down; libpq keeps (and later closes) its descriptor."""
    log.warning("cutting a database connection that did not answer in time")
    try:
        duplicate = socket.socket(fileno=os.dup(fd))
    except OSError:  # already closed
        return
    with duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
