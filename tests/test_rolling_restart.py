"""A replica restarted under load, as an operator rolls a deployment: `isales grpc-server
--workers 2` and `isales gateway` run as real processes, clients send REST calls through the
gateway (adds, queries, suspends and resumes, lists), and the replica is stopped (SIGTERM: it
drains) and started again on its port, as a supervisor restarts it. The clients must see no
failure that a retry could have saved: the gateway holds a call while no replica is ready,
and sends again a call the service refused before doing anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database, seed_database
from tests.rolling import Gateway, Load, Replica

#: Client threads, and the calls a second they send together (the development VM's 2 cores
#: serve about twice as many through the gateway).
CLIENTS = 8
RATE = 150.0
#: Load before the restart and after the replica is back.
STEADY_SECONDS = 2.0


@pytest.fixture
def any_database(postgres_admin_url_if_any: str, tmp_path: Path) -> Iterator[str]:
    """PostgreSQL where there is one (a deployment of replicas), SQLite otherwise."""
    if postgres_admin_url_if_any:
        yield from fresh_postgres_database(postgres_admin_url_if_any)
    else:
        yield f"sqlite:///{tmp_path / 'isales.db'}"


@pytest.mark.slow
def test_a_replica_restarted_under_load_loses_no_call(any_database: str, tmp_path: Path) -> None:
    seed_database(any_database)
    replica = Replica(tmp_path, any_database, workers=2)
    replica.start()
    gateway = Gateway(tmp_path, replica.target)
    try:
        with Load(gateway, CLIENTS, RATE) as load:
            time.sleep(STEADY_SECONDS)
            stopped_at = time.monotonic()
            assert replica.stop() == 0
            replica.start()
            back_after = time.monotonic() - stopped_at
            time.sleep(STEADY_SECONDS)
        print(f"replica stopped and listening again after {back_after:.2f} s")
        print(load.report())
        assert load.total() > 100
        assert not load.failures(), load.report()
        # Nothing waited longer than the gap plus a call: no call ran into its deadline.
        assert load.slowest < back_after + 5, load.report()
    finally:
        gateway.stop()
        replica.kill()


#: Calls sent through one gateway to count where they are served.
SPREAD_CALLS = 64


def test_one_gateway_spreads_its_calls_over_the_workers(sqlite_url: str, tmp_path: Path) -> None:
    """The kernel gives each connection to one worker: a gateway with a single connection
    sent every call to the same worker. Its connections (16 by default) take calls in turn."""
    seed_database(sqlite_url)
    replica = Replica(tmp_path, sqlite_url, workers=2)
    replica.start()
    gateway = Gateway(tmp_path, replica.target)
    try:
        client = gateway.client()
        for _ in range(SPREAD_CALLS):
            assert client.list_campaigns(1, rowsPerPage=1).result_code == "0200000"
        served = replica.calls_per_worker()
    finally:
        gateway.stop()
        replica.stop()
    assert sum(served) == SPREAD_CALLS
    # The kernel hands each of the 16 connections to a worker at random: all to one worker
    # happens once in 2**15 runs, while a single connection sent every call to one.
    assert min(served) > 0, served
