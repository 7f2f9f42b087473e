"""An operator's first day: a setting a command cannot use stops it at once with one line on
stderr naming the setting (and the file) at fault, before the database is touched; a failure
on the way (a port in use, a database that cannot be opened) is one line too; and what the
processes log is JSON, start-up tracebacks and `--workers` included."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from tests.pki import Pki, make_pki
from tests.processes import ServerProcess, free_port
from tests.waiting import wait_for

#: Database URLs whose password must never be shown.
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The PEM files of the tests by name, a file of garbage among them."""
    garbage = tmp_path_factory.mktemp("garbage") / "garbage.pem"
    garbage.write_text("not a PEM file\n")
    return {
        "server cert": pki.server.cert,
        "server key": pki.server.key,
        "client CA": pki.server.ca,
        "client cert": pki.client.cert,
        "client key": pki.client.key,
        "server CA": pki.client.ca,
        "garbage": str(garbage),
    }


def isales(
    tmp_path: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`isales ARGS` run to its end, on a SQLite database in `tmp_path` unless `env` says
    otherwise, on free ports; `prefix`: the command that runs it."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "isales_campaign.cli", *args],
        env={
            "PATH": "",
            "ISALES_DATABASE_URL": f"sqlite:///{tmp_path / 'isales.db'}",
            "ISALES_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
            "ISALES_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line the command wrote on stderr (and nothing on stdout)."""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    return result.stderr.rstrip("\n")


# -- TLS files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "settings", "line"),
    [
        (
            "grpc-server",
            {"ISALES_GRPC_TLS_CERT": "server cert", "ISALES_GRPC_TLS_KEY": "garbage"},
            "ISALES_GRPC_TLS_KEY: '{garbage}' holds no PEM private key",
        ),
        (
            "grpc-server",
            {"ISALES_GRPC_TLS_CERT": "server cert", "ISALES_GRPC_TLS_KEY": "client key"},
            "ISALES_GRPC_TLS_KEY: '{client key}' is not the private key of the certificate in "
            "'{server cert}' (ISALES_GRPC_TLS_CERT)",
        ),
        (
            "grpc-server",
            {
                "ISALES_GRPC_TLS_CERT": "server cert",
                "ISALES_GRPC_TLS_KEY": "server key",
                "ISALES_GRPC_TLS_CLIENT_CA": "garbage",
            },
            "ISALES_GRPC_TLS_CLIENT_CA: '{garbage}' holds no PEM certificate",
        ),
        (
            "serve",
            {"ISALES_GRPC_TLS_CERT": "server key", "ISALES_GRPC_TLS_KEY": "server cert"},
            "ISALES_GRPC_TLS_CERT: '{server key}' holds no PEM certificate (it holds a private "
            "key)",
        ),
        (
            "gateway",
            {
                "ISALES_GRPC_TARGET_CA": "server CA",
                "ISALES_GRPC_TARGET_CERT": "client cert",
                "ISALES_GRPC_TARGET_KEY": "garbage",
            },
            "ISALES_GRPC_TARGET_KEY: '{garbage}' holds no PEM private key",
        ),
        (
            "gateway",
            {"ISALES_GRPC_TARGET_CA": "garbage"},
            "ISALES_GRPC_TARGET_CA: '{garbage}' holds no PEM certificate",
        ),
        (
            "migrate",  # every command reads the settings whole
            {"ISALES_GRPC_TLS_CERT": "client cert", "ISALES_GRPC_TLS_KEY": "server key"},
            "ISALES_GRPC_TLS_KEY: '{server key}' is not the private key of the certificate in "
            "'{client cert}' (ISALES_GRPC_TLS_CERT)",
        ),
    ],
)
def test_an_unusable_tls_file_is_named_in_one_line_before_the_database_is_touched(
    tmp_path: Path, files: dict[str, str], command: str, settings: dict[str, str], line: str
) -> None:
    env = {name: files[file] for name, file in settings.items()}
    result = isales(tmp_path, command, env=env)
    assert (result.returncode, one_line(result)) == (2, "isales: " + line.format_map(files))
    assert not (tmp_path / "isales.db").exists()


#: Loaded before any fork: a child calls only `prctl`, no loader.
#: As root, run a command without the capabilities that read any file (dropped from the
#: bounding set, so that its exec grants them no more), so that permissions hold. A tool
#: rather than a `preexec_fn`, which is unsafe in a process with threads.
SETPRIV = shutil.which("setpriv")
WITHOUT_ROOT_FILE_ACCESS = (
    SETPRIV or "setpriv",
    "--bounding-set",
    "-dac_override,-dac_read_search",
)


@pytest.fixture
def unreadable_key(tmp_path: Path, files: dict[str, str]) -> Iterator[str]:
    """A copy of the server's key that the service's user cannot read."""
    key = tmp_path / "unreadable-key.pem"
    shutil.copy(files["server key"], key)
    key.chmod(0)
    yield str(key)
    key.chmod(0o600)


def test_a_key_the_service_cannot_read_is_named_in_one_line(
    tmp_path: Path, files: dict[str, str], unreadable_key: str
) -> None:
    as_root = os.geteuid() == 0
    if as_root:
        if SETPRIV is None:
            pytest.skip("no setpriv here to give up reading every file")
        probe = subprocess.run(
            [*WITHOUT_ROOT_FILE_ACCESS, sys.executable, "-c", f"open({unreadable_key!r})"],
            capture_output=True,
            check=False,
        )
        if b"PermissionError" not in probe.stderr:
            pytest.skip("root here reads every file whatever it gives up")
    result = isales(
        tmp_path,
        "grpc-server",
        env={"ISALES_GRPC_TLS_CERT": files["server cert"], "ISALES_GRPC_TLS_KEY": unreadable_key},
        prefix=WITHOUT_ROOT_FILE_ACCESS if as_root else (),
    )
    assert (result.returncode, one_line(result)) == (
        2,
        f"isales: ISALES_GRPC_TLS_KEY: cannot read {unreadable_key!r}: Permission denied",
    )
    assert not (tmp_path / "isales.db").exists()


# -- listen addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "variable", "address", "line"),
    [
        # grpcio took a missing port for 443, uvicorn 99999 for 99999 % 65536.
        ("grpc-server", "ISALES_GRPC_LISTEN", "127.0.0.1", "must be host:port, not '127.0.0.1'"),
        (
            "gateway",
            "ISALES_HTTP_LISTEN",
            "localhost:99999",
            "must be host:port with a port from 1 to 65535, not 'localhost:99999'",
        ),
        (
            "serve",
            "ISALES_HTTP_LISTEN",
            "::1:8080",
            "must put an IPv6 address in brackets, [::1]:port, not '::1:8080'",
        ),
    ],
)
def test_a_listen_address_that_is_not_host_and_port_is_refused(
    tmp_path: Path, command: str, variable: str, address: str, line: str
) -> None:
    result = isales(tmp_path, command, env={variable: address})
    assert (result.returncode, one_line(result)) == (2, f"isales: {variable} {line}")
    assert not (tmp_path / "isales.db").exists()


