"""`make faults`: the longer fault scenarios, against real processes on loopback.

Each scenario drives AddCampaign from several client threads while a fault strikes, then
checks what was promised: every call answered within its deadline (no hang), only
documented codes, and no acknowledged campaign missing afterwards. Prints one table.

Scenarios: kill -9 mid-burst and SIGTERM under load (SQLite), over gRPC and through the REST
gateway of `isales serve` (whose changes commit on its event loop); with
ISALES_BENCH_DATABASE_URL (a PostgreSQL admin URL) also PostgreSQL stopped and frozen under
load, behind a proxy that stops forwarding; and many idle connections to the gateway.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
import httpx
import orjson
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench import data, payloads, procs
from isales_campaign.channel_config import CHANNEL_OPTIONS
from isales_campaign.client import LegacyClient
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import campaigns
from tests.examples import add_request, example_campaign
from tests.proxy import FreezableProxy

#: Client threads sending adds.
CLIENTS = 8
#: Deadline of every call: an answer later than this would be a hang.
DEADLINE_SECONDS = 15.0
#: Idle connections opened against the gateway.
IDLE_CONNECTIONS = 300


@dataclass
class Outcome:
    scenario: str
    codes: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    acknowledged: set[int] = field(default_factory=set)
    missing: int = 0
    note: str = ""
    #: Whether the fault stops the server (kill -9, SIGTERM).
    stops_server: bool = False


class RestAdds:
    """Adds of the documented example as VDN 1, each under a new name, through the gateway at
    `target`."""

    def __init__(self, target: str) -> None:
        ak, sk = payloads.access_key(1)
        self._client = LegacyClient(f"http://{target}", ak, sk, timeout=DEADLINE_SECONDS)
        self._example = orjson.loads(payloads.example_body())

    def add(self) -> tuple[str, int]:
        """The answer (`HTTP status result_code`) and the new campaign's id (0: none)."""
        answer = self._client.add_campaign(1, {**self._example, "name": uuid.uuid4().hex[:16]})
        code = f"HTTP {answer.status} {answer.result_code}"
        if answer.result_code != "0200000":
            return code, 0
        return code, int(answer.body["returnObject"]["id"])


