"""`isales changes`, run as a real process against real servers on loopback: the history as
JSON lines, and following the feed across a restart of the server; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf import json_format
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_change_pb2 import CampaignChange
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaign_changes
from tests.conftest import ServerFactory, seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess, free_port
from tests.waiting import wait_for

#: Seconds a test waits for what should come at once; a follower that resumes may first
#: wait out its backoff (0.5 s doubling to 10 s).
PROMPTLY = 30.0
#: ListCampaignChanges' largest page: a history longer than this takes several.
PAGE = 100


def environment(target: str) -> dict[str, str]:
    """What `isales changes` runs with: the service's address, and nothing of this process's
    environment that could change its behaviour."""
    return {"ISALES_GRPC_TARGET": target, "PATH": ""}


def changes(*args: str, target: str) -> subprocess.CompletedProcess[str]:
    """`isales changes ARGS`, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "isales_campaign.cli", "changes", *args],
        env=environment(target),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Follower:
    """`isales changes ARGS` running: its stdout read line by line as it comes, its stderr
    kept."""

    def __init__(self, *args: str, target: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "isales_campaign.cli", "changes", *args],
            env=environment(target),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._errors = bytearray()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_lines, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_errors, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_lines(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)

    def _read_errors(self, stream: Any) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            self._errors += chunk

    def records(self, count: int) -> list[dict[str, Any]]:
        """The next `count` lines, each a JSON object."""
        return [orjson.loads(self._lines.get(timeout=PROMPTLY)) for _ in range(count)]

    def sequences(self, count: int) -> list[int]:
        return [record["sequence"] for record in self.records(count)]

    @property
    def stderr(self) -> str:
        return self._errors.decode()

    def stop(self, signum: signal.Signals = signal.SIGINT) -> int:
        """Send `signum`; the exit code, once every line it wrote has been read."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.finish()

    def finish(self) -> int:
        code = self.process.wait(PROMPTLY)
        for reader in self._readers:
            reader.join(PROMPTLY)
        return code

    def rest(self) -> list[bytes]:
        """The lines not read yet (after `stop`: those it wrote last)."""
        return list(self._lines.queue)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def follow() -> Iterator[Callable[..., Follower]]:
    started: list[Follower] = []

    def start(*args: str, target: str) -> Follower:
        follower = Follower(*args, target=target)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.kill()


Service = tuple[CampaignServiceStub, str]


def start_service(
    url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> Service:
    """A client of a fresh server on a fresh, seeded database, and the server's address."""
    running = make_server(url)
    return CampaignServiceStub(channel_to(running.port)), f"127.0.0.1:{running.port}"


@pytest.fixture
def service(
    database_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> Service:
    """On SQLite and on PostgreSQL."""
    return start_service(database_url, make_server, channel_to)


@pytest.fixture
def sqlite_service(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> Service:
    """For what the database does not change."""
    return start_service(sqlite_url, make_server, channel_to)


def add(client: CampaignServiceStub, name: str) -> int:
    return client.AddCampaign(add_request(example_campaign(name)), timeout=10).id


def pause(client: CampaignServiceStub, campaign_id: int) -> None:
    client.PauseCampaign(rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id), timeout=10)


def resume(client: CampaignServiceStub, campaign_id: int) -> None:
    request = rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    client.ResumeCampaign(request, timeout=10)


def modify(client: CampaignServiceStub, campaign_id: int, name: str, description: str) -> None:
    changed = example_campaign(name)
    changed.description = description
    request = rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=changed)
    client.UpdateCampaign(request, timeout=10)


def history(client: CampaignServiceStub) -> list[CampaignChange]:
    """The tenant's whole history, as the service answers it."""
    found: list[CampaignChange] = []
    after = 0
    while True:
        request = rpc.ListCampaignChangesRequest(vdn_id=1, after_sequence=after, page_size=PAGE)
        page = client.ListCampaignChanges(request, timeout=10)
        for change in page.changes:
            change.changed_fields.SetInParent()  # printed empty when there are none
            found.append(change)
        if not page.next_after_sequence:
            return found
        after = page.next_after_sequence


def parsed(stdout: str) -> list[CampaignChange]:
    """Each line of `isales changes`, read back into the message."""
    return [json_format.Parse(line, CampaignChange()) for line in stdout.splitlines()]


