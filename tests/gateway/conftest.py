"""Real components for the gateway tests: a gRPC server on SQLite, uvicorn on loopback."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from isales_campaign.client import LegacyClient, sign_request
from isales_campaign.config import Settings
from isales_campaign.gateway.app import create_app
from isales_campaign.gateway.examples import example
from isales_campaign.gateway.run import GatewayServer, gateway_server
from isales_campaign.local_backend import LocalBackend
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.seed import apply_seed, parse_seed
from isales_campaign.service.server import RunningServer, start_server
from tests.conftest import fresh_postgres_database
from tests.processes import free_port

ADD_PATH = "/rest/isales/v2/openapi/campaigns/{vdn}"
CONTENT_TYPE = "application/json;charset=UTF-8"

#: The read deadline of the `strict` stack, in seconds.
STRICT_DEADLINE = 0.5

#: VDN 1 and 2 for the tests, VDN 9 for the property test (it may exhaust a quota).
KEYS = {1: ("gw-ak-1", "gw-sk-1"), 2: ("gw-ak-2", "gw-sk-2"), 9: ("gw-ak-9", "gw-sk-9")}
SEED = {
    "tenants": [
        {
            "vdn_id": vdn,
            "time_zone": "UTC",
            "app_keys": [{"access_key": ak, "secret_key": sk}],
            "skill_queues": [{"id": 2, "name": "defaultAudioSkill"}],
        }
        for vdn, (ak, sk) in KEYS.items()
    ]
}

#: The interface page's example request, verbatim (its dates are moved by `example_body`).
EXAMPLE = example("add-campaign-request")
#: The example's policyJson, single-quoted as on the interface page.
EXAMPLE_POLICY_JSON = EXAMPLE["retryPolicy"]["policyJson"]


def example_body(name: str | None = None) -> dict[str, Any]:
    """The documented example, dated today 00:00:00 to tomorrow 23:59:59 (UTC), named uniquely."""
    body: dict[str, Any] = copy.deepcopy(EXAMPLE)
    today = datetime.now(UTC).date()
    body["strBeginTime"] = f"{today.isoformat()} 00:00:00"
    body["strEndTime"] = f"{(today + timedelta(days=1)).isoformat()} 23:59:59"
    body["name"] = name or f"gw-{uuid.uuid4().hex[:12]}"
    return body


def ivr_body(name: str | None = None) -> dict[str, Any]:
    """An automatic IVR campaign with a common global retry policy."""
    body = example_body(name)
    del body["skillParam"], body["callPolicy"]
    body["deviceType"] = 3
    body["ivrParam"] = {"deviceSign": "1001", "callCount": 3, "callInterval": 3}
    body["retryPolicy"] = {"policyType": 0, "retryDay": 2, "retryTimes": 2, "callInterval": 60}
    return body


@dataclass
class Stack:
    """A gateway (and usually a gRPC server behind it) listening on loopback."""

    settings: Settings
    base_url: str
    grpc: RunningServer | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def url(self, vdn: int | str = 1) -> str:
        return self.base_url + ADD_PATH.format(vdn=vdn)

    def client(self, vdn: int = 1, **kwargs: Any) -> LegacyClient:
        ak, sk = KEYS[vdn]
        return LegacyClient(self.base_url, ak, sk, **kwargs)

    def post(
        self,
        body: bytes | dict[str, Any],
        *,
        vdn: int | str = 1,
        keys: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        signed: tuple[str, ...] = ("host",),
        timestamp: str | None = None,
        sign_body: bytes | None = None,
    ) -> httpx.Response:
        """POST with httpx, signed with the project's client unless `keys` is ("", "")."""
        # stdlib json: it writes integers beyond 64 bits, which some tests send
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = self.url(vdn)
        all_headers = {"Content-Type": CONTENT_TYPE, **(headers or {})}
        ak, sk = keys or KEYS[vdn if isinstance(vdn, int) and vdn in KEYS else 1]
        if ak and "Authorization" not in all_headers:
            all_headers["Authorization"] = sign_request(
                ak,
                sk,
                method="POST",
                url=url,
                body=raw if sign_body is None else sign_body,
                content_type=all_headers["Content-Type"],
                signed=signed,
                timestamp=timestamp,
            )
        return httpx.post(url, content=raw, headers=all_headers, timeout=30)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()


