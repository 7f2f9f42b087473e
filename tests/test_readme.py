"""The README's examples work as written, against `isales serve` as `make run` starts it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from isales.campaign.v2.campaign_service_pb2 import GetQuotaRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.gateway import answers
from tests.conftest import ServerFactory, fresh_postgres_database
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_grpc_example(sqlite_url: str, make_server: ServerFactory) -> None:
    running = make_server(sqlite_url)
    example = next(e for e in blocks("python") if "CampaignServiceStub" in e)
    code = example.replace("127.0.0.1:50051", f"127.0.0.1:{running.port}")
    for expected_id in (1, 2):  # twice in a row: the deleted campaign freed its name
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"added {expected_id} CAMPAIGN_STATUS_EXECUTING",
            f"listed [{expected_id}] 1",
            "modified, version 2",
            "paused CAMPAIGN_STATUS_PAUSED",
            "skill-queue campaigns 1 of 20",
            "deleted",
            "history ['ADDED', 'MODIFIED', 'PAUSED', 'RESUMED', 'PAUSED', 'DELETED']",
        ]
    # A refusal (here: a VDN that is not configured) is reported, not a traceback.
    again = subprocess.run(
        [sys.executable, "-c", code.replace("vdn_id=1", "vdn_id=5")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("refused: NOT_FOUND"), again.stdout


def test_follow_example(sqlite_url: str, make_server: ServerFactory) -> None:
    running = make_server(sqlite_url)
    address = f"127.0.0.1:{running.port}"
    changes = next(e for e in blocks("python") if "CampaignServiceStub" in e)
    follow = next(e for e in blocks("python") if "WatchCampaignChanges" in e)
    for code in (changes, follow):
        result = subprocess.run(
            [sys.executable, "-c", code.replace("127.0.0.1:50051", address)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1 ADDED 1", "2 MODIFIED 1", "3 PAUSED 1"]


def test_changes_example(sqlite_url: str, make_server: ServerFactory) -> None:
    """The `isales changes` block, after the gRPC example: its history, read and followed."""
    running = make_server(sqlite_url)
    grpc_example = next(e for e in blocks("python") if "CampaignServiceStub" in e)
    code = grpc_example.replace("127.0.0.1:50051", f"127.0.0.1:{running.port}")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
    [example] = [b for b in blocks("sh") if "isales changes" in b]
    env = {"PATH": str(BIN), "ISALES_GRPC_TARGET": f"127.0.0.1:{running.port}"}
    commands = [
        shlex.split(line, comments=True) for line in example.splitlines() if "isales" in line
    ]
    [one_campaign, after, follow] = commands
    assert (one_campaign[1:], after[1:]) == (
        ["changes", "1", "--campaign", "1"],
        ["changes", "1", "--after", "3"],
    )
    assert follow[1:] == ["changes", "1", "--follow"]
    kinds = ["ADDED", "MODIFIED", "PAUSED", "RESUMED", "PAUSED", "DELETED"]
    for command, expected in ((one_campaign, list(range(1, 7))), (after, [4, 5, 6])):
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert (result.returncode, result.stderr) == (0, ""), command
        records = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert [record["sequence"] for record in records] == expected
        assert [record["kind"][12:] for record in records] == kinds[expected[0] - 1 :]
    following = subprocess.Popen(follow, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert following.stdout is not None
        followed = [orjson.loads(following.stdout.readline())["sequence"] for _ in kinds]
        assert followed == list(range(1, 7))
        following.send_signal(signal.SIGINT)
        _, stderr = following.communicate(timeout=30)
        assert (following.returncode, stderr) == (130, b"")
    finally:
        following.kill()
        following.wait()


def make_recipe(target: str) -> list[list[str]]:
    """The commands of a Makefile target, with the virtual environment's and the
    repository's paths filled in."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match is not None, target
    return [
        [str(ROOT / word) if word.startswith("scripts/") else word for word in shlex.split(line)]
        for line in match.group(1).replace("$(BIN)", str(BIN)).splitlines()
    ]