def test_the_history_is_printed_one_json_line_per_record_in_order(
    service: Service,
) -> None:
    client, target = service
    first = add(client, "first")
    modify(client, first, "first", "changed")
    for _ in range(PAGE // 2 + 1):  # more than a page
        pause(client, first)
        resume(client, first)
    result = changes("1", target=target)
    assert (result.returncode, result.stderr) == (0, "")
    assert parsed(result.stdout) == history(client)  # every field, as the service has it
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["sequence"] for line in lines] == list(range(1, PAGE + 5))
    added, modified, paused = lines[:3]
    assert (added["kind"], added["campaignId"], added["version"]) == ("CHANGE_KIND_ADDED", first, 1)
    assert added["status"] == "CAMPAIGN_STATUS_EXECUTING"
    assert added["changeTime"].endswith("Z")  # RFC 3339, in UTC
    assert added["actor"] == {
        "accessKey": "",
        "certificateSubject": "",
        "internal": True,
        "requestId": added["actor"]["requestId"],
    }
    assert (added["changedFields"], modified["changedFields"]) == ("", "description")
    assert modified["campaign"]["description"] == "changed"
    assert paused["status"] == "CAMPAIGN_STATUS_PAUSED"


def test_one_campaigns_records_and_those_after_a_sequence(
    service: Service,
) -> None:
    client, target = service
    first, second = add(client, "first"), add(client, "second")
    pause(client, first)
    pause(client, second)

    def sequences(*args: str) -> list[int]:
        result = changes("1", *args, target=target)
        assert (result.returncode, result.stderr) == (0, "")
        return [change.sequence for change in parsed(result.stdout)]

    assert sequences("--campaign", str(second)) == [2, 4]
    assert sequences("--after", "2") == [3, 4]
    assert sequences("--campaign", str(first), "--after", "1") == [3]
    assert sequences("--after", "4") == []


def test_following_prints_the_backlog_then_each_change_as_it_is_made(
    service: Service, follow: Callable[..., Follower]
) -> None:
    client, target = service
    first, second = add(client, "first"), add(client, "second")
    everything = follow("1", "--follow", target=target)
    later = follow("1", "--follow", "--after", "1", target=target)
    one = follow("1", "--follow", "--campaign", str(second), target=target)
    assert everything.sequences(2) == [1, 2]
    assert later.sequences(1) == [2]
    assert one.sequences(1) == [2]
    pause(client, first)
    pause(client, second)
    assert everything.sequences(2) == [3, 4]
    assert later.sequences(2) == [3, 4]
    assert one.sequences(1) == [4]  # the others are read, not printed
    for follower in (everything, later, one):
        assert follower.stop() == 130
        assert follower.rest() == []
        assert "Traceback" not in follower.stderr


def test_a_follower_resumes_by_itself_across_a_restart_of_the_server(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    follow: Callable[..., Follower],
    tmp_path: Path,
) -> None:
    seed_database(database_url)
    port = free_port()
    target = f"127.0.0.1:{port}"

    def server(name: str) -> ServerProcess:
        return ServerProcess(
            tmp_path / f"{name}.log",
            ISALES_DATABASE_URL=database_url,
            ISALES_GRPC_LISTEN=target,
            ISALES_SHUTDOWN_GRACE_SECONDS="5",
        )

    before = server("before")
    client = CampaignServiceStub(channel_to(port))
    first = add(client, "first")
    follower = follow("1", "--follow", target=target)
    assert follower.sequences(1) == [1]
    pause(client, first)
    assert follower.sequences(1) == [2]
    assert before.stop() == 0, before.log_text()
    # Changes made while nothing serves the follower (through another server, on another port).
    elsewhere = make_server(database_url, seed=False)
    other = CampaignServiceStub(channel_to(elsewhere.port))
    resume(other, first)
    pause(other, first)
    wait_for(lambda: "resuming" in follower.stderr, "the follower to say it resumes")
    after = server("after")
    try:
        assert follower.sequences(2) == [3, 4]  # the backlog it missed
        resume(client, first)  # through the new server, on the same address
        assert follower.sequences(1) == [5]
        assert follower.stop() == 130
        assert follower.rest() == []  # nothing twice
    finally:
        after.stop()
    resumed = [orjson.loads(line) for line in follower.stderr.splitlines()]
    assert all(line["message"] == "the change feed was interrupted; resuming" for line in resumed)
    assert {line["after_sequence"] for line in resumed} == {2}
    assert "UNAVAILABLE" in resumed[0]["reason"]


