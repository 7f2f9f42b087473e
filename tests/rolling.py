"""A replica and a gateway as real processes, and REST load through them that records every
answer the clients saw: what the rolling-restart tests drive and count."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from isales_campaign.client import LegacyClient, LegacyResponse
from tests.gateway.conftest import example_body
from tests.processes import free_port
from tests.waiting import wait_for

TOKEN = "rolling-restart-token"
#: VDN 1's keys in `tests.conftest.DEFAULT_SEED`.
ACCESS_KEY, SECRET_KEY = "ak-vdn-1", "sk-vdn-1"
#: The campaign limits out of reach of the load's adds.
LIMITS = {"ISALES_MAX_ACTIVE_TASKS": "100000000", "ISALES_MAX_CAMPAIGNS_PER_FAMILY": "100000000"}
#: The envelope of a success.
SUCCESS = "0200000"


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    while True:
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


def log_entries(path: Path, message: str) -> list[dict[str, Any]]:
    found = []
    for line in path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("message") == message:
            found.append(entry)
    return found


class Replica:
    """`isales grpc-server --workers N` on a fixed port, as a supervisor runs it: started
    again on the same port after it stopped. Worker i serves metrics on `metrics_port` + i."""

    def __init__(self, directory: Path, database_url: str, workers: int, **env: str) -> None:
        self.directory = directory
        self.workers = workers
        self.port = free_port()
        self.metrics_port = free_ports(workers)
        self.env = {
            **os.environ,
            "ISALES_DATABASE_URL": database_url,
            "ISALES_GRPC_LISTEN": f"127.0.0.1:{self.port}",
            "ISALES_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            "ISALES_INTERNAL_TOKEN": TOKEN,
            **LIMITS,
            **env,
        }
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "replica-0.log"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path = self.directory / f"replica-{self.starts}.log"
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "isales_campaign.cli",
                    "grpc-server",
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: len(log_entries(self.log_path, "gRPC server listening")) == self.workers,
            "the replica's workers",
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a supervisor sends it; the exit code once it drained."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def calls_per_worker(self, service: str = "isales.campaign.v2.CampaignService") -> list[float]:
        """Calls of `service` each worker has started, from its metrics."""
        counts = []
        for index in range(self.workers):
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port + index}/metrics", timeout=5)
            total = 0.0
            for family in text_string_to_metric_families(text.text):
                for sample in family.samples:
                    if (
                        sample.name == "grpc_server_started_total"
                        and sample.labels.get("grpc_service") == service
                    ):
                        total += sample.value
            counts.append(total)
        return counts


class Gateway:
    """`isales gateway` in front of `target`."""

    def __init__(self, directory: Path, target: str, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "gateway.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "isales_campaign.cli", "gateway"],
                env={
                    **os.environ,
                    "ISALES_HTTP_LISTEN": f"127.0.0.1:{self.port}",
                    "ISALES_GRPC_TARGET": target,
                    "ISALES_INTERNAL_TOKEN": TOKEN,
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, "the gateway")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.log_path.read_text()
        try:
            return httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> httpx.Response:
        return httpx.get(self.base_url + "/readyz", timeout=10)

    def client(self) -> LegacyClient:
        return LegacyClient(self.base_url, ACCESS_KEY, SECRET_KEY, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


#: The vendor's statuses of a campaign.
EXECUTING, SUSPENDED = 2, 3


class Load:
    """REST calls from `clients` threads until stopped, each thread cycling through an add, a
    query, a suspend or a resume of its first campaign, and a list: reads, the idempotent add
    and changes that are not idempotent. Every answer is counted by operation, HTTP status and
    legacy code."""

    def __init__(self, gateway: Gateway, clients: int, rate: float) -> None:
        """`rate`: calls a second, all clients together (a client that waited for an answer
        catches up, as the callers of a service would keep calling)."""
        self._gateway = gateway
        self._interval = clients / rate
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.slowest = 0.0
        #: time.monotonic() of every success, to find the longest time without one.
        self.successes: list[float] = []
        self._turns = threading.local()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def failures(self) -> Counter[tuple[str, int, str]]:
        return Counter(
            {key: count for key, count in self.answers.items() if key[1:] != (200, SUCCESS)}
        )

    def total(self) -> int:
        return sum(self.answers.values())

    def longest_gap(self) -> float:
        times = sorted(self.successes)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def _record(self, operation: str, call: Callable[[], LegacyResponse]) -> LegacyResponse | None:
        self._pace()
        started = time.monotonic()
        try:
            answer: LegacyResponse | None = call()
        except OSError:  # the gateway itself unreachable: never expected here
            answer = None
        ended = time.monotonic()
        key = (
            (operation, answer.status, answer.result_code)
            if answer is not None
            else (operation, 0, "connection failed")
        )
        with self._lock:
            self.answers[key] += 1
            self.slowest = max(self.slowest, ended - started)
            if key[1:] == (200, SUCCESS):
                self.successes.append(ended)
        return answer if key[1:] == (200, SUCCESS) else None

    def _pace(self) -> None:
        """Wait for this thread's next turn (threads keep their own schedules)."""
        now = time.monotonic()
        turn = getattr(self._turns, "next", now)
        if turn > now:
            time.sleep(turn - now)
        # A client far behind its schedule (it waited seconds) does not send a burst.
        self._turns.next = max(turn, time.monotonic() - 1.0) + self._interval

    def _run(self) -> None:
        client = self._gateway.client()
        campaign_id, status = 0, EXECUTING  # the campaign this client suspends and resumes
        while not self._stop.is_set():
            added = self._record("add", lambda: client.add_campaign(1, example_body()))
            if added is not None and not campaign_id:
                campaign_id = added.body["returnObject"]["id"]
            if campaign_id:
                status = self._round(client, campaign_id, status)

    def _round(self, client: LegacyClient, campaign_id: int, status: int) -> int:
        """A query, a suspend or a resume, a list; the campaign's status after them."""
        self._record("query", lambda: client.get_campaign(1, campaign_id))
        if status == EXECUTING:
            changed = self._record("suspend", lambda: client.pause_campaign(1, campaign_id))
            status = SUSPENDED if changed is not None else self._status(client, campaign_id)
        else:
            changed = self._record("resume", lambda: client.resume_campaign(1, campaign_id))
            status = EXECUTING if changed is not None else self._status(client, campaign_id)
        self._record("list", lambda: client.list_campaigns(1, rowsPerPage=1))
        return status

    def _status(self, client: LegacyClient, campaign_id: int) -> int:
        """The campaign's status after a change failed (it may have been made)."""
        found = self._record("query", lambda: client.get_campaign(1, campaign_id))
        return int(found.body["returnObject"]["status"]) if found is not None else 0

    def report(self) -> str:
        lines = [
            f"{self.total()} answers, slowest {self.slowest:.2f} s, longest time without a "
            f"success {self.longest_gap():.2f} s"
        ]
        for (operation, status, code), count in sorted(self.answers.items()):
            lines.append(f"  {operation:8} HTTP {status} {code}: {count}")
        return "\n".join(lines)
