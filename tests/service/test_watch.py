"""The change feed (WatchCampaignChanges): the backlog in order, a bookmark, then each change
as it commits, on whichever server it was made; resuming gets exactly the rest. On SQLite and
PostgreSQL, with real servers on loopback."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_change_pb2 import ChangeKind
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import text

from isales_campaign.metrics import SERVICE_METRICS
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaign_changes
from tests.conftest import FixedClock, ServerFactory
from tests.rpc_errors import Failure, failure_of
from tests.service.helpers import (
    EXECUTING,
    PAUSED,
    StubFactory,
    add,
    campaign,
    pause,
    refused,
    resume,
)
from tests.waiting import wait_for

PAUSED_KIND, RESUMED = ChangeKind.CHANGE_KIND_PAUSED, ChangeKind.CHANGE_KIND_RESUMED
#: Seconds a test waits for an event that should come at once.
PROMPTLY = 10.0
#: Changes made while a watcher reads nothing: more than its connection's window holds.
SLOW_WATCHER_CHANGES = 400


def watchers() -> float:
    """The watchers this process's servers serve now (the metric)."""
    return SERVICE_METRICS.get_sample_value("isales_change_watchers") or 0.0


class Watching:
    """A watch whose events a thread reads into a queue, as they come."""

    def __init__(self, client: CampaignServiceStub, vdn_id: int = 1, after: int = 0) -> None:
        request = rpc.WatchCampaignChangesRequest(vdn_id=vdn_id, after_sequence=after)
        self.call = client.WatchCampaignChanges(request, timeout=120)
        self._events: queue.Queue[rpc.WatchCampaignChangesResponse | Failure] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self._events.put(event)
        except grpc.RpcError as error:
            self._events.put(failure_of(error))

    def next(self) -> rpc.WatchCampaignChangesResponse:
        event = self._events.get(timeout=PROMPTLY)
        assert not isinstance(event, Failure), event
        return event

    def changes(self, count: int) -> list[int]:
        """The sequences of the next `count` changes (bookmarks between them are skipped)."""
        sequences: list[int] = []
        while len(sequences) < count:
            event = self.next()
            if event.HasField("change"):
                sequences.append(event.change.sequence)
        return sequences

    def bookmark(self) -> int:
        event = self.next()
        assert event.HasField("bookmark"), event
        return event.bookmark.latest_sequence

    def failure(self) -> Failure:
        """How the watch ended (the changes before it are skipped)."""
        while True:
            event = self._events.get(timeout=PROMPTLY)
            if isinstance(event, Failure):
                return event

    def close(self) -> None:
        self.call.cancel()
        self._reader.join(PROMPTLY)


@pytest.fixture
def watch() -> Iterator[Callable[..., Watching]]:
    opened: list[Watching] = []

    def open_watch(client: CampaignServiceStub, vdn_id: int = 1, after: int = 0) -> Watching:
        watching = Watching(client, vdn_id, after)
        opened.append(watching)
        return watching

    yield open_watch
    for watching in opened:
        watching.close()


def test_the_backlog_then_a_bookmark_then_each_change_as_it_commits(
    client: CampaignServiceStub, watch: Callable[..., Watching]
) -> None:
    first = add(client, campaign("first"))
    add(client, campaign("second"))
    watching = watch(client)
    assert watching.changes(2) == [1, 2]
    assert watching.bookmark() == 2  # caught up
    pause(client, first)
    resume(client, first)
    live = [watching.next().change, watching.next().change]
    assert [(c.sequence, c.campaign_id, c.kind, c.status) for c in live] == [
        (3, first, PAUSED_KIND, PAUSED),
        (4, first, RESUMED, EXECUTING),
    ]


def test_a_watcher_that_resumes_after_the_last_sequence_it_saw_gets_exactly_the_rest(
    client: CampaignServiceStub, watch: Callable[..., Watching]
) -> None:
    first = add(client, campaign("first"))
    watching = watch(client)
    assert watching.changes(1) == [1]
    watching.close()  # a disconnect; changes go on meanwhile
    pause(client, first)
    resume(client, first)
    resumed = watch(client, after=1)
    assert resumed.changes(2) == [2, 3]
    assert resumed.bookmark() == 3
    pause(client, first)
    assert resumed.changes(1) == [4]


