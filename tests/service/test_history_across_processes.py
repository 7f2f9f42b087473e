"""The change history's promises with `isales grpc-server` in child processes, on SQLite and
PostgreSQL, under a mix of changes from several client threads (see `change_mix`):

- a watcher connected to one process sees every change made through another (and through its
  own), sequences 1..N once each, in order, within moments of the last one;
- servers killed (SIGKILL) mid-burst, one after another, leave a record of every change they
  acknowledged and of no change that was not made, numbered without a gap: the changes after
  a restart continue the sequence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_change_pb2 import CampaignChange
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess
from tests.service.change_mix import ChangeMix, every_change, history_problems, stored_campaigns
from tests.waiting import wait_for

#: Campaign limits out of the mixes' reach.
LIMITS = {"ISALES_MAX_ACTIVE_TASKS": "100000", "ISALES_MAX_CAMPAIGNS_PER_FAMILY": "100000"}
#: Seconds within which a watcher has every change after the last one was acknowledged.
PROMPTLY = 5.0
#: Changes made by each of the 4 client threads of the watch.
CHANGES_EACH = 30
#: Client threads making changes until the server is killed, the changes acknowledged
#: before it is, and the kills of a test.
KILL_CLIENTS, BEFORE_THE_KILL, KILLS = 8, 100, 3

StartServers = Callable[..., list[ServerProcess]]


@pytest.fixture
def start_servers(tmp_path: Path) -> Iterator[StartServers]:
    """Start `isales grpc-server` processes on a database, at once; those still running at
    the end are stopped (SIGTERM) and must exit 0."""
    started: list[ServerProcess] = []

    def start(database_url: str, *names: str) -> list[ServerProcess]:
        def one(name: str) -> ServerProcess:
            server = ServerProcess(
                tmp_path / f"{name}.log", ISALES_DATABASE_URL=database_url, **LIMITS
            )
            started.append(server)
            return server

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            return list(pool.map(one, names))

    yield start
    running = [server for server in started if server.process.poll() is None]
    exits = [(server.stop(), server.log_path.name) for server in running]
    assert [name for code, name in exits if code != 0] == [], [s.log_text() for s in running]


class Collected:
    """A watch of tenant 1's changes, whose events a thread collects."""

    def __init__(self, client: CampaignServiceStub, after: int = 0) -> None:
        request = rpc.WatchCampaignChangesRequest(vdn_id=1, after_sequence=after)
        self.call = client.WatchCampaignChanges(request, timeout=120)
        self.changes: list[CampaignChange] = []
        self.bookmarks: list[int] = []
        self.ended: grpc.RpcError | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                if event.HasField("change"):
                    self.changes.append(event.change)
                else:
                    self.bookmarks.append(event.bookmark.latest_sequence)
        except grpc.RpcError as error:
            self.ended = error

    def last(self) -> int:
        """The sequence of the last change received (0: none)."""
        return self.changes[-1].sequence if self.changes else 0

    def close(self) -> None:
        self.call.cancel()
        self._reader.join(10)


@pytest.fixture
def collect() -> Iterator[Callable[..., Collected]]:
    opened: list[Collected] = []

    def open_watch(client: CampaignServiceStub, after: int = 0) -> Collected:
        watch = Collected(client, after)
        opened.append(watch)
        return watch

    yield open_watch
    for watch in opened:
        watch.close()


def test_a_watcher_of_one_process_sees_every_change_made_through_another_once_in_order(
    database_url: str,
    start_servers: StartServers,
    channel_to: Callable[[int], grpc.Channel],
    collect: Callable[..., Collected],
) -> None:
    seed_database(database_url)
    a, b = (CampaignServiceStub(channel_to(s.port)) for s in start_servers(database_url, "a", "b"))
    watches = [collect(a)]
    wait_for(lambda: watches[0].bookmarks[:1] == [0], "the watch to be caught up")
    # Most changes through B, some through A; two more watchers join mid-burst, from the
    # start of the history, one on each process.
    mix = ChangeMix(changes=CHANGES_EACH)
    with mix.running([b, b, b, a]):
        wait_for(lambda: mix.acknowledged >= CHANGES_EACH, "changes under way")
        watches += [collect(a), collect(b)]
        mix.join()
    answers = mix.answers
    assert answers.cut == {}  # every change was answered
    changed = len(answers.acknowledged)
    deadline = time.monotonic() + PROMPTLY
    for watch in watches:
        wait_for(
            lambda w=watch: w.last() >= changed,  # type: ignore[misc]
            "every change",
            deadline - time.monotonic(),
        )
    records = every_change(a)
    assert history_problems(records, stored_campaigns(b), answers) == []
    for watch in watches:
        assert watch.ended is None
        assert [change.sequence for change in watch.changes] == list(range(1, changed + 1))
        assert watch.changes == records  # each as recorded


@pytest.mark.slow
def test_servers_killed_mid_burst_leave_a_record_of_each_change_made_and_of_no_other(
    database_url: str,
    start_servers: StartServers,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    seed_database(database_url)
    mix = ChangeMix()
    for round_ in range(KILLS):
        (killed,) = start_servers(database_url, f"killed-{round_}")
        with mix.running([CampaignServiceStub(channel_to(killed.port))] * KILL_CLIENTS):
            enough = mix.acknowledged + BEFORE_THE_KILL
            wait_for(lambda e=enough: mix.acknowledged >= e, "changes under way")  # type: ignore[misc]
            killed.process.kill()
            killed.process.wait()
    (restarted,) = start_servers(database_url, "restarted")
    client = CampaignServiceStub(channel_to(restarted.port))
    records = every_change(client)
    assert history_problems(records, stored_campaigns(client), mix.answers) == []
    # The history goes on after its last record.
    new = client.AddCampaign(add_request(example_campaign("after the kills")), timeout=10).id
    after = every_change(client)[len(records) :]
    assert [(change.sequence, change.campaign_id) for change in after] == [(len(records) + 1, new)]
