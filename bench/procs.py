"""Server processes on loopback, started as an operator would, and their CPU and memory."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A child process serving on 127.0.0.1:`port`; its output goes to `log_path`."""

    def __init__(
        self,
        label: str,
        args: list[str],
        log_dir: Path,
        env: dict[str, str],
        prefix: Sequence[str] = (),
    ) -> None:
        """`prefix`: a command the interpreter runs under (`taskset -c 0`)."""
        self.label = label
        self.port = free_port()
        self.log_path = log_dir / f"{label}-{self.port}.log"
        own = {name: value.replace("{port}", str(self.port)) for name, value in env.items()}
        environment = {**os.environ, **own}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    *[a.replace("{port}", str(self.port)) for a in args],
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_listening()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_until_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        self.stop()
        raise RuntimeError(f"{self.label} did not start:\n{self.log_path.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        """The process and its children (the workers of `--workers`)."""
        own = self.process.pid
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == own:
                children.append(int(stat.parent.name))
        return [own, *children]

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the process and its children so far."""
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        return total / _TICKS

    def peak_rss_mb(self) -> float:
        """The largest high-water mark of the resident set (VmHWM) among its processes."""
        peaks = [0.0]
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, as an orchestrator would; SIGKILL when it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


#: Shared by the servers and gateways this run starts.
INTERNAL_TOKEN = secrets.token_urlsafe(32)


def grpc_server(log_dir: Path, database_url: str, prefix: Sequence[str] = (), **env: str) -> Server:
    """`isales grpc-server` on the given database."""
    return grpc_workers(log_dir, database_url, 1, env, prefix)


def grpc_workers(
    log_dir: Path,
    database_url: str,
    workers: int,
    env: dict[str, str],
    prefix: Sequence[str] = (),
) -> Server:
    """`isales grpc-server --workers N` on the given database."""
    return Server(
        "grpc-server",
        ["isales_campaign.cli", "grpc-server", "--workers", str(workers)],
        log_dir,
        {
            "ISALES_GRPC_LISTEN": "127.0.0.1:{port}",
            "ISALES_DATABASE_URL": database_url,
            "ISALES_INTERNAL_TOKEN": INTERNAL_TOKEN,
            **env,
        },
        prefix,
    )


def gateway(log_dir: Path, grpc_target: str, **env: str) -> Server:
    """`isales gateway` in front of the gRPC server at `grpc_target`."""
    return Server(
        "gateway",
        ["isales_campaign.cli", "gateway"],
        log_dir,
        {
            "ISALES_HTTP_LISTEN": "127.0.0.1:{port}",
            "ISALES_GRPC_TARGET": grpc_target,
            "ISALES_INTERNAL_TOKEN": INTERNAL_TOKEN,
            **env,
        },
    )


def serve(log_dir: Path, database_url: str, prefix: Sequence[str] = (), **env: str) -> Server:
    """`isales serve`: the gateway (on `port`) and the service in one process."""
    return Server(
        "serve",
        ["isales_campaign.cli", "serve"],
        log_dir,
        {
            "ISALES_HTTP_LISTEN": "127.0.0.1:{port}",
            "ISALES_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
            "ISALES_DATABASE_URL": database_url,
            "ISALES_INTERNAL_TOKEN": INTERNAL_TOKEN,
            **env,
        },
        prefix,
    )


def reference(log_dir: Path, sqlite_path: str, variant: str = "threads") -> Server:
    """The FastAPI + pydantic reference of `bench.reference` on a prepared SQLite file, in one
    of its `VARIANTS` (`lean`: the write inline on the event loop, a counter row for the quota;
    `same-writes`: that, with the idempotency key and a change record in the transaction)."""
    return Server("reference", ["bench.reference", "{port}", sqlite_path, variant], log_dir, {})


def baseline(kind: str, log_dir: Path) -> Server:
    """A no-op server of `bench.baselines`: "grpc" or "http"."""
    return Server(f"noop-{kind}", ["bench.baselines", kind, "{port}"], log_dir, {})
