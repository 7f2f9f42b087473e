"""SQLite's writes queued behind one another share one commit (`db.group_commit`), and
each is answered only once that commit holds it; a refused or failed write undoes only
itself, and a failed commit fails every write it held. A turn not had in time is answered
UNAVAILABLE. Writes made on an event loop, in greenlets, share the commit of the loop's pass,
and wait for threads and other processes without holding the loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.util.concurrency import greenlet_spawn

from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.db import group_commit
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.group_commit import BoundedLock
from isales_campaign.service.db.prepared import Prepared
from isales_campaign.service.db.store import CampaignStore, TenantTransaction
from isales_campaign.service.errors import DatabaseUnavailable, NameTaken, OutcomeUnknown
from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.waiting import wait_for


class Outcomes:
    """What each write of a test answered, by name: its result or its exception."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, write: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.answers[name] = write()
            except Exception as error:
                self.answers[name] = error

        thread = threading.Thread(target=run)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive()


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every commit of the stores made after it (one entry each)."""
    made: list[int] = []
    commit = CampaignStore._commit

    def counted(self: CampaignStore, connection: Any) -> None:
        commit(self, connection)
        made.append(1)

    monkeypatch.setattr(CampaignStore, "_commit", counted)
    return made


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> list[Exception]:
    """While it holds an exception, every commit of the stores made after it raises that."""
    failures: list[Exception] = []
    commit = CampaignStore._commit

    def unconfirmed(store: CampaignStore, connection: Any) -> None:
        if failures:
            raise failures[0]
        commit(store, connection)

    monkeypatch.setattr(CampaignStore, "_commit", unconfirmed)
    return failures


@pytest.fixture
def store(sqlite_url: str, commits: list[int]) -> Iterator[CampaignStore]:
    seed_database(sqlite_url)
    engine = create_database_engine(sqlite_url, pool_size=4)
    yield CampaignStore(engine)
    engine.dispose()


def stored_names(sqlite_url: str) -> set[str]:
    """The campaigns on disk, read by a connection of its own (sees only what is committed)."""
    with sqlite3.connect(make_url(sqlite_url).database or "") as connection:
        return {name for (name,) in connection.execute("SELECT name FROM campaigns")}


@contextmanager
def turn_held_until(
    store: CampaignStore,
    waiting: int,
    write: Callable[[TenantTransaction], object] = lambda _transaction: None,
) -> Iterator[list[BaseException]]:
    """A `write` of tenant 1 holds the turn while the block starts others, until `waiting`
    of them wait for it; then it ends, and the others follow it into its transaction.
    Yields what that write raised (filled in once it has ended)."""
    holding = threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with store.unit_of_work(1) as transaction:
                write(transaction)
                holding.set()
                wait_for(lambda: store.writes_waiting == waiting, f"{waiting} waiting writes")
        except BaseException as error:
            failures.append(error)
            holding.set()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    yield failures
    holder.join(30)


def test_writes_queued_behind_one_share_its_commit_and_are_stored_when_answered(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    service = CampaignService(store)
    names = [f"queued-{index}" for index in range(4)]
    stored_when_answered: dict[str, bool] = {}
    outcomes = Outcomes()

    def add(name: str) -> int:
        added = service.add(add_request(example_campaign(name)))
        stored_when_answered[name] = name in stored_names(sqlite_url)
        return added.id

    with turn_held_until(store, waiting=len(names)) as held:
        for name in names:
            outcomes.start(name, lambda name=name: add(name))  # type: ignore[misc]
    outcomes.join()
    assert not held
    assert all(isinstance(outcomes.answers[name], int) for name in names), outcomes.answers
    assert stored_when_answered == dict.fromkeys(names, True)
    assert len(commits) == 1  # five writes, one commit


def test_a_refused_or_failed_write_of_a_group_undoes_only_itself(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    service = CampaignService(store)
    taken = service.add(add_request(example_campaign("taken")))
    outcomes = Outcomes()

    def delete_then_fail() -> None:
        with store.unit_of_work(1) as transaction:
            row = transaction.campaign(taken.id)
            assert row is not None
            transaction.delete(row)
            raise RuntimeError("after its delete")

    with turn_held_until(store, waiting=3) as held:
        outcomes.start("same name", lambda: service.add(add_request(example_campaign("taken"))))
        outcomes.start("delete, then fail", delete_then_fail)
        outcomes.start("kept", lambda: service.add(add_request(example_campaign("kept"))))
    outcomes.join()
    assert not held
    assert isinstance(outcomes.answers["same name"], NameTaken)
    assert isinstance(outcomes.answers["delete, then fail"], RuntimeError)
    assert outcomes.answers["kept"].id > taken.id
    assert stored_names(sqlite_url) == {"taken", "kept"}
    assert len(commits) == 2  # "taken" alone, then the group


@pytest.mark.parametrize(
    "failure",
    [OutcomeUnknown(), RuntimeError("a fault of the commit itself")],
    ids=["unconfirmed", "unexpected"],
)
def test_a_commit_that_fails_fails_every_write_it_held(
    sqlite_url: str, failing: list[Exception], failure: Exception
) -> None:
    """Whatever made the commit fail, each write hears that it may have been made."""
    failing.append(failure)
    seed_database(sqlite_url)
    engine = create_database_engine(sqlite_url, pool_size=4)
    store = CampaignStore(engine)
    service = CampaignService(store)
    outcomes = Outcomes()
    try:
        with turn_held_until(store, waiting=2) as held:
            outcomes.start("first", lambda: service.add(add_request(example_campaign("first"))))
            outcomes.start("second", lambda: service.add(add_request(example_campaign("2nd"))))
        outcomes.join()
        # The failed group's connection, its transaction perhaps still open, is not the
        # next write's.
        failing.clear()
        service.add(add_request(example_campaign("after")))
    finally:
        engine.dispose()
    assert [type(failure) for failure in held] == [OutcomeUnknown]
    assert isinstance(outcomes.answers["first"], OutcomeUnknown)
    assert isinstance(outcomes.answers["second"], OutcomeUnknown)
    assert stored_names(sqlite_url) == {"after"}


def test_a_group_holds_at_most_max_group_writes(
    store: CampaignStore, commits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_commit, "MAX_GROUP", 2)
    service = CampaignService(store)
    outcomes = Outcomes()
    with turn_held_until(store, waiting=3) as held:
        for name in ("one", "two", "three"):
            outcomes.start(name, lambda name=name: service.add(add_request(example_campaign(name))))  # type: ignore[misc]
    outcomes.join()
    assert not held
    assert all(answer.id > 0 for answer in outcomes.answers.values())
    assert len(commits) == 2  # four writes, two to a commit


def test_a_transaction_that_ends_under_a_group_fails_its_writes_with_nothing_changed(
    store: CampaignStore, sqlite_url: str
) -> None:
    """SQLite ends a transaction on its own after some I/O errors: the writes it held are
    gone, and they are answered so, not as committed."""
    service = CampaignService(store)
    taken = service.add(add_request(example_campaign("taken")))
    end_the_transaction = Prepared(text("ROLLBACK"), create_engine("sqlite://").dialect)
    outcomes = Outcomes()

    def delete(transaction: TenantTransaction) -> None:
        row = transaction.campaign(taken.id)
        assert row is not None
        transaction.delete(row)

    def lose_the_transaction() -> None:
        with store.unit_of_work(1) as transaction:
            transaction.execute(end_the_transaction).close()
            raise RuntimeError("a disk I/O error")

    with turn_held_until(store, waiting=1, write=delete) as held:
        outcomes.start("the one that fails", lose_the_transaction)
    outcomes.join()
    assert isinstance(outcomes.answers["the one that fails"], RuntimeError)
    assert [type(failure) for failure in held] == [DatabaseUnavailable]
    assert stored_names(sqlite_url) == {"taken"}  # the delete is gone with its transaction
    service.add(add_request(example_campaign("after")))
    assert stored_names(sqlite_url) == {"taken", "after"}


def test_a_group_left_open_for_a_write_that_stopped_waiting_is_still_committed(
    store: CampaignStore, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write leaves its transaction open when another waits for the turn; should that
    one stop waiting (its turn not given in time) just then, the group is committed by a
    write that waits for it."""
    monkeypatch.setattr(group_commit, "_CHECK_SECONDS", 0.01)
    service = CampaignService(store)
    commit = store._group_commit
    assert commit is not None
    give_up = commit._give_up
    handed: list[object] = []

    def handed_to_a_write_that_stops_waiting(group: Any) -> None:
        if handed:
            give_up(group)
            return
        handed.append(group)
        commit._waiting += 1  # it waits as the turn is given up...
        try:
            give_up(group)
        finally:
            commit._waiting -= 1  # ...and stops waiting before it takes the turn

    monkeypatch.setattr(commit, "_give_up", handed_to_a_write_that_stops_waiting)
    added = service.add(add_request(example_campaign("left open")))
    assert added.id > 0
    assert handed  # it was left open
    assert "left open" in stored_names(sqlite_url)