def test_an_idle_watcher_gets_bookmarks_with_the_latest_sequence(
    stub_with: StubFactory, watch: Callable[..., Watching]
) -> None:
    client = stub_with(watch_bookmark_seconds=0.1)
    add(client, campaign("only"))
    watching = watch(client, after=1)
    assert [watching.bookmark() for _ in range(3)] == [1, 1, 1]


def test_a_watcher_of_one_tenant_never_sees_another_tenants_changes(
    client: CampaignServiceStub, watch: Callable[..., Watching]
) -> None:
    ours, theirs = watch(client, vdn_id=1), watch(client, vdn_id=2)
    assert (ours.bookmark(), theirs.bookmark()) == (0, 0)
    other = add(client, campaign("theirs"), vdn_id=2)
    mine = add(client, campaign("ours"))
    assert [(e.change.vdn_id, e.change.campaign_id) for e in [ours.next()]] == [(1, mine)]
    assert [(e.change.vdn_id, e.change.campaign_id) for e in [theirs.next()]] == [(2, other)]


def test_bad_requests_and_unknown_tenants_are_refused(client: CampaignServiceStub) -> None:
    def watch_refused(request: rpc.WatchCampaignChangesRequest) -> Failure:
        return refused(
            lambda r, timeout: list(client.WatchCampaignChanges(r, timeout=timeout)), request
        )

    for bad in (
        rpc.WatchCampaignChangesRequest(vdn_id=0),
        rpc.WatchCampaignChangesRequest(vdn_id=1, after_sequence=-1),
    ):
        assert watch_refused(bad).code == grpc.StatusCode.INVALID_ARGUMENT
    unknown = watch_refused(rpc.WatchCampaignChangesRequest(vdn_id=77))
    assert unknown.code == grpc.StatusCode.NOT_FOUND


def test_a_cursor_older_than_the_retained_history_is_refused_with_the_oldest_sequence(
    client: CampaignServiceStub, database_url: str, watch: Callable[..., Watching]
) -> None:
    for name in ("a", "b", "c"):
        add(client, campaign(name))
    engine = create_database_engine(database_url, pool_size=1)
    try:  # as a pruning of the first two records would leave it
        with engine.begin() as connection:
            connection.execute(campaign_changes.delete().where(campaign_changes.c.sequence < 3))
    finally:
        engine.dispose()
    failure = watch(client, after=1).failure()
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.metadata["oldest_sequence"] == "3"
    assert watch(client, after=2).changes(1) == [3]
    assert watch(client).changes(1) == [3]  # from the oldest retained change


def test_a_server_takes_as_many_watchers_as_it_is_set_to(
    stub_with: StubFactory, watch: Callable[..., Watching]
) -> None:
    client = stub_with(max_watchers=1)
    watching_before = watchers()
    first = watch(client)
    assert first.bookmark() == 0
    failure = watch(client).failure()
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.metadata["limit"] == "1"
    first.close()  # its place is free again
    wait_for(lambda: watchers() == watching_before, "the watcher to be forgotten")
    assert watch(client).bookmark() == 0


def test_watchers_are_counted_in_the_metrics(
    client: CampaignServiceStub, watch: Callable[..., Watching]
) -> None:
    before = watchers()
    watching = [watch(client), watch(client, vdn_id=2)]
    for each in watching:
        each.bookmark()
    assert watchers() == before + 2
    for each in watching:
        each.close()
    wait_for(lambda: watchers() == before, "the watchers to be forgotten")
    handled = SERVICE_METRICS.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": "server_stream",
            "grpc_service": "isales.campaign.v2.CampaignService",
            "grpc_method": "WatchCampaignChanges",
            "grpc_code": "CANCELLED",
        },
    )
    assert handled is not None
    assert handled >= 2


def test_a_server_that_shuts_down_ends_its_watches_unavailable_naming_where_to_resume(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    clock: FixedClock,
    watch: Callable[..., Watching],
) -> None:
    running = make_server(database_url, clock=clock)
    client = CampaignServiceStub(channel_to(running.port))
    add(client, campaign("one"))
    watching = watch(client)
    assert watching.changes(1) == [1]
    stopping = threading.Thread(target=running.stop, args=(30,))
    stopping.start()
    failure = watching.failure()
    stopping.join()
    assert failure.code == grpc.StatusCode.UNAVAILABLE
    assert failure.metadata["resume_after_sequence"] == "1"