@pytest.mark.parametrize("command", ["gateway", "serve"])
def test_a_taken_http_port_is_one_line_and_nothing_starts(tmp_path: Path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = isales(tmp_path, command, env={"ISALES_HTTP_LISTEN": address})
    assert (result.returncode, one_line(result)) == (
        1,
        f"isales: cannot listen on {address} (ISALES_HTTP_LISTEN): address already in use",
    )
    assert not (tmp_path / "isales.db").exists()  # `serve` binds first


def test_the_gateway_says_it_listens_once_it_does(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as output:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "isales_campaign.cli", "gateway"],
            env={"PATH": "", "ISALES_HTTP_LISTEN": f"127.0.0.1:{port}"},
            stdout=output,
            stderr=output,
        )

    def said(message: str) -> bool:
        assert gateway.poll() is None, log.read_text()
        return any(entry["message"] == message for entry in _json_lines(log.read_text()))

    try:
        wait_for(lambda: said("gateway listening"), "the gateway to listen")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it listens by the time it says so
    finally:
        gateway.terminate()
        assert gateway.wait(30) == 0
    messages = [entry["message"] for entry in _json_lines(log.read_text())]
    assert messages.index("gateway listening") > messages.index("Application startup complete.")
    assert messages[-1] == "gateway stopped"


# -- the database URL -------------------------------------------------------------------


@pytest.fixture
def seed_file(tmp_path: Path) -> str:
    path = tmp_path / "seed.toml"
    path.write_text("tenants = []\n")
    return str(path)


def _command(name: str, seed_file: str) -> list[str]:
    return ["seed", seed_file] if name == "seed" else [name]


@pytest.mark.parametrize("command", ["migrate", "grpc-server", "serve", "seed"])
@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "notaurl",
            "isales: ISALES_DATABASE_URL is not a database URL (sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE): 'notaurl'",
        ),
        (
            f"mysql://isales:{PASSWORD}@127.0.0.1/isales",
            "isales: ISALES_DATABASE_URL names a database the service does not run on (mysql): "
            "use SQLite or PostgreSQL, sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            "postgresql+psycopg2://isales@127.0.0.1/isales",
            "isales: ISALES_DATABASE_URL names the driver psycopg2, which the service does not "
            "use: write postgresql:// (psycopg is used)",
        ),
    ],
)
def test_a_database_url_the_service_cannot_use_is_refused_in_one_line(
    tmp_path: Path, seed_file: str, command: str, url: str, line: str
) -> None:
    result = isales(tmp_path, *_command(command, seed_file), env={"ISALES_DATABASE_URL": url})
    assert (result.returncode, one_line(result)) == (2, line)