class Load:
    """Adds from CLIENTS threads until stopped, over gRPC to `target` or (`rest`) through
    the gateway at `target`; every answer is recorded."""

    def __init__(self, target: str, outcome: Outcome, *, rest: bool = False) -> None:
        self._target = target
        self._outcome = outcome
        self._rest = rest
        self._stop = threading.Event()
        self._lock = threading.Lock()
        run = self._run_rest if rest else self._run
        self._threads = [threading.Thread(target=run, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE_SECONDS + 5)

    def _run(self) -> None:
        # Configured as the README recommends: a server that reports NOT_SERVING gets no
        # more calls.
        with grpc.insecure_channel(self._target, options=CHANNEL_OPTIONS) as channel:
            stub = CampaignServiceStub(channel)
            while not self._stop.is_set():
                # Names are unique and the campaign limits are out of reach.
                request = add_request(example_campaign(uuid.uuid4().hex[:16]))
                started = time.monotonic()
                try:
                    campaign_id = stub.AddCampaign(request, timeout=DEADLINE_SECONDS).id
                    code = "OK"
                except grpc.RpcError as error:
                    campaign_id = 0
                    code = error.code().name if isinstance(error, grpc.Call) else "?"
                    if code == "UNAVAILABLE" and not self._stop.is_set():
                        time.sleep(0.05)  # a client backs off a little
                self._record(code, time.monotonic() - started, campaign_id)

    def _run_rest(self) -> None:
        adds = RestAdds(self._target)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                code, campaign_id = adds.add()
            except (OSError, http.client.HTTPException):
                code, campaign_id = "no answer", 0  # the server is gone
                if not self._stop.is_set():
                    time.sleep(0.05)
            self._record(code, time.monotonic() - started, campaign_id)

    def _record(self, code: str, elapsed: float, campaign_id: int) -> None:
        with self._lock:
            self._outcome.codes[code] += 1
            self._outcome.slowest = max(self._outcome.slowest, elapsed)
            if campaign_id:
                self._outcome.acknowledged.add(campaign_id)


def count_missing(database_url: str, acknowledged: set[int]) -> int:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            stored = set(connection.execute(select(campaigns.c.id)).scalars())
    finally:
        engine.dispose()
    return len(acknowledged - stored)


LIMITS = {"ISALES_MAX_ACTIVE_TASKS": "100000000", "ISALES_MAX_CAMPAIGNS_PER_FAMILY": "100000000"}


def kill_mid_burst(work: Path, url: str, *, label: str, rest: bool = False) -> Outcome:
    """`rest`: REST adds to `isales serve` instead of gRPC adds to `isales grpc-server`."""
    outcome = Outcome(f"kill -9 mid-burst ({label})", stops_server=True)
    server = procs.serve(work, url, **LIMITS) if rest else procs.grpc_server(work, url, **LIMITS)
    with Load(server.target, outcome, rest=rest):
        time.sleep(2)
        server.process.kill()
        time.sleep(1)
    server.process.wait()
    outcome.missing = count_missing(url, outcome.acknowledged)
    return outcome


def sigterm_under_load(work: Path, url: str, *, label: str, rest: bool = False) -> Outcome:
    """`rest`: REST adds to `isales serve` instead of gRPC adds to `isales grpc-server`."""
    outcome = Outcome(f"SIGTERM under load ({label})", stops_server=True)
    start = procs.serve if rest else procs.grpc_server
    server = start(work, url, ISALES_SHUTDOWN_GRACE_SECONDS="10", **LIMITS)
    with Load(server.target, outcome, rest=rest):
        time.sleep(2)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(30)
        outcome.note = f"exit {code} after {time.monotonic() - signalled:.2f} s"
        time.sleep(0.5)
    outcome.missing = count_missing(url, outcome.acknowledged)
    return outcome


def database_fault(work: Path, url: str, *, fault: str) -> Outcome:
    """PostgreSQL behind a proxy: `stop` (connections closed, refused) or `freeze`."""
    outcome = Outcome(f"PostgreSQL {'stopped' if fault == 'stop' else 'frozen'} under load")
    parsed = make_url(url)
    proxy = FreezableProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    proxied = parsed.set(port=proxy.port).render_as_string(hide_password=False)
    server = procs.grpc_server(work, proxied, ISALES_DATABASE_TIMEOUT_SECONDS="2", **LIMITS)
    try:
        with Load(server.target, outcome):
            time.sleep(2)
            proxy.stop() if fault == "stop" else proxy.freeze()
            time.sleep(5)
            proxy.thaw()
            time.sleep(4)
            recovered = outcome.codes["OK"]
            time.sleep(1)
            outcome.note = "recovered" if outcome.codes["OK"] > recovered else "NOT recovered"
    finally:
        server.stop()
        proxy.close()
    outcome.missing = count_missing(url, outcome.acknowledged)
    return outcome


def idle_connections(work: Path, url: str) -> Outcome:
    outcome = Outcome(f"{IDLE_CONNECTIONS} idle connections to the gateway")
    server = procs.grpc_server(work, url, **LIMITS)
    gateway = procs.gateway(work, server.target, ISALES_HTTP_READ_TIMEOUT_SECONDS="2")
    host, port = "127.0.0.1", gateway.port
    idle = [socket.create_connection((host, port), timeout=10) for _ in range(IDLE_CONNECTIONS)]
    try:
        adds = RestAdds(f"{host}:{port}")
        for _ in range(20):
            started = time.monotonic()
            code, campaign_id = adds.add()
            outcome.slowest = max(outcome.slowest, time.monotonic() - started)
            outcome.codes[code] += 1
            if campaign_id:
                outcome.acknowledged.add(campaign_id)
        time.sleep(3)
        closed = sum(1 for connection in idle if _closed(connection))
        outcome.note = f"{closed} of {IDLE_CONNECTIONS} idle connections closed by the gateway"
        httpx.get(f"http://{host}:{port}/healthz", timeout=5)
    finally:
        for connection in idle:
            connection.close()
        gateway.stop()
        server.stop()
    outcome.missing = count_missing(url, outcome.acknowledged)
    return outcome


def _closed(connection: socket.socket) -> bool:
    connection.settimeout(0.01)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def render(outcomes: list[Outcome]) -> str:
    lines = [
        f"{'scenario':42} {'calls':>6} {'slowest s':>9} {'missing':>7}  codes; note",
        "-" * 110,
    ]
    for outcome in outcomes:
        codes = ", ".join(f"{code} {count}" for code, count in outcome.codes.most_common())
        note = f"; {outcome.note}" if outcome.note else ""
        lines.append(
            f"{outcome.scenario:42} {sum(outcome.codes.values()):>6} {outcome.slowest:>9.2f} "
            f"{outcome.missing:>7}  {codes}{note}"
        )
    return "\n".join(lines)


#: Answers a fault may bring: success, refusal by a stopped server or one shut off from its
#: database, and the gateway's success.
ALLOWED = {"OK", "UNAVAILABLE", "HTTP 200 0200000"}
#: And where the fault stops the server under REST load: the gateway's refusal while it
#: stops, and no answer once it is gone.
WHILE_STOPPING = {"HTTP 503 0200006", "no answer"}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ISALES_BENCH_DATABASE_URL") or None,
        help="PostgreSQL admin URL (default $ISALES_BENCH_DATABASE_URL); unset: SQLite only",
    )
    args = parser.parse_args()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="isales-faults-") as directory:
        work = Path(directory)
        scenarios: list[tuple[str, Callable[[str], Outcome]]] = [
            ("sqlite", partial(kill_mid_burst, work, label="SQLite")),
            ("sqlite", partial(sigterm_under_load, work, label="SQLite")),
            ("sqlite", partial(kill_mid_burst, work, label="SQLite, REST, serve", rest=True)),
            ("sqlite", partial(sigterm_under_load, work, label="SQLite, REST, serve", rest=True)),
            ("sqlite", partial(idle_connections, work)),
        ]
        if args.database_url:
            scenarios += [
                ("postgresql", partial(kill_mid_burst, work, label="PostgreSQL")),
                ("postgresql", partial(database_fault, work, fault="stop")),
                ("postgresql", partial(database_fault, work, fault="freeze")),
            ]
        for kind, scenario in scenarios:
            with data.database(kind, work, args.database_url) as url:
                data.prepare(url)
                outcome = scenario(url)
            print(f"[faults] {outcome.scenario}: done", file=sys.stderr)
            outcomes.append(outcome)
    print(render(outcomes))
    failed = [
        outcome
        for outcome in outcomes
        if outcome.missing
        or outcome.slowest >= DEADLINE_SECONDS
        or set(outcome.codes) - ALLOWED - (WHILE_STOPPING if outcome.stops_server else set())
        or "NOT" in outcome.note
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
