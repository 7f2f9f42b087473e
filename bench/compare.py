"""`python -m bench.compare REV`: the server's CPU per call with the code of REV against the
working tree's, for budgets such as "at most 10 % more CPU per change than before".

One run of `make bench` against another moves by more than such a budget, with the machine's
mood between them. Here the two trees take turns in every round (old-new, then new-old), each
run on a fresh SQLite database migrated and seeded by the tree's own `isales seed`, the server
pinned to the first core and the load generator to the second, and the medians of the rounds
are compared. The load generator and its payloads are the working tree's for both.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import data, payloads, procs
from bench.__main__ import MAX_CAMPAIGNS, TENANT_SIZES, Bench, _concurrency, _progress

#: What a scenario loads (a kind of `bench.load`) and the servers it starts.
Start = Callable[[Path, str, list[str], dict[str, str]], list[procs.Server]]


def _grpc(work: Path, url: str, pin: list[str], env: dict[str, str]) -> list[procs.Server]:
    return [procs.grpc_server(work, url, pin, **env)]


def _serve(work: Path, url: str, pin: list[str], env: dict[str, str]) -> list[procs.Server]:
    return [procs.serve(work, url, pin, **env)]


#: Each scenario's load, servers, and the running campaigns VDN 1 holds before it.
SCENARIOS: dict[str, tuple[str, Start, int]] = {
    "grpc-add": ("grpc", _grpc, 0),
    "grpc-change": ("grpc-change", _grpc, 0),
    "rest-add-one-process": ("http", _serve, 0),
    **{
        f"grpc-add-tenant-holding-{size}": ("grpc-one-tenant", _grpc, size) for size in TENANT_SIZES
    },
}


@dataclass(frozen=True)
class Tree:
    """Code to run: `path` is put first on PYTHONPATH (None: the working tree, installed)."""

    label: str
    python_path: str | None

    def env(self) -> dict[str, str]:
        return {} if self.python_path is None else {"PYTHONPATH": self.python_path}


def extract(revision: str, into: Path) -> Tree:
    """The service's code (src/ and gen/) as it was at `revision`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "src", "gen"],
        cwd=procs.ROOT,
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return Tree(revision, f"{into / 'src'}{os.pathsep}{into / 'gen'}")


def seed(tree: Tree, url: str, seed_file: Path) -> None:
    """Migrate and seed a new database with the tree's own `isales seed`."""
    subprocess.run(
        [sys.executable, "-m", "isales_campaign.cli", "seed", str(seed_file)],
        cwd=procs.ROOT,
        env={**os.environ, "ISALES_DATABASE_URL": url, **tree.env()},
        check=True,
        capture_output=True,
    )


def seed_toml() -> str:
    """`payloads.seed_document()` as a TOML file."""
    lines = []
    for tenant in payloads.seed_document()["tenants"]:
        lines += ["[[tenants]]", f"vdn_id = {tenant['vdn_id']}", 'time_zone = "UTC"']
        for key in tenant["app_keys"]:
            lines += ["[[tenants.app_keys]]"]
            lines += [f'{name} = "{value}"' for name, value in key.items()]
        for queue in tenant["skill_queues"]:
            lines += ["[[tenants.skill_queues]]", f"id = {queue['id']}"]
            lines += [f'name = "{queue["name"]}"']
    return "\n".join(lines) + "\n"


def run_once(
    bench: Bench, tree: Tree, scenario: str, concurrency: int, seed_file: Path, pin: list[str]
) -> dict[str, Any]:
    kind, start, tenant_holds = SCENARIOS[scenario]
    env = {
        "ISALES_MAX_ACTIVE_TASKS": MAX_CAMPAIGNS,
        "ISALES_MAX_CAMPAIGNS_PER_FAMILY": MAX_CAMPAIGNS,
        **tree.env(),
    }
    with data.database("sqlite", bench.work_dir, None) as url:
        seed(tree, url, seed_file)
        if tenant_holds:
            data.fill_one_tenant(url, tenant_holds)
        servers = start(bench.work_dir, url, pin, env)
        try:
            return bench.run_load(kind, servers[0].target, concurrency, servers)
        finally:
            for server in servers:
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("revision", help="the code to compare with, e.g. a commit")
    parser.add_argument(
        "--scenarios",
        default="grpc-add,grpc-change",
        help=f"comma-separated, of {', '.join(SCENARIOS)} (default grpc-add,grpc-change)",
    )
    parser.add_argument("--concurrency", type=_concurrency, default=[1, 32], help="e.g. 1,32")
    parser.add_argument("--rounds", type=int, default=4, help="turns of each tree (default 4)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (default 5)")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    two_cores = (os.cpu_count() or 1) >= 2
    server_pin = ["taskset", "-c", "0"] if two_cores else []

    (procs.ROOT / "var").mkdir(exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="bench-compare-", dir=procs.ROOT / "var"))
    try:
        old = extract(args.revision, work_dir / "old")
        trees = [old, Tree("working tree", None)]
        seed_file = work_dir / "seed.toml"
        seed_file.write_text(seed_toml(), encoding="utf-8")
        bench = Bench(args, work_dir)
        if two_cores:
            bench.load_prefix = ["taskset", "-c", "1"]
        runs: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        for turn in range(args.rounds):
            order = trees if turn % 2 == 0 else trees[::-1]
            for scenario in scenarios:
                for concurrency in args.concurrency:
                    for tree in order:
                        _progress(f"round {turn + 1}: {scenario} c={concurrency} {tree.label}")
                        result = run_once(bench, tree, scenario, concurrency, seed_file, server_pin)
                        runs.setdefault((scenario, concurrency, tree.label), []).append(result)
    except BaseException:
        print(f"bench.compare: failed; server logs are kept in {work_dir}", file=sys.stderr)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    print(render(runs, scenarios, args.concurrency, [tree.label for tree in trees]))
    errors = sum(run["errors"] for results in runs.values() for run in results)
    return 1 if errors else 0


def render(
    runs: dict[tuple[str, int, str], list[dict[str, Any]]],
    scenarios: list[str],
    concurrencies: list[int],
    labels: list[str],
) -> str:
    """Medians per scenario and tree, and the new tree's CPU against the old one's."""
    lines = [
        "| scenario | c | code | server CPU per call (us), each round | median | req/s "
        "| p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        for concurrency in concurrencies:
            medians = []
            for label in labels:
                results = runs[(scenario, concurrency, label)]
                cpu = [run["cpu_s_per_1k"] * 1000 for run in results]
                medians.append(statistics.median(cpu))
                rps = statistics.median(run["rps"] for run in results)
                p50 = statistics.median(run["p50_ms"] for run in results)
                p99 = statistics.median(run["p99_ms"] for run in results)
                lines.append(
                    f"| {scenario} | {concurrency} | {label} | "
                    f"{', '.join(f'{value:.0f}' for value in cpu)} | {medians[-1]:.0f} | "
                    f"{rps:,.0f} | {p50:.1f} / {p99:.1f} |"
                )
            change = medians[1] / medians[0] - 1
            lines.append(f"| {scenario} | {concurrency} | change | | {change:+.1%} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
