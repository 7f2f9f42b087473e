"""Servers as separate processes, started the way an operator starts them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson


class ServerProcess:
    """`isales grpc-server` in a child process; its JSON log goes to a file."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environment = {**os.environ, "ISALES_GRPC_LISTEN": "127.0.0.1:0", **env}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "isales_campaign.cli", "grpc-server"],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.port = self._wait_for_port()

    def _wait_for_port(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_bytes().splitlines():
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if entry.get("message") == "gRPC server listening":
                    return int(entry["port"])
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def log_text(self) -> str:
        return self.log_path.read_text()


def isales(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """One `isales` command on the database at `database_url`, run to its end."""
    return subprocess.run(
        _isales_command(*args),
        env=_isales_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def isales_started(*args: str, database_url: str) -> subprocess.Popen[str]:
    """One `isales` command on the database at `database_url`, started (stderr piped)."""
    return subprocess.Popen(
        _isales_command(*args), env=_isales_env(database_url), stderr=subprocess.PIPE, text=True
    )


def _isales_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "isales_campaign.cli", *args]


def _isales_env(database_url: str) -> dict[str, str]:
    return {"ISALES_DATABASE_URL": database_url, "PATH": ""}


def running_children() -> set[int]:
    """The pids of this process's children that are still running (Linux: read from /proc)."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (name) state ppid ...": the name may hold spaces and parentheses.
            state, parent = stat.read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):  # it ended meanwhile
            continue
        if parent == me and state not in ("Z", "X"):
            found.add(int(stat.parent.name))
    return found


@contextlib.contextmanager
def killing_leftovers() -> Iterator[None]:
    """Kill the children started inside that still run at its end (a test that failed half-way
    may leave a server running; its workers stop by themselves when their parent dies)."""
    before = running_children()
    try:
        yield
    finally:
        for pid in running_children() - before:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A loopback port free at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
