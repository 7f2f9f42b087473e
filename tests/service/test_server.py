"""What any gRPC client can discover and check: health, reflection, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import (
    GetAccessKeyRequest,
)
from isales.campaign.v2.access_key_service_pb2_grpc import AccessKeyServiceStub
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.channel_config import CHANNEL_OPTIONS
from isales_campaign.internal_token import bearer
from isales_campaign.service.db.engine import create_database_engine
from tests.conftest import ServerFactory, seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess, free_port
from tests.rpc_errors import failure_of
from tests.scrape import sample, started_adds
from tests.waiting import wait_for


def test_health_is_serving(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url)
    health: Any = health_pb2_grpc.HealthStub(channel_to(running.port))
    for service in ("", "isales.campaign.v2.CampaignService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_reflects_an_unreachable_database(
    make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server("postgresql://isales@127.0.0.1:9/none", seed=False, migrate=False)
    health: Any = health_pb2_grpc.HealthStub(channel_to(running.port))
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_lists_the_services(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url)
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel_to(running.port))
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {
        "isales.campaign.v2.CampaignService",
        "isales.campaign.v2.AccessKeyService",
        "grpc.health.v1.Health",
    } <= names
    # A reflection client can also fetch the contract, rules included.
    responses = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="isales.campaign.v2.CampaignService"
                )
            ]
        ),
        timeout=5,
    )
    files = [f for r in responses for f in r.file_descriptor_response.file_descriptor_proto]
    assert files


def test_get_access_key(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url, internal_token="gateway-token")
    stub = AccessKeyServiceStub(channel_to(running.port))
    token = (bearer("gateway-token"),)
    answer = stub.GetAccessKey(
        GetAccessKeyRequest(access_key="ak-vdn-2"), timeout=5, metadata=token
    )
    assert (answer.vdn_id, answer.secret_key) == (2, "sk-vdn-2")
    for metadata, code in [
        (token, grpc.StatusCode.NOT_FOUND),  # an unknown key
        ((bearer("guess"),), grpc.StatusCode.UNAUTHENTICATED),
        ((), grpc.StatusCode.UNAUTHENTICATED),
    ]:
        access_key = "nope" if code == grpc.StatusCode.NOT_FOUND else "ak-vdn-2"
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetAccessKey(
                GetAccessKeyRequest(access_key=access_key), timeout=5, metadata=metadata
            )
        assert failure_of(refused.value).code == code


@pytest.mark.parametrize(
    ("configured", "metadata"),
    [
        ("gateway-token", ()),
        ("gateway-token", (bearer("guess"),)),
        ("gateway-token", (bearer("gateway-token"), bearer("guess"))),
        ("gateway-token", (("authorization", "gateway-token"),)),
        ("", (bearer(""),)),
    ],
    ids=["no token", "wrong token", "two tokens", "not bearer", "none configured"],
)
def test_access_keys_need_the_internal_token(
    sqlite_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    configured: str,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    running = make_server(sqlite_url, internal_token=configured)
    stub = AccessKeyServiceStub(channel_to(running.port))
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetAccessKey(GetAccessKeyRequest(access_key="ak-vdn-2"), timeout=5, metadata=metadata)
    assert failure_of(refused.value).code == grpc.StatusCode.UNAUTHENTICATED


def other_threads_block(pid: int, signals: set[signal.Signals]) -> bool:
    """Whether every thread of the process but the main one blocks `signals` (Linux).

    The main thread waits for them in sigwait, which unblocks them while it waits."""
    mask = sum(1 << (number - 1) for number in signals)
    others = [task for task in Path(f"/proc/{pid}/task").iterdir() if task.name != str(pid)]
    for task in others:
        try:
            status = (task / "status").read_text().splitlines()
        except FileNotFoundError:  # the thread ended since the listing: it blocks nothing more
            continue
        blocked = next(line for line in status if line.startswith("SigBlk:")).split()[1]
        if int(blocked, 16) & mask != mask:
            return False
    return bool(others)


def test_sigterm_lets_in_flight_calls_finish(sqlite_url: str, tmp_path: Path) -> None:
    seed_database(sqlite_url)
    metrics = f"127.0.0.1:{free_port()}"
    server = ServerProcess(
        tmp_path / "server.log",
        ISALES_DATABASE_URL=sqlite_url,
        ISALES_METRICS_LISTEN=metrics,
        ISALES_DATABASE_TIMEOUT_SECONDS="60",  # the calls wait for the test's lock
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = CampaignServiceStub(channel)
    stub.AddCampaign(add_request(example_campaign("warm-up")), timeout=10)
    # A client that watches the server's health, as the README recommends.
    watching = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS)
    states: list[grpc.ChannelConnectivity] = []
    watching.subscribe(states.append, try_to_connect=True)
    wait_for(lambda: states[-1:] == [grpc.ChannelConnectivity.READY], "a healthy server")
    # Another writer holds the database, so the calls below stay in flight in the server.
    engine = create_database_engine(sqlite_url, pool_size=1)
    blocker = engine.connect()
    lock = blocker.begin()  # BEGIN IMMEDIATE: the write lock

    def add(i: int) -> int:
        return stub.AddCampaign(add_request(example_campaign(f"in flight {i}")), timeout=30).id

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            calls = [pool.submit(add, i) for i in range(8)]
            wait_for(lambda: started_adds(f"http://{metrics}/metrics") == 9, "8 calls in flight")
            # Every thread blocks the stop signals, so the kernel cannot hand one to a gRPC
            # thread, where it would wake nobody: the main thread takes them.
            assert other_threads_block(server.process.pid, {signal.SIGTERM, signal.SIGINT})
            assert sample(f"http://{metrics}/metrics", "isales_draining") == 0
            server.process.send_signal(signal.SIGTERM)
            # The watching client hears NOT_SERVING (the server drains from then on).
            wait_for(
                lambda: states[-1:] == [grpc.ChannelConnectivity.TRANSIENT_FAILURE],
                "the watching client hears NOT_SERVING",
            )
            # A call that comes after the signal is refused by the drain, never half-done.
            with pytest.raises(grpc.RpcError) as refused:
                stub.AddCampaign(add_request(example_campaign("too late")), timeout=10)
            failure = failure_of(refused.value)
            assert failure.code == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in failure.message
            # The watching client's calls fail at once on its side and no longer reach the
            # server (where grpcio would cancel one arriving as the server stops).
            with pytest.raises(grpc.RpcError) as unhealthy:
                CampaignServiceStub(watching).AddCampaign(
                    add_request(example_campaign("not sent")), timeout=10
                )
            assert failure_of(unhealthy.value).code == grpc.StatusCode.UNAVAILABLE
            assert started_adds(f"http://{metrics}/metrics") == 10  # not one more
            # An operator sees the drain, and the calls it refused (0200006: retry elsewhere).
            assert sample(f"http://{metrics}/metrics", "isales_draining") == 1
            shutting_down = sample(
                f"http://{metrics}/metrics",
                "isales_grpc_server_refused_total",
                grpc_type="unary",
                grpc_service="isales.campaign.v2.CampaignService",
                grpc_method="AddCampaign",
                grpc_code="UNAVAILABLE",
                result_code="0200006",
            )
            assert shutting_down == 1
            lock.rollback()
            # Calls in flight when the signal came are finished, not dropped.
            assert len({call.result(timeout=30) for call in calls}) == 8
    finally:
        blocker.close()
        engine.dispose()
    assert server.process.wait(30) == 0, server.log_text()
    channel.close()
    watching.close()
    assert "gRPC server stopped" in server.log_text()


@pytest.mark.parametrize("command", ["grpc-server", "serve"])
def test_a_taken_port_is_a_one_line_error(tmp_path: Path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, "-m", "isales_campaign.cli", command],
            env={
                **os.environ,
                "ISALES_GRPC_LISTEN": address,
                "ISALES_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
                "ISALES_DATABASE_URL": f"sqlite:///{tmp_path / 'isales.db'}",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"isales: cannot listen on {address}" in result.stderr
    assert "Traceback" not in result.stderr


def test_request_id_follows_the_call_into_the_log(sqlite_url: str, tmp_path: Path) -> None:
    seed_database(sqlite_url)
    server = ServerProcess(tmp_path / "server.log", ISALES_DATABASE_URL=sqlite_url)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for number in (42, 43):  # each call its own, the same method twice
            CampaignServiceStub(channel).AddCampaign(
                add_request(example_campaign(f"campaign {number}")),
                metadata=(("x-request-id", f"req-{number}"),),
                timeout=10,
            )
    assert server.stop() == 0
    added = [
        orjson.loads(line) for line in server.log_text().splitlines() if '"campaign added"' in line
    ]
    assert [entry["request_id"] for entry in added] == ["req-42", "req-43"]


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05abc", b"\x12\x80\x80\x80\x80\x10"])
def test_malformed_protobuf_is_invalid_argument(
    sqlite_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    payload: bytes,
) -> None:
    running = make_server(sqlite_url)
    channel = channel_to(running.port)
    raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/isales.campaign.v2.CampaignService/AddCampaign",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.RpcError) as caught:
        raw(payload, timeout=5)
    failure = failure_of(caught.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000008"
    # The server keeps serving.
    stub = CampaignServiceStub(channel)
    assert stub.AddCampaign(add_request(example_campaign()), timeout=10).id


def oversized_add(size: int) -> bytes:
    """An AddCampaign of `size` bytes or more (a description no campaign may have)."""
    request = add_request(example_campaign())
    request.campaign.description = "x" * size
    return request.SerializeToString()


def test_a_message_larger_than_any_campaign_is_refused_as_it_arrives(
    sqlite_url: str, tmp_path: Path
) -> None:
    """16 callers at once sending 3 MB each are refused before their messages are read whole,
    and the server stays within the README's 150 MB."""
    seed_database(sqlite_url)
    server = ServerProcess(tmp_path / "server.log", ISALES_DATABASE_URL=sqlite_url)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/isales.campaign.v2.CampaignService/AddCampaign",
        request_serializer=None,
        response_deserializer=None,
    )

    def send(payload: bytes) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            raw(payload, timeout=30)
        return failure_of(caught.value).code

    payload = oversized_add(3 * 1024 * 1024)
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = set(pool.map(send, [payload] * 16))
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert resident_megabytes(server.process.pid) <= 150
    # Within the limit a message is read, and its campaign refused by the rules.
    assert send(oversized_add(900 * 1024)) == grpc.StatusCode.INVALID_ARGUMENT
    assert CampaignServiceStub(channel).AddCampaign(add_request(example_campaign()), timeout=10).id
    channel.close()
    assert server.stop() == 0