def wait_for_http(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(log.read_text())
            time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """`make run`'s commands in a scratch directory: the demo seed, then `isales serve`."""
    http_port = free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ISALES_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'isales.db'}",
        "ISALES_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
        "ISALES_HTTP_LISTEN": f"127.0.0.1:{http_port}",
    }
    *setup, serve = make_recipe("run")
    assert serve == [str(BIN / "isales"), "serve"], serve
    for command in setup:
        subprocess.run(command, cwd=tmp_path, env=env, check=True, timeout=60)
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(serve, cwd=tmp_path, env=env, stdout=log, stderr=log)
    wait_for_http(http_port, server, tmp_path / "serve.log")
    yield tmp_path, http_port, env
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0, (tmp_path / "serve.log").read_text()


def run_in(directory: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def test_rest_examples(served: tuple[Path, int, dict[str, str]]) -> None:
    directory, http_port, env = served
    add, lifecycle = [b for b in blocks("sh") if "curl" in b]
    here = f"127.0.0.1:{http_port}"
    script = (add + lifecycle).replace("127.0.0.1:8080", here)
    # Twice in a row, in one shell as the README says: the second run adds anew (id 2).
    for expected_id in (1, 2):
        result = run_in(directory, env, "bash", "-euc", script)
        answers = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert answers[0] == {
            "resultCode": "0200000",
            "resultDesc": "",
            "returnCode": "0200000",
            "returnDesc": "",
            "returnObject": {"id": expected_id},
        }
        codes = [answer["resultCode"] for answer in answers[1:]]
        assert codes == ["0200000"] * 7 + ["0200007", "0200000"], answers
        listed, found = answers[1], answers[2]["returnObject"]
        assert (listed["totalSize"], [row["id"] for row in listed["data"]]) == (1, [expected_id])
        assert (found["id"], found["callerNo"], found["status"]) == (
            expected_id,
            "88889527,88880066",
            2,
        )
        history = answers[-1]
        assert [(r["kind"], r["version"]) for r in history["data"]] == [
            ("ADDED", 1),
            ("MODIFIED", 2),
            ("PAUSED", 3),
            ("RESUMED", 4),
            ("PAUSED", 5),
            ("DELETED", 5),
        ]
        assert history["data"][1]["changedFields"] == ["description"]
        assert history["nextAfterSequence"] == 0
    example = next(e for e in blocks("python") if "LegacyClient" in e)
    code = example.replace("127.0.0.1:8080", here)
    # Twice in a row: the deleted campaign freed its name, and each run signs anew.
    for expected_id in (3, 4):
        result = run_in(directory, env, sys.executable, "-c", code)
        assert result.stdout.splitlines() == [
            f"listed [{expected_id}] 1",
            "found python example 2 88889527,88880066",
            "deleted 0200007",
        ]


def test_seed_example(tmp_path: Path) -> None:
    """The README's seed file, filled in, loads with `isales seed`, and again unchanged."""
    [example] = blocks("toml")
    seed = tmp_path / "seed.toml"
    seed.write_text(example.replace('"..."', '"example-key"', 1).replace('"..."', '"secret"', 1))
    url = f"sqlite:///{tmp_path / 'isales.db'}"
    env = {**os.environ, "ISALES_DATABASE_URL": url}
    for _ in range(2):
        result = subprocess.run(
            [BIN / "isales", "seed", seed], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "isales.db") as connection:
        tables = {
            table: connection.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
            for table in ("tenants", "app_keys", "skill_queues")
        }
    assert tables == {
        "tenants": [(1, "UTC", 0)],  # no change made yet
        "app_keys": [("example-key", 1, "secret")],
        "skill_queues": [(1, 2, "defaultAudioSkill")],
    }


def test_deployment_example(postgres_admin_url: str, tmp_path: Path) -> None:
    """The deployment block as written, on a fresh PostgreSQL database and loopback
    addresses, with the README's seed file: the README's curl add goes through the gateway to
    the service's workers, and the gRPC port refuses a caller without the internal token."""
    [block] = [b for b in blocks("sh") if "isales grpc-server --workers" in b]
    [example] = blocks("toml")
    (tmp_path / "tenants.toml").write_text(
        example.replace('"..."', '"example-key"', 1).replace('"..."', '"secret"', 1)
    )
    grpc_port, http_port = free_port(), free_port()
    with contextmanager(fresh_postgres_database)(postgres_admin_url) as url:
        script = (
            block.replace("postgresql://isales:secret@db.internal:5432/isales", url)
            .replace("ISALES_INTERNAL_TOKEN=...", "ISALES_INTERNAL_TOKEN=deployment-test-token")
            .replace("0.0.0.0:50051", f"127.0.0.1:{grpc_port}")
            .replace("dns:///campaign-service:50051", f"dns:///127.0.0.1:{grpc_port}")
            .replace("0.0.0.0:8080", f"127.0.0.1:{http_port}")
        )
        *setup, service, gateway = script.strip().splitlines()
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        run_in(tmp_path, env, "bash", "-euc", "\n".join(setup))
        exports = "\n".join(line for line in setup if line.startswith("export "))
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for name, line in (("service", service), ("gateway", gateway)):
                with (tmp_path / f"{name}.log").open("wb") as log:
                    processes.append(
                        subprocess.Popen(
                            ["bash", "-euc", f"{exports}\nexec env {line}"],
                            cwd=tmp_path,
                            env=env,
                            stdout=log,
                            stderr=log,
                        )
                    )
                if name == "service":  # started first, as an orchestrator would
                    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                        health: Any = health_pb2_grpc.HealthStub(channel)  # untyped stub
                        checked = health.Check(
                            health_pb2.HealthCheckRequest(), timeout=60, wait_for_ready=True
                        )
                    assert checked.status == health_pb2.HealthCheckResponse.SERVING
            wait_for_http(http_port, processes[1], tmp_path / "gateway.log")
            add = next(b for b in blocks("sh") if "curl" in b and "POST" in b)
            add = add.replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
            add = add.replace("--seed var/demo-seed.toml", "--seed tenants.toml")
            (tmp_path / "var").mkdir(exist_ok=True)  # as `make run` leaves it
            result = run_in(tmp_path, env, "bash", "-euc", add)
            assert orjson.loads(result.stdout).get("returnObject") == {"id": 1}, result.stdout
            with (
                grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
                pytest.raises(grpc.RpcError) as refused,
            ):
                CampaignServiceStub(channel).GetQuota(GetQuotaRequest(vdn_id=1), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            for process in reversed(processes):
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(30) for process in processes]
        assert codes == [0, 0], [
            (tmp_path / f"{n}.log").read_text() for n in ("service", "gateway")
        ]


def test_the_readme_lists_every_status_the_gateway_answers_with_its_code() -> None:
    """The table of REST answers says what `gateway/answers.py` answers, no more, no less."""
    rows = re.findall(r"^\| ([0-9, ]+) \| `([0-9]+)` \|", README, re.M)
    listed = {(int(status), code) for statuses, code in rows for status in statuses.split(", ")}
    answered = {
        (kind.status, kind.code)
        for kind in answers.ANSWERS
        if kind.documented and kind.code is not None
    }
    # A refusal carries its own code: the README lists them one by one.
    assert {entry for entry in listed if entry[0] != 200} == {
        entry for entry in answered if entry[0] != 200
    }


def test_every_file_the_layout_names_exists() -> None:
    layout = README.partition("### Layout")[2].partition("\n## ")[0]
    named = set(re.findall(r"`([\w/.]+(?:\.py|/))`", layout))
    assert len(named) >= 40
    source = ROOT / "src" / "isales_campaign"
    for path in sorted(named):
        candidates = (ROOT / path, source / path, ROOT / "bench" / path, ROOT / "tests" / path)
        assert any(candidate.exists() for candidate in candidates), path
