"""The metrics port, what each command's process exports, and the gauges of a server's state
read when scraped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from isales_campaign import metrics, release
from isales_campaign.metrics import (
    GATEWAY_METRICS,
    SERVICE_METRICS,
    ServerGauges,
    ServerState,
    serve_metrics,
)
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.drain import Drain
from isales_campaign.service.server import DatabaseProbe
from tests.processes import free_port
from tests.scrape import family_names, sample, wait_for_metrics
from tests.waiting import wait_for

#: The gauges a server's state is read into when scraped.
SERVER_GAUGE_NAMES = (
    "isales_database_up",
    "isales_draining",
    "isales_database_pool_size",
    "isales_database_pool_checked_out",
    "isales_database_pool_idle",
    "isales_database_pool_overflow",
)
SERVICE_FAMILIES = {
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "isales_grpc_server_refused_total",
    "isales_change_watchers",
    *SERVER_GAUGE_NAMES,
}
GATEWAY_FAMILIES = {"isales_gateway_requests_total", "isales_gateway_request_seconds"}


@pytest.fixture
def metrics_port() -> Iterator[tuple[str, CollectorRegistry]]:
    """serve_metrics in this process, with a registry of its own."""
    owned = CollectorRegistry()
    Counter("isales_test_total", "A test's counter.", registry=owned).inc()
    port = free_port()
    server = serve_metrics(f"127.0.0.1:{port}", owned)
    assert server is not None
    yield f"http://127.0.0.1:{port}", owned
    server.shutdown()
    server.server_close()


def test_the_metrics_port_answers_metrics_only(
    metrics_port: tuple[str, CollectorRegistry],
) -> None:
    base, _owned = metrics_port
    served = httpx.get(base + "/metrics", timeout=5)
    assert served.status_code == 200
    assert "isales_test_total 1.0" in served.text
    assert f'isales_build_info{{version="{release()}"}} 1.0' in served.text
    assert "process_cpu_seconds_total" in served.text or sys.platform != "linux"
    for path in ("/", "/metrics/", "/metric", "/favicon.ico", "/healthz", "/anything/metrics"):
        answer = httpx.get(base + path, timeout=5)
        assert (answer.status_code, answer.text) == (
            404,
            "not found: the metrics are at /metrics\n",
        ), path


def test_no_listen_address_serves_nothing() -> None:
    assert serve_metrics("") is None


def _started(command: str, tmp_path: Path, metrics: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ISALES_DATABASE_URL": f"sqlite:///{tmp_path / 'isales.db'}",
        "ISALES_GRPC_LISTEN": "127.0.0.1:0",
        "ISALES_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "ISALES_GRPC_TARGET": f"127.0.0.1:{free_port()}",  # the gateway alone: nobody there
        "ISALES_METRICS_LISTEN": metrics,
    }
    with (tmp_path / f"{command}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "isales_campaign.cli", command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize(
    ("command", "exported"),
    [
        ("grpc-server", SERVICE_FAMILIES),
        ("gateway", GATEWAY_FAMILIES),
        ("serve", SERVICE_FAMILIES | GATEWAY_FAMILIES),
    ],
)
def test_each_process_exports_the_metrics_of_the_sides_it_runs(
    tmp_path: Path, command: str, exported: set[str]
) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    process = _started(command, tmp_path, metrics)
    try:
        url = f"http://{metrics}/metrics"
        wait_for_metrics(url)
        names = family_names(url)
        # The gRPC server starts after the metrics port: its gauges come with it.
        if "isales_database_up" in exported:
            wait_for(lambda: sample(url, "isales_database_up") == 1, "the server's gauges")
            names = family_names(url)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (tmp_path / f"{command}.log").read_text()
    ours = {name for name in names if name.startswith(("isales_", "grpc_"))}
    assert ours == exported | {"isales_build_info"}
    assert {"process_cpu_seconds_total", "python_info"} <= names


def test_gauges_read_a_servers_state_when_scraped(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'isales.db'}", pool_size=2, timeout=5)
    unreachable = create_database_engine(
        f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", pool_size=1, timeout=2
    )
    drain = Drain()
    probe = DatabaseProbe(engine, 5)
    gauges = ServerGauges()
    registry = CollectorRegistry()
    registry.register(gauges)

    def read() -> dict[str, float | None]:
        return {name: registry.get_sample_value(name) for name in SERVER_GAUGE_NAMES}

    try:
        assert set(read().values()) == {None}  # no server: no samples
        server = ServerState(
            database_up=lambda: probe.healthy,
            draining=lambda: drain.draining,
            pool=lambda: engine.pool,
        )
        gauges.watch(server)
        assert probe.ok()
        assert read() == {
            "isales_database_up": 1,
            "isales_draining": 0,
            "isales_database_pool_size": 2,
            "isales_database_pool_checked_out": 0,
            "isales_database_pool_idle": 1,  # the probe's, returned
            "isales_database_pool_overflow": 0,
        }
        held = [engine.connect() for _ in range(3)]  # one beyond the pool's size
        assert read()["isales_database_pool_checked_out"] == 3
        assert read()["isales_database_pool_overflow"] == 1
        for connection in held:
            connection.close()
        # The overflow connection is closed when returned; the others wait in the pool.
        assert (read()["isales_database_pool_idle"], read()["isales_database_pool_overflow"]) == (
            2,
            0,
        )
        drain.start()
        assert read()["isales_draining"] == 1
        # A database that does not answer.
        down = DatabaseProbe(unreachable, 2)
        assert not down.ok()
        gauges.forget(server)
        gauges.watch(ServerState(lambda: down.healthy, lambda: False, lambda: None))
        assert read() == {
            "isales_database_up": 0,
            "isales_draining": 0,
            "isales_database_pool_size": None,  # a pool that does not count: no sample
            "isales_database_pool_checked_out": None,
            "isales_database_pool_idle": None,
            "isales_database_pool_overflow": None,
        }
    finally:
        engine.dispose()
        unreachable.dispose()


def test_the_readme_lists_every_metric_with_its_type_and_labels() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n### Metrics\n", 1)[1].split("\n### ", 1)[0]
    documented = {
        name: (kind, set(re.findall(r"`(\w+)`", labels)))
        for name, kind, labels in re.findall(
            r"^\| `(\w+)` \| (\w+) \|([^|]*)\|", section, re.MULTILINE
        )
    }
    # Each family the registries describe (with samples or not), as the exposition types it.
    exposition = b"".join(generate_latest(r) for r in (SERVICE_METRICS, GATEWAY_METRICS))
    typed = dict(re.findall(rb"^# TYPE (\w+) (\w+)$", exposition, re.MULTILINE))
    exported = {
        name.decode(): (kind.decode(), set[str]())
        for name, kind in typed.items()
        if not name.endswith(b"_created")
    }
    for wrapper in vars(metrics).values():
        if isinstance(wrapper, MetricWrapperBase) and wrapper._labelnames:
            suffix = "_total" if wrapper._type == "counter" else ""
            exported[wrapper._name + suffix][1].update(wrapper._labelnames)
    exported["isales_build_info"] = ("gauge", {"version"})
    assert documented == exported
