"""`isales grpc-server --workers N`: several processes serve one port, and stop together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.scrape import started_adds
from tests.waiting import wait_for

WORKERS = 2
#: Adds, each on a new connection: the kernel spreads connections over the workers.
ADDS = 40


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first: int = probe.getsockname()[1]
        try:
            for port in range(first, first + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


class Workers:
    def __init__(self, tmp_path: Path, sqlite_url: str) -> None:
        seed_database(sqlite_url)
        self.port = free_ports(1)
        self.metrics_port = free_ports(WORKERS)
        self.log_path = tmp_path / "workers.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "isales_campaign.cli",
                    "grpc-server",
                    "--workers",
                    str(WORKERS),
                ],
                env={
                    **os.environ,
                    "ISALES_DATABASE_URL": sqlite_url,
                    "ISALES_GRPC_LISTEN": f"127.0.0.1:{self.port}",
                    "ISALES_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
                    "ISALES_MAX_ACTIVE_TASKS": str(ADDS),
                    "ISALES_MAX_CAMPAIGNS_PER_FAMILY": str(ADDS),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: len(self.entries("gRPC server listening")) == WORKERS, "the workers")

    def entries(self, message: str) -> list[dict[str, object]]:
        found = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if entry.get("message") == message:
                found.append(entry)
        return found

    def worker_pids(self) -> list[int]:
        pids = self.entries("gRPC workers started")[0]["pids"]
        assert isinstance(pids, list)
        return [int(pid) for pid in pids]

    def adds_served(self, index: int) -> float:
        return started_adds(f"http://127.0.0.1:{self.metrics_port + index}/metrics")


@pytest.fixture
def workers(tmp_path: Path, sqlite_url: str) -> Iterator[Workers]:
    started = Workers(tmp_path, sqlite_url)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def test_workers_share_the_port_and_stop_together(workers: Workers) -> None:
    for index in range(ADDS):
        with grpc.insecure_channel(f"127.0.0.1:{workers.port}") as channel:
            CampaignServiceStub(channel).AddCampaign(
                add_request(example_campaign(f"worker add {index}")), timeout=10
            )
    served = [workers.adds_served(index) for index in range(WORKERS)]
    assert sum(served) == ADDS
    assert all(count > 0 for count in served), served  # all but surely, with 40 connections
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(30) == 0
    # Each worker's lines say which worker wrote them; the parent's carry no index.
    stopped = workers.entries("gRPC server stopped")
    assert sorted(entry["worker"] for entry in stopped) == list(range(WORKERS))  # type: ignore[type-var]
    assert "worker" not in workers.entries("gRPC workers stopped")[0]


def test_a_worker_that_dies_stops_the_whole(workers: Workers) -> None:
    first, second = workers.worker_pids()
    os.kill(first, signal.SIGKILL)
    assert workers.process.wait(30) == 1  # an orchestrator restarts it
    assert len(workers.entries("gRPC server stopped")) == 1  # the other one drained
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers: it is gone once it no longer runs.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def test_workers_stop_when_their_parent_is_killed_outright(workers: Workers) -> None:
    pids = workers.worker_pids()
    workers.process.kill()
    workers.process.wait()
    wait_for(lambda: all(_gone(pid) for pid in pids), "the orphaned workers to stop")
    assert len(workers.entries("gRPC server stopped")) == WORKERS  # drained, not killed


def test_workers_need_a_fixed_port(sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "isales_campaign.cli", "grpc-server", "--workers", str(WORKERS)],
        env={**os.environ, "ISALES_DATABASE_URL": sqlite_url, "ISALES_GRPC_LISTEN": "127.0.0.1:0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "isales: --workers needs a fixed port in ISALES_GRPC_LISTEN",
    )