def resident_megabytes(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    kilobytes = next(line for line in status if line.startswith("VmRSS:")).split()[1]
    return int(kilobytes) / 1024


def test_gateway_style_request_ids_are_kept(sqlite_url: str, tmp_path: Path) -> None:
    seed_database(sqlite_url)
    server = ServerProcess(tmp_path / "server.log", ISALES_DATABASE_URL=sqlite_url)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        CampaignServiceStub(channel).AddCampaign(
            add_request(example_campaign()), metadata=(("x-request-id", "a/b+c=@d"),), timeout=10
        )
    assert server.stop() == 0
    assert '"request_id":"a/b+c=@d"' in server.log_text()


def test_the_internal_token_can_be_required_for_every_method(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url, internal_token="secret", require_internal_token=True)
    channel = channel_to(running.port)
    stub = CampaignServiceStub(channel)
    for metadata in [(), (bearer("wrong"),)]:
        with pytest.raises(grpc.RpcError) as refused:
            stub.AddCampaign(add_request(example_campaign()), metadata=metadata, timeout=10)
        assert failure_of(refused.value).code == grpc.StatusCode.UNAUTHENTICATED
    added = stub.AddCampaign(
        add_request(example_campaign()), metadata=(bearer("secret"),), timeout=10
    )
    assert added.id > 0
    # Health and reflection answer probes and tools that hold no token.
    health: Any = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_an_idle_connection_is_closed(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url, grpc_max_idle_seconds=0.5)
    channel = channel_to(running.port)
    states: list[grpc.ChannelConnectivity] = []
    channel.subscribe(states.append, try_to_connect=False)
    health: Any = health_pb2_grpc.HealthStub(channel)
    health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    # grpcio delivers connectivity changes on a thread of its own, maybe after the call
    # returned: wait for READY to arrive rather than expect it already there.
    wait_for(lambda: grpc.ChannelConnectivity.READY in states, "the connection to be ready")
    # The server sends GOAWAY once the connection has carried no call for a while.
    wait_for(lambda: states[-1] == grpc.ChannelConnectivity.IDLE, "the idle connection to close")
    channel.unsubscribe(states.append)


def test_requiring_the_token_without_one_refuses_everyone(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    running = make_server(sqlite_url, internal_token="", require_internal_token=True)
    stub = CampaignServiceStub(channel_to(running.port))
    for metadata in [(), (bearer(""),)]:
        with pytest.raises(grpc.RpcError) as refused:
            stub.AddCampaign(add_request(example_campaign()), metadata=metadata, timeout=10)
        assert failure_of(refused.value).code == grpc.StatusCode.UNAUTHENTICATED
