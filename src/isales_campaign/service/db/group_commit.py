"""SQLite's writes of one process, committed in groups.

SQLite has one writer per file, so the writes of a process take turns. A durable commit is
an fsync: most of a write's wait and a third of its CPU. So a write that finishes while
others wait for their turn leaves the transaction open for them instead of committing it:
each write runs in a savepoint of the shared transaction, so a refused one undoes only
itself, and the last write of the group (no one waiting, or `MAX_GROUP` writes in) commits
for all of them with one fsync.

No write is answered before the commit that holds it: an acknowledged write is as durable
as before. A commit that fails fails every write of its group, as it failed the one write
it held before; a transaction that SQLite ended on its own fails the writes it held with
nothing changed. A write of a group sees the writes before it in the same group, as it
would have seen them committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.pool import PoolProxiedConnection

from isales_campaign.service.db.kept_connection import KeptConnection
from isales_campaign.service.db.prepared import Prepared
from isales_campaign.service.db.watchdog import time_left
from isales_campaign.service.errors import DatabaseUnavailable, OutcomeUnknown

log = logging.getLogger(__name__)

#: The most writes one commit holds: a bound on how long the first of them waits for it.
MAX_GROUP = 32
#: How the writes of a group failed: nothing changed, or perhaps committed.
_Failure = type[DatabaseUnavailable] | type[OutcomeUnknown]
#: How often a write waiting for its group's commit makes sure that someone commits it.
_CHECK_SECONDS = 0.05
#: The page cache of the writes' connection: the index pages that adds touch, a few per busy
#: tenant, stay cached (with 1,000,000 campaigns an add read 24 pages from the OS with the
#: default 2 MiB, 4 with this). It fills only with pages the writes touch.
WRITER_CACHE_KIB = 32 * 1024


class BoundedLock:
    """A lock whose wait is bounded: past `timeout`, the call is answered UNAVAILABLE.
    `turn` names what it waits for, in the log."""

    def __init__(self, timeout: float | None, turn: str) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self._turn = turn

    def acquire(self) -> None:
        timeout = time_left(self._timeout)  # answer before the caller gives up
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            log.warning("no turn to %s within the database timeout", self._turn)
            raise DatabaseUnavailable()

    def try_acquire(self) -> bool:
        """Take the lock if it is free now."""
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


class _Group:
    """One transaction and the writes it holds."""

    def __init__(self, connection: PoolProxiedConnection) -> None:
        self.connection = connection
        self.writes = 0
        #: Set once the transaction has ended; `failure` then says how.
        self.ended = threading.Event()
        self.failure: _Failure | None = None


class GroupCommit:
    """The writes of one SQLite engine, taking `turn`s. `commit` commits a connection's
    transaction (raising OutcomeUnknown when it cannot tell), and `roll_back` rolls it back
    or drops the connection."""

    def __init__(
        self,
        engine: Engine,
        turn: BoundedLock,
        *,
        commit: Callable[[PoolProxiedConnection], None],
        roll_back: Callable[[PoolProxiedConnection], None],
    ) -> None:
        self._connection = KeptConnection(engine, cache_kib=WRITER_CACHE_KIB)
        self._turn = turn
        self._commit = commit
        self._roll_back = roll_back
        # SQLite takes the file's write lock at BEGIN IMMEDIATE, not at the first write.
        self._begin = Prepared(text("BEGIN IMMEDIATE"), engine.dialect)
        self._savepoint = Prepared(text("SAVEPOINT write"), engine.dialect)
        self._release = Prepared(text("RELEASE SAVEPOINT write"), engine.dialect)
        self._undo_write = Prepared(text("ROLLBACK TO SAVEPOINT write"), engine.dialect)
        self._group: _Group | None = None
        #: Writes waiting for their turn; only its holder reads it.
        self._waiting = 0
        self._counting = threading.Lock()

    @property
    def waiting(self) -> int:
        """Writes waiting for their turn now."""
        return self._waiting

    @contextmanager
    def write(self) -> Iterator[PoolProxiedConnection]:
        """A turn to write, in a savepoint of the open transaction. A block that ends
        without an exception returns once a commit holds its write."""
        self._take_turn()
        group = self._group
        # The first write of a group needs no savepoint: its transaction is all its own.
        first = group is None
        try:
            if group is None:
                group = self._open()
            else:
                _run(self._savepoint, group.connection)
        except BaseException:
            self._give_up(group)
            raise
        try:
            yield group.connection
            if not first:
                _run(self._release, group.connection)
        except BaseException:
            if first:
                self._end(group)  # rolls its transaction back
            else:
                self._undo(group)
            self._give_up(group)
            raise
        group.writes += 1
        self._give_up(group)
        self._await_commit(group)

    def _take_turn(self) -> None:
        with self._counting:
            self._waiting += 1
        try:
            self._turn.acquire()
        finally:
            with self._counting:
                self._waiting -= 1

    def close(self) -> None:
        """Give back the writes' connection, after the write under way, if any."""
        with self._turn:
            self._connection.close()

    def _open(self) -> _Group:
        connection = self._connection.take()
        try:
            _run(self._begin, connection)
        except BaseException:
            self._roll_back(connection)
            self._connection.keep(connection)  # or drops it, when the rollback failed
            raise
        self._group = _Group(connection)
        return self._group

    def _undo(self, group: _Group) -> None:
        """Undo the write of a block that failed. When that cannot be done (SQLite ends the
        transaction on its own after some I/O errors, and its savepoints with it), the whole
        group is rolled back: its writes fail with nothing changed."""
        try:
            _run(self._undo_write, group.connection)
            _run(self._release, group.connection)
        except Exception:
            log.warning("a failed write could not be undone; its group is rolled back")
            self._end(group, DatabaseUnavailable)

    def _give_up(self, group: _Group | None) -> None:
        """Give up the turn, leaving the transaction open for the next write if one is
        waiting and the group has room, else ending it first. A transaction without a
        write is never left open: the writes of a group see to its commit (and should the
        next write stop waiting, `_await_commit` still does)."""
        try:
            if group is not None and self._group is group and not self._keeps_open(group):
                self._end(group)
        finally:
            self._turn.release()

    def _keeps_open(self, group: _Group) -> bool:
        return self._waiting > 0 and 0 < group.writes < MAX_GROUP

    def _end(self, group: _Group, failure: _Failure | None = None) -> None:
        """Commit the group's writes; roll back when it has none, or a `failure`."""
        self._group = None
        connection = group.connection
        try:
            if failure is None and group.writes:
                self._commit(connection)
            else:
                group.failure = failure
                self._roll_back(connection)
        except Exception as error:
            if not isinstance(error, OutcomeUnknown):  # which says why itself
                log.exception("a commit failed")
            group.failure = OutcomeUnknown
        finally:
            try:
                if group.failure is None:
                    self._connection.keep(connection)
                else:  # it may hold what the failure left behind
                    self._connection.drop(connection)
            finally:
                group.ended.set()

    def _await_commit(self, group: _Group) -> None:
        """Wait for the commit that holds the writes of `group`. Should the writes behind
        them all have given up waiting for their turn, commit the group here."""
        while not group.ended.wait(_CHECK_SECONDS):
            if self._turn.try_acquire():
                self._give_up(group)
        if group.failure is not None:
            raise group.failure()


def _run(statement: Prepared, connection: PoolProxiedConnection) -> None:
    statement.execute(connection, {}).close()
