"""`python -m bench` (`make bench`): real servers on loopback, driven by a separate load process.

Scenarios, each at every concurrency with a fixed warm-up and measured window:
no-op gRPC and Starlette baselines; gRPC AddCampaign, gRPC changes (each caller suspends,
resumes and modifies a campaign of its own in turn), REST (gateway + service) and REST in one
process (`isales serve`, the gateway calling the service directly) on SQLite, and the FastAPI +
pydantic reference of `bench.reference` doing the same job on SQLite, and on PostgreSQL when
ISALES_BENCH_DATABASE_URL (an admin URL: a fresh database is created and dropped) is set; then
gRPC adds, gets, list pages, and adds and gets together (every caller in turn), with 100,000
campaigns stored and with --scale-rows; gRPC adds to one tenant holding 10 and 10,000
running campaigns; the change feed (`bench.watch`: idle watchers' CPU,
delivery delays). Then the in-process micro-costs.
Prints one table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from bench import data, micro, payloads, procs, report, watch

RESULTS = Path(__file__).resolve().parent / "results.json"
#: Campaign limits (active, and in all) that no bench request reaches: every request adds an
#: active campaign, and quotas must never trip.
MAX_CAMPAIGNS = "100000000"
#: The database the scale run is compared with: the smallest where every tenant of the
#: preload has a full list page.
BASE_ROWS = payloads.LIST_PAGE * payloads.SCALE_TENANTS
#: Server processes of the scale-out scenario (PostgreSQL), and the connections it is driven
#: over.
WORKERS = 2
CONNECTIONS = 8
#: The live campaigns of the tenant that the one-tenant adds go to: an add must cost the same
#: at either size (`report.TENANT_SIZE_TOLERANCE`).
TENANT_SIZES = (10, 10_000)
#: A 1-minute load average above this before the run means the machine is not idle.
BUSY_LOAD = 0.5


class Bench:
    def __init__(self, args: argparse.Namespace, work_dir: Path) -> None:
        self.args = args
        self.work_dir = work_dir
        self.scenarios: list[dict[str, Any]] = []
        self.generator_checks: list[dict[str, Any]] = []
        self.watch: list[dict[str, Any]] = []
        #: A command the load generator runs under (`taskset -c 1`).
        self.load_prefix: list[str] = []

    def drive(
        self,
        name: str,
        kind: str,
        target: str,
        servers: list[procs.Server],
        channels: int = 1,
        rows: int = 0,
        **extra: Any,
    ) -> None:
        """Run the load process at every concurrency against `target`."""
        for concurrency in self.args.concurrency:
            _progress(f"{name} c={concurrency}")
            result = self.run_load(kind, target, concurrency, servers, channels=channels, rows=rows)
            result.update(name=name, kind=kind, concurrency=concurrency, **extra)
            self.scenarios.append(result)

    def run_load(
        self,
        kind: str,
        target: str,
        concurrency: int,
        servers: list[procs.Server],
        processes: int = 1,
        channels: int = 1,
        rows: int = 0,
    ) -> dict[str, Any]:
        """One closed-loop run; with several load processes they share the concurrency."""
        command = [*self.load_prefix, sys.executable, "-m", "bench.load", kind, target]
        command += ["--channels", str(channels)]
        command += ["--rows", str(rows)]
        command += ["--concurrency", str(concurrency // processes)]
        command += ["--warmup", str(self.args.warmup), "--duration", str(self.args.duration)]
        loads = [
            subprocess.Popen(command, cwd=procs.ROOT, stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        outputs: list[dict[str, Any]] = []
        marks: dict[str, list[float]] = {}
        try:
            for index, load in enumerate(loads):
                assert load.stdout is not None
                for line in load.stdout:
                    if line.strip() in ("measure", "end") and index == 0:
                        marks[line.strip()] = [s.cpu_seconds() for s in servers]
                    elif line.startswith("{"):
                        outputs.append(orjson.loads(line))
                if load.wait() != 0 or len(outputs) != index + 1:
                    raise RuntimeError(f"the load generator failed (exit {load.returncode})")
        finally:
            for load in loads:
                if load.poll() is None:
                    load.kill()
                    load.wait()
        result = outputs[0]
        for other in outputs[1:]:  # only the sums are exact; latencies are the worst of each
            for key in ("requests", "total_requests", "rps", "errors", "load_cpu_cores"):
                result[key] += other[key]
            for key in ("p50_ms", "p90_ms", "p99_ms"):
                result[key] = max(result[key], other[key])
        cpu = sum(b - a for a, b in zip(marks["measure"], marks["end"], strict=True))
        result["cpu_s_per_1k"] = cpu / result["requests"] * 1000 if result["requests"] else 0.0
        result["server_cpu_cores"] = cpu / self.args.duration
        result["peak_rss_mb"] = {s.label: s.peak_rss_mb() for s in servers}
        return result

    def baselines(self) -> None:
        for kind, name in (("grpc", "noop gRPC"), ("http", "noop Starlette")):
            server = procs.baseline(kind, self.work_dir)
            try:
                self.drive(name, kind, server.target, [server])
                # Is one load process the limit? The same load from two must not do much better.
                most = max(self.args.concurrency)
                if self.args.generator_check and most >= 2:
                    _progress(f"{name} c={most} from 2 load processes")
                    two = self.run_load(kind, server.target, most, [server], processes=2)
                    one = next(
                        s for s in self.scenarios if s["name"] == name and s["concurrency"] == most
                    )
                    self.generator_checks.append(
                        {
                            "name": name,
                            "concurrency": most,
                            "one_process_rps": one["rps"],
                            "two_processes_rps": two["rps"],
                            "one_process_load_cores": one["load_cpu_cores"],
                            "two_processes_load_cores": two["load_cpu_cores"],
                            "server_cpu_cores": [one["server_cpu_cores"], two["server_cpu_cores"]],
                        }
                    )
            finally:
                server.stop()

    def service(self, database: str) -> None:
        """gRPC add, REST add through the gateway and in one process, the reference (SQLite),
        each on an empty database; more processes (PostgreSQL); then add, get and list at
        --base-rows and at --scale-rows campaigns."""
        env = {
            "ISALES_MAX_ACTIVE_TASKS": MAX_CAMPAIGNS,
            "ISALES_MAX_CAMPAIGNS_PER_FAMILY": MAX_CAMPAIGNS,
        }
        work = self.work_dir

        def gateway_and_service(url: str) -> list[procs.Server]:
            service = procs.grpc_server(work, url, **env)
            try:
                return [procs.gateway(work, service.target), service]
            except BaseException:
                service.stop()
                raise

        grpc_add = f"gRPC add {database}"
        self.scenario(grpc_add, "grpc", database, lambda url: [procs.grpc_server(work, url, **env)])
        self.scenario(
            f"gRPC change {database}", "grpc-change", database,
            lambda url: [procs.grpc_server(work, url, **env)],
        )  # fmt: skip
        self.scenario(f"REST add {database}", "http", database, gateway_and_service)
        self.scenario(
            f"REST add {database}, one process", "http", database,
            lambda url: [procs.serve(work, url, **env)],
        )  # fmt: skip
        if database == "sqlite":
            for name, variant in report.REFERENCE_VARIANTS.items():
                self.scenario(name, "http", database, partial(_reference, work, variant))
        if database == "postgresql":
            # Throughput with processes: one server process, then WORKERS on one port, both
            # over CONNECTIONS connections (the kernel spreads connections, not calls).
            for workers in (1, WORKERS):
                self.scenario(
                    f"{grpc_add}, {report.processes(workers)}", "grpc", database,
                    partial(_workers, work, workers, env),
                    channels=CONNECTIONS,
                )  # fmt: skip
        if self.args.scale_rows:
            for rows in (self.args.base_rows, self.args.scale_rows):
                self.at_scale(database, rows, env)
        for size in TENANT_SIZES:
            self.one_tenant(database, size, env)
        _progress(f"change feed {database}")
        # Twice the window: with the default 5 s, idle watchers get their 10 s bookmark in it.
        window = 2 * self.args.duration
        self.watch.append(watch.measure(self.work_dir, database, self.args.database_url, window))

    def at_scale(self, database: str, rows: int, env: dict[str, str]) -> None:
        """Add, get, a list page of LIST_PAGE, and adds and gets together, against one
        database holding `rows` campaigns."""
        with data.database(database, self.work_dir, self.args.database_url) as url:
            _progress(f"preloading {rows:,} campaigns ({data.prepare(url, rows):.1f} s)")
            server = procs.grpc_server(self.work_dir, url, **env)
            try:
                for op, kind in (
                    ("add", "grpc"),
                    ("get", "grpc-get"),
                    ("list", "grpc-list"),
                    ("mixed", "grpc-mixed"),
                ):
                    self.drive(
                        _stored(f"gRPC {op} {database}", rows), kind, server.target,
                        [server], rows=rows, baseline="noop gRPC", database=database,
                        op=op, preload=rows,
                    )  # fmt: skip
            finally:
                server.stop()

    def one_tenant(self, database: str, size: int, env: dict[str, str]) -> None:
        """gRPC adds to one tenant holding `size` running campaigns (the limits raised)."""
        with data.database(database, self.work_dir, self.args.database_url) as url:
            _progress(f"filling one tenant ({data.prepare(url, tenant_holds=size):.1f} s)")
            server = procs.grpc_server(self.work_dir, url, **env)
            try:
                self.drive(
                    report.one_tenant(database, size), "grpc-one-tenant", server.target,
                    [server], database=database, tenant_holds=size,
                )  # fmt: skip
            finally:
                server.stop()

    def scenario(
        self,
        name: str,
        kind: str,
        database: str,
        start: Callable[[str], list[procs.Server]],
        channels: int = 1,
    ) -> None:
        """On a fresh database: start the servers (the first one takes the `kind` of load:
        "grpc" or "http"), drive them, stop them."""
        with data.database(database, self.work_dir, self.args.database_url) as url:
            _progress(f"preparing {database} ({data.prepare(url):.1f} s)")
            servers = start(url)
            try:
                self.drive(
                    name, kind, servers[0].target, servers,
                    channels=channels,
                    baseline="noop gRPC" if kind.startswith("grpc") else "noop Starlette",
                    database=database,
                )  # fmt: skip
            finally:
                for server in servers:
                    server.stop()

    def ratios(self) -> None:
        """Throughput against the baseline, and a preloaded run against the empty one."""
        by_key = {(s["name"], s["concurrency"]): s for s in self.scenarios}
        base_rows = self.args.base_rows
        for s in self.scenarios:
            base = by_key.get((s.get("baseline", ""), s["concurrency"]))
            if base is not None and base["rps"]:
                s["ratio"] = s["rps"] / base["rps"]
            if s.get("preload", base_rows) != base_rows:
                # Against the same operation with --base-rows stored.
                small = _stored(f"gRPC {s['op']} {s['database']}", base_rows)
                base_run = by_key.get((small, s["concurrency"]))
                if base_run is not None and base_run["requests"]:
                    s["base"] = {
                        "rows": base_rows,
                        "rps": base_run["rps"],
                        "p50_ms": base_run["p50_ms"],
                    }


def _stored(operation: str, rows: int) -> str:
    """The name of a scenario run with `rows` campaigns stored."""
    return f"{operation}, {rows:,} stored"


def _workers(work: Path, workers: int, env: dict[str, str], url: str) -> list[procs.Server]:
    return [procs.grpc_workers(work, url, workers, env)]


def _reference(work: Path, variant: str, url: str) -> list[procs.Server]:
    return [procs.reference(work, make_url(url).database or "", variant)]


def _progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _concurrency(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--concurrency", type=_concurrency, default=[1, 32], help="e.g. 1,32")
    parser.add_argument(
        "--scale-rows",
        type=int,
        default=1_000_000,
        help="campaigns of the scale run, compared with --base-rows (0 skips both)",
    )
    parser.add_argument(
        "--base-rows",
        type=int,
        default=BASE_ROWS,
        help=f"campaigns the scale run is compared with (default {BASE_ROWS:,}: full list pages)",
    )
    parser.add_argument(
        "--no-generator-check",
        dest="generator_check",
        action="store_false",
        help="skip re-running the baselines from two load processes",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ISALES_BENCH_DATABASE_URL") or None,
        help="PostgreSQL admin URL (default $ISALES_BENCH_DATABASE_URL); unset: SQLite only",
    )
    args = parser.parse_args()
    if args.scale_rows and not 0 < args.base_rows < args.scale_rows:
        parser.error("--base-rows must be above 0 and below --scale-rows")

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    if load_before > BUSY_LOAD:
        _progress(
            f"load average {load_before:.1f} before starting: other work will skew the numbers"
        )
    (procs.ROOT / "var").mkdir(exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=procs.ROOT / "var"))
    bench = Bench(args, work_dir)
    steps: list[Callable[[], None]] = [bench.baselines, lambda: bench.service("sqlite")]
    if args.database_url:
        steps.append(lambda: bench.service("postgresql"))
    try:
        for step in steps:
            step()
        _progress("micro-costs")
        micro_costs = micro.measure()
    except BaseException:
        print(f"bench: failed; server logs are kept in {work_dir}", file=sys.stderr)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    bench.ratios()

    results: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
        },
        "settings": {
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "scale_rows": args.scale_rows,
            "postgresql": bool(args.database_url),
        },
        "scenarios": bench.scenarios,
        "generator_checks": bench.generator_checks,
        "watch": bench.watch,
        "micro": micro_costs,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    # Written first: the numbers of a long run outlive a failure to report them.
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(report.render(results))
    print(
        f"\n{len(bench.scenarios)} load scenarios in {results['wall_s']:.0f} s; see {args.output}"
    )
    return 1 if any(s["errors"] for s in bench.scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