def test_a_follower_waits_for_a_service_it_cannot_reach_yet(
    sqlite_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    follow: Callable[..., Follower],
) -> None:
    port = free_port()
    follower = follow("1", "--follow", target=f"127.0.0.1:{port}")
    wait_for(lambda: "resuming" in follower.stderr, "the follower to say it tries again")
    running = make_server(sqlite_url, grpc_listen=f"127.0.0.1:{port}")
    add(CampaignServiceStub(channel_to(running.port)), "first")
    assert follower.sequences(1) == [1]
    assert follower.stop() == 130
    first = orjson.loads(follower.stderr.splitlines()[0])
    assert (first["after_sequence"], first["in_seconds"]) == (0, 0.5)
    assert "UNAVAILABLE" in first["reason"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_follower_stops_cleanly_on_a_signal(
    sqlite_service: Service, follow: Callable[..., Follower], signum: signal.Signals, code: int
) -> None:
    client, target = sqlite_service
    add(client, "only")
    follower = follow("1", "--follow", target=target)
    assert follower.sequences(1) == [1]  # it is watching: the call is live
    assert follower.stop(signum) == code
    assert follower.stderr == ""


@pytest.mark.parametrize("mode", [[], ["--follow"]])
def test_a_refusal_is_one_line_on_stderr_and_exit_code_1(
    sqlite_url: str, sqlite_service: Service, mode: list[str]
) -> None:
    client, target = sqlite_service
    for name in ("a", "b", "c"):
        add(client, name)
    engine = create_database_engine(sqlite_url, pool_size=1)
    try:  # as a pruning of the first two records would leave it
        with engine.begin() as connection:
            connection.execute(campaign_changes.delete().where(campaign_changes.c.sequence < 3))
    finally:
        engine.dispose()

    unknown = changes("77", *mode, target=target)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert (
        unknown.stderr == "isales changes: VDN 77 is not configured in this service (NOT_FOUND)\n"
    )
    pruned = changes("1", "--after", "1", *mode, target=target)
    assert (pruned.returncode, pruned.stdout) == (1, "")
    assert pruned.stderr.startswith("isales changes: the changes of VDN 1 after sequence 1 are no")
    assert "the oldest is 3" in pruned.stderr
    assert pruned.stderr.endswith(" (FAILED_PRECONDITION)\n")
    assert pruned.stderr.count("\n") == 1
    bad = changes("0", *mode, target=target)
    assert (bad.returncode, bad.stderr.count("\n")) == (1, 1)
    assert bad.stderr.endswith("(INVALID_ARGUMENT)\n")
    # From the oldest retained record on: a cursor of 0, or of one before the oldest.
    assert [c.sequence for c in parsed(changes("1", target=target).stdout)] == [3]
    assert [c.sequence for c in parsed(changes("1", "--after", "2", target=target).stdout)] == [3]


def test_an_unreachable_service_is_one_line_and_exit_code_1() -> None:
    result = changes("1", target=f"127.0.0.1:{free_port()}")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("isales changes: ")
    assert result.stderr.endswith(" (UNAVAILABLE)\n")
    assert result.stderr.count("\n") == 1


def test_usage_errors_exit_with_code_2() -> None:
    for args in (["--campaign", "0", "1"], ["one"], []):
        result = changes(*args, target="127.0.0.1:1")
        assert result.returncode == 2, args
        assert "usage: isales changes" in result.stderr


def test_a_reader_that_goes_away_ends_it_quietly(sqlite_service: Service) -> None:
    client, target = sqlite_service
    first = add(client, "first")
    for _ in range(PAGE):
        pause(client, first)
        resume(client, first)
    reader, writer = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "isales_campaign.cli", "changes", "1"],
        env=environment(target),
        stdout=writer,
        stderr=subprocess.PIPE,
    )
    os.close(writer)
    with os.fdopen(reader, "rb") as stdout:
        stdout.readline()  # then it goes away, as `head -1` does
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (141, b"")