def test_closing_the_store_waits_for_the_write_under_way(sqlite_url: str) -> None:
    """The writes' connection is given back once the write that has it is done."""
    seed_database(sqlite_url)
    engine = create_database_engine(sqlite_url, pool_size=4)
    store = CampaignStore(engine, lock_timeout=10)
    try:
        CampaignService(store).add(add_request(example_campaign("first")))  # keeps one
        with write_under_way(store) as finish:
            closer = threading.Thread(target=store.close)
            closer.start()
            closer.join(0.2)
            assert closer.is_alive()  # the write has the turn, and the connection
            finish()
            closer.join(10)
        assert not closer.is_alive()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_a_store_that_cannot_have_the_write_turn_closes_the_rest(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing does not wait past the lock timeout for a write that keeps the turn: it says
    so, and still gives back the reads' connection."""
    seed_database(sqlite_url)
    engine = create_database_engine(sqlite_url, pool_size=4)
    store = CampaignStore(engine, lock_timeout=0.2)
    try:
        store.usage(1, datetime(2026, 1, 1))  # the reads keep a connection
        with write_under_way(store), caplog.at_level(logging.WARNING):
            store.close()
            assert "the write connection was still in use" in caplog.text
            assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # the write's
    finally:
        engine.dispose()


def test_a_turn_not_given_in_time_is_unavailable() -> None:
    """SQLite's readers and writers of one process take turns; a call that gets none within
    the database timeout is answered UNAVAILABLE rather than left waiting."""
    turn = BoundedLock(0.05, "write")
    with turn:  # another call holds the turn
        refused: list[BaseException] = []

        def wait_for_the_turn() -> None:
            try:
                with turn:
                    pass
            except DatabaseUnavailable as error:
                refused.append(error)

        waiter = threading.Thread(target=wait_for_the_turn)
        waiter.start()
        waiter.join(10)
    assert len(refused) == 1


@contextmanager
def write_under_way(store: CampaignStore) -> Iterator[Callable[[], None]]:
    """A write of tenant 1 on another thread that keeps its turn until the function given
    is called, or the block ends."""
    writing, finish = threading.Event(), threading.Event()

    def slow_write() -> None:
        with store.unit_of_work(1):
            writing.set()
            finish.wait(10)

    writer = threading.Thread(target=slow_write)
    writer.start()
    try:
        assert writing.wait(10)

        def end() -> None:
            finish.set()
            writer.join(10)

        yield end
    finally:
        finish.set()
        writer.join(10)


# -- Writes made on an event loop (`isales serve`'s changes, each in a greenlet) ------------


def on_loop(*writes: Callable[[], Any]) -> list[Any]:
    """Run each write in a greenlet on one event loop, all started in the same pass; what
    each answered: its result or its exception."""

    async def run() -> list[Any]:
        spawned = (greenlet_spawn(write) for write in writes)
        return await asyncio.gather(*spawned, return_exceptions=True)

    return asyncio.run(run())


def test_writes_of_one_pass_of_the_loop_share_a_commit_and_are_stored_when_answered(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    service = CampaignService(store)

    def add(name: str) -> tuple[int, bool]:
        added = service.add(add_request(example_campaign(name)))
        return added.id, name in stored_names(sqlite_url)

    names = [f"on the loop {index}" for index in range(4)]
    answers = on_loop(*(partial(add, name) for name in names))
    assert [stored for _id, stored in answers] == [True] * 4, answers
    assert len({campaign_id for campaign_id, _stored in answers}) == 4
    assert len(commits) == 1


def test_a_refused_write_of_the_loops_group_undoes_only_itself(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    service = CampaignService(store)
    service.add(add_request(example_campaign("taken")))
    same_name, kept = on_loop(
        lambda: service.add(add_request(example_campaign("taken"))),
        lambda: service.add(add_request(example_campaign("kept"))),
    )
    assert isinstance(same_name, NameTaken)
    assert kept.id > 0
    assert stored_names(sqlite_url) == {"taken", "kept"}
    assert len(commits) == 2  # "taken" alone, then the loop's group


def test_a_commit_on_the_loop_that_fails_fails_every_write_it_held(
    sqlite_url: str, failing: list[Exception]
) -> None:
    failing.append(OutcomeUnknown())
    seed_database(sqlite_url)
    engine = create_database_engine(sqlite_url, pool_size=4)
    service = CampaignService(CampaignStore(engine))
    try:
        answers = on_loop(
            lambda: service.add(add_request(example_campaign("first"))),
            lambda: service.add(add_request(example_campaign("second"))),
        )
        failing.clear()
        on_loop(lambda: service.add(add_request(example_campaign("after"))))
    finally:
        engine.dispose()
    assert [type(answer) for answer in answers] == [OutcomeUnknown, OutcomeUnknown]
    assert stored_names(sqlite_url) == {"after"}


def test_a_group_of_the_loop_holds_at_most_max_group_writes(
    store: CampaignStore, commits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_commit, "MAX_GROUP", 2)
    service = CampaignService(store)
    names = ("one", "two", "three")
    answers = on_loop(*(partial(service.add, add_request(example_campaign(n))) for n in names))
    assert all(answer.id > 0 for answer in answers), answers
    assert len(commits) == 2


def test_a_write_of_a_thread_joins_the_loops_open_group_and_commits_it(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    """The gRPC port's calls write on threads, beside the gateway's on the loop."""
    service = CampaignService(store)

    async def run() -> tuple[Any, Any]:
        on_the_loop = asyncio.ensure_future(
            greenlet_spawn(service.add, add_request(example_campaign("on the loop")))
        )
        await asyncio.sleep(0)  # it runs until it waits for its group's commit
        assert not on_the_loop.done()
        # The loop is held here, so its commit cannot come first.
        from_a_thread = Outcomes()
        from_a_thread.start("add", lambda: service.add(add_request(example_campaign("thread"))))
        from_a_thread.join()
        return await on_the_loop, from_a_thread.answers["add"]

    added_on_the_loop, added_by_the_thread = asyncio.run(run())
    assert added_on_the_loop.id > 0
    assert added_by_the_thread.id > 0
    assert stored_names(sqlite_url) == {"on the loop", "thread"}
    assert len(commits) == 1


def test_a_write_on_the_loop_waits_for_a_threads_turn_without_holding_the_loop(
    store: CampaignStore, sqlite_url: str
) -> None:
    service = CampaignService(store)
    with write_under_way(store) as finish:

        async def run() -> int:
            adding = asyncio.ensure_future(
                greenlet_spawn(service.add, add_request(example_campaign("waited")))
            )
            for _ in range(5):
                await asyncio.sleep(0.01)  # the loop goes on meanwhile
            assert not adding.done()
            await asyncio.to_thread(finish)
            return (await adding).id

        assert asyncio.run(run()) > 0
    assert stored_names(sqlite_url) == {"waited"}


@contextmanager
def file_locked_elsewhere(sqlite_url: str) -> Iterator[Callable[[], None]]:
    """Another process's write holds the file's lock until the function given is called, or
    for 5 s at most; the block must call it in time (a loop held meanwhile could not)."""
    locked, release = threading.Event(), threading.Event()
    released_in_time: list[bool] = []

    def hold() -> None:
        other = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            released_in_time.append(release.wait(5))
            other.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield release.set
    finally:
        release.set()
        holder.join(10)
    assert released_in_time == [True]


def test_a_write_on_the_loop_waits_for_another_processs_lock_without_holding_the_loop(
    store: CampaignStore, sqlite_url: str
) -> None:
    """Again after such a wait; and a thread's write, after writes on the loop that did or
    did not wait, still waits for the lock."""
    service = CampaignService(store)

    async def run(name: str, release: Callable[[], None]) -> int:
        adding = asyncio.ensure_future(
            greenlet_spawn(service.add, add_request(example_campaign(name)))
        )
        for _ in range(5):
            await asyncio.sleep(0.01)  # the loop goes on meanwhile
        assert not adding.done()
        release()
        return (await adding).id

    for name in ("waited", "waited again"):
        with file_locked_elsewhere(sqlite_url) as release:
            assert asyncio.run(run(name, release)) > 0
    on_loop(lambda: service.add(add_request(example_campaign("not waited"))))
    with file_locked_elsewhere(sqlite_url) as release:
        threading.Timer(0.2, release).start()
        assert service.add(add_request(example_campaign("on a thread"))).id > 0
    names = {"waited", "waited again", "not waited", "on a thread"}
    assert stored_names(sqlite_url) == names


def test_the_loops_commit_waits_for_a_thread_writing_in_its_group_without_holding_the_loop(
    store: CampaignStore, sqlite_url: str, commits: list[int]
) -> None:
    service = CampaignService(store)

    async def run() -> int:
        adding = asyncio.ensure_future(
            greenlet_spawn(service.add, add_request(example_campaign("on the loop")))
        )
        await asyncio.sleep(0)  # it waits for its commit, its group open
        with write_under_way(store) as finish:  # a thread's write joins the group
            for _ in range(10):
                await asyncio.sleep(0.01)  # the loop's commit finds the turn taken
            assert not adding.done()
            await asyncio.to_thread(finish)
        return (await adding).id

    assert asyncio.run(run()) > 0
    assert stored_names(sqlite_url) == {"on the loop"}
    assert len(commits) == 1


def test_a_change_on_the_loop_waits_for_a_threads_read_without_holding_the_loop(
    store: CampaignStore, sqlite_url: str
) -> None:
    """A change reads its tenant's settings when they are not cached, in the process's turn
    to read, which a thread's read (a list page) may hold."""
    service = CampaignService(store)
    reading, finish = threading.Event(), threading.Event()
    released_by_the_loop: list[bool] = []

    def long_read() -> None:
        with store._reader:
            reading.set()
            released_by_the_loop.append(finish.wait(10))

    reader = threading.Thread(target=long_read)
    reader.start()
    try:
        assert reading.wait(10)

        async def run() -> int:
            adding = asyncio.ensure_future(
                greenlet_spawn(service.add, add_request(example_campaign("after the read")))
            )
            for _ in range(5):
                await asyncio.sleep(0.01)  # the loop goes on meanwhile
            assert not adding.done()
            finish.set()
            return (await adding).id

        assert asyncio.run(run()) > 0
    finally:
        finish.set()
        reader.join(10)
    assert released_by_the_loop == [True]
    assert stored_names(sqlite_url) == {"after the read"}