@pytest.mark.parametrize("command", ["migrate", "grpc-server", "serve", "seed"])
def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(
    tmp_path: Path, seed_file: str, command: str
) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://isales:{PASSWORD}@127.0.0.1:{port}/isales"
    result = isales(tmp_path, *_command(command, seed_file), env={"ISALES_DATABASE_URL": url})
    said = f"isales {command}" if command in ("migrate", "seed") else "isales"
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(
        f"{said}: cannot open the database of ISALES_DATABASE_URL "
        f"(postgresql://isales:***@127.0.0.1:{port}/isales): connection failed: "
    )
    assert "Connection refused" in line
    assert line.endswith("; nothing was changed")
    assert PASSWORD not in result.stderr


def test_a_missing_postgresql_database_is_one_line(tmp_path: Path, postgres_admin_url: str) -> None:
    missing = make_url(postgres_admin_url).set(database="isales_no_such_database")
    url = missing.render_as_string(hide_password=False)
    result = isales(tmp_path, "migrate", env={"ISALES_DATABASE_URL": url})
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("isales migrate: cannot open the database of ISALES_DATABASE_URL (")
    assert 'database "isales_no_such_database" does not exist' in line


def test_a_sqlite_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    url = f"sqlite:///{blocker}/isales.db"
    result = isales(tmp_path, "migrate", env={"ISALES_DATABASE_URL": url})
    assert (result.returncode, one_line(result)) == (
        1,
        f"isales migrate: cannot open the database of ISALES_DATABASE_URL ({url}): cannot "
        f"create its folder '{blocker}': File exists; nothing was changed",
    )


# -- logs -------------------------------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, object]]:
    """Every line of a log, parsed: any line that is not JSON fails."""
    entries = []
    for line in text.splitlines():
        try:
            entries.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pytest.fail(f"a line of the log is not JSON: {line!r}\n{text}")
    return entries


def test_an_exception_nobody_caught_is_a_json_line() -> None:
    code = (
        "import threading\n"
        "from isales_campaign import logs\n"
        "logs.configure()\n"
        "thread = threading.Thread(target=lambda: 1 / 0, name='helper')\n"
        "thread.start(); thread.join()\n"
        "raise RuntimeError('at start-up')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    in_thread, uncaught = _json_lines(result.stderr)
    assert (in_thread["message"], in_thread["thread_name"]) == (
        "uncaught exception in a thread",
        "helper",
    )
    assert str(in_thread["exception"]).endswith("ZeroDivisionError: division by zero")
    assert (uncaught["level"], uncaught["message"]) == ("critical", "uncaught exception")
    assert str(uncaught["exception"]).startswith("Traceback (most recent call last):")
    assert str(uncaught["exception"]).endswith("RuntimeError: at start-up")


def test_the_command_line_imports_grpc_only_after_silencing_its_own_log() -> None:
    """GRPC_VERBOSITY counts only when set before grpc is imported: `main` sets it first."""
    code = "import sys, isales_campaign.cli; print(sorted(m for m in sys.modules if 'grpc' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"


def test_refused_tls_handshakes_leave_the_servers_log_json(
    tmp_path: Path, sqlite_url: str, pki: Pki
) -> None:
    """A plaintext client and one of an unknown CA: gRPC's core would write its own lines
    ("Handshake failed") among the JSON ones."""
    server = ServerProcess(
        tmp_path / "server.log",
        ISALES_DATABASE_URL=sqlite_url,
        ISALES_GRPC_TLS_CERT=pki.server.cert,
        ISALES_GRPC_TLS_KEY=pki.server.key,
        ISALES_GRPC_TLS_CLIENT_CA=pki.server.ca,
    )
    stranger = grpc.ssl_channel_credentials(
        Path(pki.client.ca).read_bytes(),
        Path(pki.stranger.key).read_bytes(),
        Path(pki.stranger.cert).read_bytes(),
    )
    for channel in (
        grpc.insecure_channel(f"localhost:{server.port}"),
        grpc.secure_channel(f"localhost:{server.port}", stranger),
    ):
        health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs declare no methods
        with channel, pytest.raises(grpc.RpcError):
            health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert server.stop() == 0
    entries = _json_lines(server.log_text())
    assert entries[-1]["message"] == "gRPC server stopped"
