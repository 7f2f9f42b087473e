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

A write made on an event loop (the changes `isales serve`'s gateway makes, run in a greenlet
on the loop's thread: see `local_backend`) has nobody waiting for the turn while it runs: the
calls of the loop come one after the other. So its group stays open for the writes of the
calls the loop serves in the same pass, and a callback the loop runs after them commits it;
meanwhile the write's greenlet waits for that commit, not the loop. This spares a change the
hand-off to a worker thread and back, and the threads' wake-ups per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, Integer, column, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import await_, greenlet_spawn, in_greenlet

from isales_campaign.service.db.kept_connection import KeptConnection
from isales_campaign.service.db.prepared import Prepared
from isales_campaign.service.db.watchdog import time_left
from isales_campaign.service.errors import DatabaseUnavailable, OutcomeUnknown

log = logging.getLogger(__name__)

_T = TypeVar("_T")

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
    `turn` names what it waits for, in the log. A call on an event loop, in a greenlet (see
    `in_loop_greenlet`), that finds it taken waits for it on a thread, letting the loop run:
    a thread holding it may wait for another process's lock, or read a long list."""

    def __init__(self, timeout: float | None, turn: str) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self._turn = turn

    def acquire(self) -> None:
        if not in_greenlet():
            self._wait()
        elif not self._lock.acquire(blocking=False):
            await_(asyncio.to_thread(self._wait))

    def _wait(self) -> None:
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
        #: Its writes made on an event loop wait for this (None: it has none).
        self.ended_on_loop: asyncio.Future[None] | None = None


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
        # On a loop, BEGIN does not wait in SQLite's busy handler (see `_begin_on_loop`).
        self._dialect = engine.dialect
        self._no_busy_wait = Prepared(text("PRAGMA busy_timeout = 0"), engine.dialect)
        self._read_busy_wait = Prepared(
            text("PRAGMA busy_timeout").columns(column("milliseconds", Integer)), engine.dialect
        )
        #: Sets the connections' busy timeout back (made once it has been read).
        self._busy_wait: Prepared | None = None
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
        loop = _loop_of_write()
        self._take_turn()
        group = self._group
        # The first write of a group needs no savepoint: its transaction is all its own.
        first = group is None
        try:
            if group is None:
                group = self._open(on_loop=loop is not None)
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
        if loop is None:
            self._give_up(group)
            self._await_commit(group)
        else:
            self._commit_on(loop, group)
            self._give_up(group, on_loop=True)
            self._await_commit_on_loop(group)

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

    def _open(self, *, on_loop: bool) -> _Group:
        connection = self._connection.take()
        try:
            if on_loop:
                self._begin_on_loop(connection)
            else:
                _run(self._begin, connection)
        except BaseException:
            self._roll_back(connection)
            self._connection.keep(connection)  # or drops it, when the rollback failed
            raise
        self._group = _Group(connection)
        return self._group

    def _begin_on_loop(self, connection: PoolProxiedConnection) -> None:
        """BEGIN IMMEDIATE at once, or, while another process holds the file's write lock,
        on a thread that waits for it (as long as SQLite's busy timeout), letting the loop
        run."""
        busy_wait = self._busy_wait
        if busy_wait is None:  # the engine sets the same timeout on every connection
            milliseconds = self._read_busy_wait.first(connection, {}).milliseconds
            statement = text(f"PRAGMA busy_timeout = {int(milliseconds)}")
            busy_wait = self._busy_wait = Prepared(statement, self._dialect)
        _run(self._no_busy_wait, connection)
        try:
            _run(self._begin, connection)
        except OperationalError as error:
            if not _is_busy(error):
                raise
            _run(busy_wait, connection)
            await_(asyncio.to_thread(_run, self._begin, connection))
        finally:
            _run(busy_wait, connection)

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

    def _give_up(self, group: _Group | None, *, on_loop: bool = False) -> None:
        """Give up the turn, leaving the transaction open for the next write if one is
        waiting (or, `on_loop`, may come in the loop's pass) and the group has room, else
        ending it first. A transaction without a write is never left open: the writes of a
        group see to its commit (and should the next write stop waiting, `_await_commit`
        still does; on a loop, `_commit_on`'s callback)."""
        try:
            if group is not None and self._group is group:
                waited_for = on_loop or self._waiting > 0
                if not (waited_for and 0 < group.writes < MAX_GROUP):
                    self._end(group)
        finally:
            self._turn.release()

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
                if group.ended_on_loop is not None:
                    _set_soon(group.ended_on_loop)

    def _await_commit(self, group: _Group) -> None:
        """Wait for the commit that holds the writes of `group`. Should the writes behind
        them all have given up waiting for their turn, commit the group here."""
        while not group.ended.wait(_CHECK_SECONDS):
            if self._turn.try_acquire():
                self._give_up(group)
        if group.failure is not None:
            raise group.failure()

    def _commit_on(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        """Have `loop` commit `group` once the calls of its current pass have run (the first
        write of the group made on the loop asks for it, holding the turn)."""
        if group.ended_on_loop is None:
            group.ended_on_loop = loop.create_future()
            # Outside the call's context: the commit is bounded by no call's deadline.
            loop.call_soon(self._commit_from_loop, loop, group, context=contextvars.Context())

    def _commit_from_loop(self, loop: asyncio.AbstractEventLoop, group: _Group) -> None:
        if group.ended.is_set():
            return  # a write of a thread ended it, or the last one the group had room for
        if not self._turn.try_acquire():
            # A thread writes now, perhaps in this group, and may end it; look again soon
            # rather than hold the loop.
            loop.call_later(
                _CHECK_SECONDS, self._commit_from_loop, loop, group, context=contextvars.Context()
            )
            return
        try:
            if self._group is group:
                self._end(group)
        finally:
            self._turn.release()

    def _await_commit_on_loop(self, group: _Group) -> None:
        """Wait for the commit that holds the writes of `group`, letting the loop run."""
        assert group.ended_on_loop is not None
        await_(group.ended_on_loop)
        if group.failure is not None:
            raise group.failure()


async def in_loop_greenlet(function: Callable[..., _T], *args: Any) -> _T:
    """`function(*args)` run on the running event loop, in a greenlet: its writes share the
    commits of the loop's passes and wait for them without holding the loop."""
    return await greenlet_spawn(function, *args)


def _loop_of_write() -> asyncio.AbstractEventLoop | None:
    """The event loop a write is made on, in a greenlet that may wait for a commit
    (`local_backend`); None for a write on a thread of its own."""
    return asyncio.get_running_loop() if in_greenlet() else None


def _set_soon(future: asyncio.Future[None]) -> None:
    """Complete `future` on its loop, from that loop's thread or another."""
    loop = future.get_loop()
    try:
        on_its_loop = asyncio.get_running_loop() is loop
    except RuntimeError:  # a thread without a loop
        on_its_loop = False
    if on_its_loop:
        _complete(future)
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_complete, future)


def _complete(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _is_busy(error: OperationalError) -> bool:
    """Whether SQLite refused for another connection's lock (SQLITE_BUSY)."""
    return getattr(error.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def _run(statement: Prepared, connection: PoolProxiedConnection) -> None:
    statement.execute(connection, {}).close()
