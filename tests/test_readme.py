"""The README's examples work as written, against `isales serve` as `make run` starts it."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ServerFactory

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_grpc_example(sqlite_url: str, make_server: ServerFactory) -> None:
    running = make_server(sqlite_url)
    example = next(e for e in blocks("python") if "CampaignServiceStub" in e)
    code = example.replace("127.0.0.1:50051", f"127.0.0.1:{running.port}")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added 1 CAMPAIGN_STATUS_EXECUTING",
        "listed [1] 1",
        "modified, version 2",
        "paused CAMPAIGN_STATUS_PAUSED",
        "skill-queue campaigns 1 of 20",
        "deleted",
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """`make run` in a scratch directory: demo seed, then `isales serve`."""
    http_port = free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ISALES_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'isales.db'}",
        "ISALES_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
        "ISALES_HTTP_LISTEN": f"127.0.0.1:{http_port}",
    }
    run = {"cwd": tmp_path, "env": env, "check": True, "timeout": 60}
    subprocess.run([sys.executable, ROOT / "scripts" / "demo_seed.py", "var/demo-seed.toml"], **run)  # type: ignore[call-overload]
    subprocess.run([BIN / "isales", "seed", "var/demo-seed.toml"], **run)  # type: ignore[call-overload]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [BIN / "isales", "serve"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{http_port}/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail((tmp_path / "serve.log").read_text())
            time.sleep(0.1)
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
    result = run_in(directory, env, "bash", "-euc", add.replace("127.0.0.1:8080", here))
    assert result.stdout == (
        '{"resultCode":"0200000","resultDesc":"","returnCode":"0200000",'
        '"returnDesc":"","returnObject":{"id":1}}'
    )
    result = run_in(directory, env, "bash", "-euc", lifecycle.replace("127.0.0.1:8080", here))
    answers = [orjson.loads(line) for line in result.stdout.splitlines()]
    codes = [answer["resultCode"] for answer in answers]
    assert codes == ["0200000"] * 7 + ["0200007"], answers
    listed, found = answers[0], answers[1]["returnObject"]
    assert (listed["totalSize"], [row["id"] for row in listed["data"]]) == (1, [1])
    assert (found["id"], found["callerNo"], found["status"]) == (1, "88889527,88880066", 2)
    example = next(e for e in blocks("python") if "LegacyClient" in e)
    code = example.replace("127.0.0.1:8080", here)
    result = run_in(directory, env, sys.executable, "-c", code)
    assert result.stdout.splitlines() == [
        "listed [2] 1",
        "found python example 2 88889527,88880066",
        "deleted 0200007",
    ]
    # Run again: the deleted campaign freed its name. (Another body: the same signed bytes
    # within the same second would be a retry, answered with the first campaign.)
    assert '"python example"\n' in code
    code = code.replace('"python example"\n', '"python example"\nbody["description"] = "again"\n')
    result = run_in(directory, env, sys.executable, "-c", code)
    assert result.stdout.splitlines()[0] == "listed [3] 1"


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
        "tenants": [(1, "UTC")],
        "app_keys": [("example-key", 1, "secret")],
        "skill_queues": [(1, 2, "defaultAudioSkill")],
    }