def test_a_watcher_too_slow_to_keep_up_is_ended_with_where_to_resume_never_skipped(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    clock: FixedClock,
) -> None:
    running = make_server(database_url, clock=clock, watch_buffer=5)
    client = CampaignServiceStub(channel_to(running.port))
    first = add(client, campaign("busy"))
    # A client that reads nothing: without BDP probing its window stays small, and the
    # server's sends soon wait for it.
    with grpc.insecure_channel(
        f"127.0.0.1:{running.port}", options=[("grpc.http2.bdp_probe", 0)]
    ) as channel:
        stream = CampaignServiceStub(channel).WatchCampaignChanges(
            rpc.WatchCampaignChangesRequest(vdn_id=1, after_sequence=1), timeout=120
        )
        assert next(stream).bookmark.latest_sequence == 1
        for _ in range(SLOW_WATCHER_CHANGES // 2):
            pause(client, first)
            resume(client, first)
        received, failure = _read_to_the_end(stream)
    assert failure.code == grpc.StatusCode.ABORTED
    # Every change up to where it ended, in order, and it says so.
    assert received == list(range(2, 2 + len(received)))
    assert failure.metadata["resume_after_sequence"] == str(received[-1])
    latest = 1 + SLOW_WATCHER_CHANGES
    assert received[-1] < latest
    rest = Watching(client, after=received[-1])
    try:
        assert rest.changes(latest - received[-1]) == list(range(received[-1] + 1, latest + 1))
    finally:
        rest.close()


def test_a_watcher_on_one_server_sees_every_change_made_through_another_in_order(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    clock: FixedClock,
    watch: Callable[..., Watching],
) -> None:
    watched = CampaignServiceStub(channel_to(make_server(database_url, clock=clock).port))
    other = CampaignServiceStub(channel_to(make_server(database_url, clock=clock, seed=False).port))
    watching = watch(watched)
    assert watching.bookmark() == 0
    first = add(other, campaign("elsewhere"))
    pause(other, first)
    add(watched, campaign("here"))
    resume(other, first)
    assert watching.changes(4) == [1, 2, 3, 4]


def _read_to_the_end(
    stream: Iterator[rpc.WatchCampaignChangesResponse],
) -> tuple[list[int], Failure]:
    """The sequences of the changes a stream sends, and how it ends."""
    received: list[int] = []
    try:
        for event in stream:
            if event.HasField("change"):
                received.append(event.change.sequence)
    except grpc.RpcError as error:
        return received, failure_of(error)
    raise AssertionError("the stream ended without a status")


def test_the_listening_connection_outlives_the_database_timeout(
    database_url: str,
    make_server: ServerFactory,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database's watchdog cuts connections that are busy too long; the one that waits
    for notices of changes is not its to cut (it was, every few seconds)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no listening connection")
    make_server(database_url, clock=clock, database_timeout_seconds=0.1)
    with caplog.at_level(logging.WARNING):
        time.sleep(2.0)  # the watchdog gives a connection the timeout and a second
    cut = [
        r.getMessage() for r in caplog.records if r.name.startswith("isales_campaign.service.db")
    ]
    assert not cut


def test_a_listener_whose_connection_broke_listens_again_and_misses_nothing(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    clock: FixedClock,
    watch: Callable[..., Watching],
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no listening connection")
    watched = CampaignServiceStub(channel_to(make_server(database_url, clock=clock).port))
    other = CampaignServiceStub(channel_to(make_server(database_url, clock=clock, seed=False).port))
    watching = watch(watched)
    assert watching.bookmark() == 0
    engine = create_database_engine(database_url, pool_size=1)
    try:  # every listener's connection is cut, as a restart of PostgreSQL's would be
        with engine.begin() as connection:
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            ).all()
    finally:
        engine.dispose()
    assert len(cut) == 2
    add(other, campaign("made while nobody listened"))
    assert watching.changes(1) == [1]