def serve_gateway(settings: Settings, app: ASGIApp | None = None) -> tuple[str, Callable[[], None]]:
    """uvicorn in a background thread on a port chosen by the kernel."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server: GatewayServer = gateway_server(replace(settings, http_listen=f"127.0.0.1:{port}"), app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def start_stack(
    directory: Path,
    gateway_token: str | None = None,
    database_url: str | None = None,
    in_process: bool = False,
    **overrides: Any,
) -> Stack:
    """A service (on SQLite unless `database_url` says otherwise) and a gateway in front
    of it; `gateway_token` makes the gateway present another internal token than the
    service expects; `in_process` hands the gateway the service's servicers (as `isales
    serve` does) instead of a gRPC channel."""
    url = database_url or f"sqlite:///{directory / 'isales.db'}"
    engine = create_database_engine(url, pool_size=1)
    settings = replace(
        Settings(),
        database_url=url,
        grpc_listen="127.0.0.1:0",
        grpc_workers=4,
        internal_token="gateway-token",
    )
    settings = replace(settings, **overrides)
    running = start_server(settings)  # migrates
    apply_seed(engine, parse_seed(SEED))
    engine.dispose()
    settings = replace(settings, grpc_target=f"127.0.0.1:{running.port}")
    if gateway_token is not None:
        settings = replace(settings, internal_token=gateway_token)
    app = None
    if in_process:
        backend = LocalBackend(
            running, settings.grpc_timeout_seconds, settings.internal_token, settings.grpc_workers
        )
        app = create_app(settings, backend)
    base_url, stop_gateway = serve_gateway(settings, app)
    stack = Stack(settings, base_url, running)
    stack._stops += [lambda: running.stop(0), stop_gateway]
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared stack; the campaign limits are high so tests do not interfere."""
    started = start_stack(
        tmp_path_factory.mktemp("gateway"),
        max_active_tasks=10_000,
        max_campaigns_per_family=10_000,
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def postgres_stack(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack on a fresh PostgreSQL database, for the tests of one module."""
    with contextmanager(fresh_postgres_database)(postgres_admin_url) as url:
        started = start_stack(tmp_path_factory.mktemp("postgres"), database_url=url)
        try:
            yield started
        finally:
            started.stop()


@pytest.fixture(scope="session")
def quota_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose tenants may have one active campaign per family."""
    started = start_stack(tmp_path_factory.mktemp("quota"), max_active_tasks=1)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def offline_stack() -> Iterator[Stack]:
    """A gateway whose gRPC target is a closed port, with a 4 KiB body limit."""
    settings = replace(
        Settings(),
        grpc_target=f"127.0.0.1:{free_port()}",
        grpc_timeout_seconds=2.0,
        max_body_bytes=4096,
    )
    base_url, stop = serve_gateway(settings)
    yield Stack(settings, base_url)
    stop()


@pytest.fixture(scope="session")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose requests' headers and bodies must arrive within STRICT_DEADLINE."""
    started = start_stack(
        tmp_path_factory.mktemp("strict"), http_read_timeout_seconds=STRICT_DEADLINE
    )
    yield started
    started.stop()


@pytest.fixture
def executing(stack: Stack) -> int:
    """A new executing campaign of VDN 1 in the shared stack."""
    answer = stack.client(1).add_campaign(1, example_body())
    assert answer.result_code == "0200000", answer.body
    campaign_id: int = answer.body["returnObject"]["id"]
    return campaign_id
