"""`make bench`, shortened: every scenario runs against real servers, only with successful
calls, and the report judges every target from them. `make faults`, whole: every promise
kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.__main__ import TENANT_SIZES
from bench.report import REFERENCES, one_tenant

# Whole runs: longer than the suite's per-test bound.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 3)
BASE_ROWS, SCALE_ROWS = 1_000, 2_000


def environment() -> dict[str, str]:
    """This one, but the database to use is given on the command line."""
    return {k: v for k, v in os.environ.items() if k != "ISALES_BENCH_DATABASE_URL"}


def run_command(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A bench command from the repository's root, its output captured."""
    return subprocess.run(
        command,
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_bench(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """`python -m bench` with short windows and small preloads: (results.json, the report)."""
    output = tmp_path / "results.json"
    command = [
        sys.executable, "-m", "bench",
        "--warmup", "0.2", "--duration", "0.6",
        "--concurrency", ",".join(map(str, CONCURRENCY)),
        "--base-rows", str(BASE_ROWS), "--scale-rows", str(SCALE_ROWS),
        "--output", str(output),
        *extra,
    ]  # fmt: skip
    completed = run_command(command, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results: dict[str, Any] = orjson.loads(output.read_bytes())
    return results, completed.stdout


def service_scenarios(database: str) -> set[str]:
    """What the bench measures of the service on `database`."""
    stored = [
        f"gRPC {op} {database}, {rows:,} stored"
        for op in ("add", "get", "list", "mixed")
        for rows in (BASE_ROWS, SCALE_ROWS)
    ]
    return {
        f"gRPC add {database}",
        f"REST add {database}",
        f"REST add {database}, one process",
        *stored,
        *(one_tenant(database, size) for size in TENANT_SIZES),
    }


def assert_all_answered(results: dict[str, Any], names: set[str]) -> None:
    """Each of `names` ran at every concurrency, with calls measured and no error."""
    runs = {(s["name"], s["concurrency"]): s for s in results["scenarios"]}
    assert {(name, c) for name in names for c in CONCURRENCY} <= set(runs)
    for s in results["scenarios"]:
        assert s["errors"] == 0, (s["name"], s["error_samples"])
        assert s["requests"] > 0, s["name"]
        assert s["cpu_s_per_1k"] > 0, s["name"]
        assert 0 < s["p50_ms"] <= s["p99_ms"], s["name"]
        if s.get("op") == "mixed":
            assert set(s["by_call"]) == {"add", "get"}, s["name"]
            assert all(call["requests"] for call in s["by_call"].values()), s["name"]
        if s.get("preload") == SCALE_ROWS:
            assert s["base"]["rows"] == BASE_ROWS


def test_every_scenario_answers_and_every_target_is_judged(
    tmp_path: Path, postgres_admin_url_if_any: str
) -> None:
    """On SQLite, and on PostgreSQL where there is one (CI has it)."""
    postgresql = bool(postgres_admin_url_if_any)
    extra = ("--database-url", postgres_admin_url_if_any) if postgresql else ()
    results, report = run_bench(tmp_path, *extra)

    names = {"noop gRPC", "noop Starlette", *REFERENCES, *service_scenarios("sqlite")}
    adds = "gRPC add postgresql"
    if postgresql:
        names |= {*service_scenarios("postgresql"), f"{adds}, 1 process", f"{adds}, 2 processes"}
    assert_all_answered(results, names)
    assert results["settings"]["postgresql"] == postgresql
    assert results["generator_checks"]
    assert {"translate JSON -> Campaign", "validate (contract + domain rules)"} <= set(
        results["micro"]
    )
    judged = [
        "gRPC add sqlite c=3: ",
        "x a no-op gRPC call's",
        "REST add sqlite, one process c=1: ",
        "x the lean FastAPI reference's (target <= 1.5)",
        "FastAPI reference (target <= 1)",
        "FastAPI reference with the same writes (target <= 1)",
        f"gRPC get sqlite, {SCALE_ROWS:,} stored c=3: ",
        f"{one_tenant('sqlite', TENANT_SIZES[-1])} c=3: ",
        f"against {TENANT_SIZES[0]:,} held (target within 10%)",
        "errors in all scenarios: 0",
        "change feed sqlite: 200 idle watchers cost",
        "change feed sqlite, through the other server: every change to every watcher in order",
    ]
    if postgresql:
        judged.append(f"{adds}, 2 processes c=3: ")
        judged.append("change feed postgresql, through the same server: every change")
    assert [run["database"] for run in results["watch"]] == (
        ["sqlite", "postgresql"] if postgresql else ["sqlite"]
    )
    targets = report.partition("targets:")[2]
    assert [line for line in judged if line not in targets] == []


def test_every_fault_scenario_keeps_its_promises(postgres_admin_url_if_any: str) -> None:
    """kill -9 and SIGTERM (of the gRPC server, and of `isales serve` under REST adds), idle
    connections; PostgreSQL killed under, stopped and frozen where there is one: answers in
    time, documented codes, nothing acknowledged lost."""
    command = [sys.executable, "-m", "bench.faults"]
    if postgres_admin_url_if_any:
        command += ["--database-url", postgres_admin_url_if_any]
    completed = run_command(command, timeout=600)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = completed.stdout.partition("-" * 110)[2].strip().splitlines()
    scenarios = [
        "kill -9 mid-burst (SQLite)",
        "SIGTERM under load (SQLite)",
        "kill -9 mid-burst (SQLite, REST, serve)",
        "SIGTERM under load (SQLite, REST, serve)",
        "300 idle",
    ]
    if postgres_admin_url_if_any:
        scenarios += ["kill -9 mid-burst (PostgreSQL)", "PostgreSQL stopped", "PostgreSQL frozen"]
    assert [row[: len(name)] for row, name in zip(rows, scenarios, strict=True)] == scenarios


def test_compare_measures_two_versions_of_the_code_in_turns() -> None:
    """`python -m bench.compare REV`: each tree runs every round, and the table tells the
    change of the working tree's CPU per call against REV's."""
    command = [
        sys.executable, "-m", "bench.compare", "HEAD",
        "--rounds", "2", "--concurrency", "1", "--scenarios", "grpc-change",
        "--warmup", "0.2", "--duration", "0.6",
    ]  # fmt: skip
    completed = run_command(command, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in completed.stdout.splitlines()
        if "grpc-change" in line
    ]
    assert [row[2] for row in rows] == ["HEAD", "working tree", "change"]
    for row in rows[:2]:
        rounds = [float(cpu) for cpu in row[3].split(", ")]
        assert len(rounds) == 2
        assert all(cpu > 0 for cpu in rounds)
    assert rows[2][4].endswith("%")
