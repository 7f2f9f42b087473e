"""A database that stops answering never hangs a caller: every wait of the service is
bounded (ISALES_DATABASE_TIMEOUT_SECONDS), the call is answered UNAVAILABLE (0200006), the
health check turns NOT_SERVING when the database itself hangs, and all recovers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from isales.campaign.v2.campaign_service_pb2 import GetCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import text
from sqlalchemy.engine import make_url

from isales_campaign.service.db.engine import create_database_engine
from tests.conftest import ServerFactory, fresh_postgres_database, seed_database
from tests.examples import add_request, example_campaign
from tests.proxy import FreezableProxy
from tests.rpc_errors import failure_of
from tests.waiting import wait_for

#: The bound the servers of these tests get, in seconds.
BOUND = 1.0


@pytest.fixture
def stalling_address() -> Iterator[str]:
    """host:port of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    host, port = listener.getsockname()
    yield f"{host}:{port}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def health_of(channel: grpc.Channel) -> int:
    health: Any = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    status: int = response.status
    return status


def refused_add(stub: CampaignServiceStub, name: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(add_request(example_campaign(name)), timeout=30)
    failure = failure_of(caught.value)
    return failure.code, failure.reason


def test_a_database_that_never_answers_gives_unavailable_and_not_serving(
    stalling_address: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    running = make_server(
        f"postgresql://isales@{stalling_address}/isales",
        seed=False,
        migrate=False,
        database_timeout_seconds=BOUND,
    )
    channel = channel_to(running.port)
    assert health_of(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    stub = CampaignServiceStub(channel)
    assert refused_add(stub, "never stored") == (grpc.StatusCode.UNAVAILABLE, "0200006")


def test_a_tenant_locked_elsewhere_gives_unavailable_then_recovers(
    postgres_admin_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    for url in fresh_postgres_database(postgres_admin_url):
        running = make_server(url, database_timeout_seconds=BOUND)
        stub = CampaignServiceStub(channel_to(running.port))
        engine = create_database_engine(url, pool_size=1)
        try:
            with engine.connect() as other_session:
                transaction = other_session.begin()
                other_session.execute(text("SELECT * FROM tenants WHERE vdn_id = 1 FOR UPDATE"))
                assert refused_add(stub, "waits") == (grpc.StatusCode.UNAVAILABLE, "0200006")
                # The database itself answers: the service stays in rotation.
                assert health_of(channel_to(running.port)) == (
                    health_pb2.HealthCheckResponse.SERVING
                )
                transaction.rollback()
            assert stub.AddCampaign(add_request(example_campaign("after")), timeout=30).id > 0
        finally:
            engine.dispose()


def test_a_sqlite_file_locked_by_another_writer_gives_unavailable_then_recovers(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    seed_database(sqlite_url)
    running = make_server(sqlite_url, seed=False, database_timeout_seconds=BOUND)
    stub = CampaignServiceStub(channel_to(running.port))
    engine = create_database_engine(sqlite_url, pool_size=1)
    try:
        with engine.connect() as other_writer:
            transaction = other_writer.begin()  # BEGIN IMMEDIATE: the file's write lock
            assert refused_add(stub, "waits") == (grpc.StatusCode.UNAVAILABLE, "0200006")
            transaction.rollback()
        assert stub.AddCampaign(add_request(example_campaign("after")), timeout=30).id > 0
    finally:
        engine.dispose()


@pytest.fixture
def proxied_postgres(postgres_admin_url: str) -> Iterator[tuple[str, FreezableProxy]]:
    """A fresh, seeded PostgreSQL database and a proxy in front of it: (URL via the proxy,
    the proxy)."""
    for url in fresh_postgres_database(postgres_admin_url):
        seed_database(url)
        parsed = make_url(url)
        proxy = FreezableProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        try:
            yield parsed.set(port=proxy.port).render_as_string(hide_password=False), proxy
        finally:
            proxy.close()


def serving_through(
    url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    timeout: float = BOUND,
) -> grpc.Channel:
    """A channel to a server on `url` whose pool holds a connection already (one add)."""
    running = make_server(url, seed=False, migrate=False, database_timeout_seconds=timeout)
    channel = channel_to(running.port)
    CampaignServiceStub(channel).AddCampaign(add_request(example_campaign("warm-up")), timeout=30)
    return channel


def test_a_frozen_database_is_cut_off_then_recovers(
    proxied_postgres: tuple[str, FreezableProxy],
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    url, proxy = proxied_postgres
    channel = serving_through(url, make_server, channel_to)
    stub = CampaignServiceStub(channel)
    proxy.freeze()  # connections stay open, nothing comes back: statement_timeout cannot help
    assert refused_add(stub, "during") == (grpc.StatusCode.UNAVAILABLE, "0200006")
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    wait_for(lambda: health_of(channel) == not_serving, "the next health probe")
    proxy.thaw()
    assert stub.AddCampaign(add_request(example_campaign("after")), timeout=30).id > 0


def test_a_stopped_database_gives_unavailable_for_every_call_then_recovers(
    proxied_postgres: tuple[str, FreezableProxy],
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    """The pooled connections die with the server: each call that gets one is answered
    UNAVAILABLE (none INTERNAL), and the pool replaces them once the server is back."""
    url, proxy = proxied_postgres
    channel = serving_through(url, make_server, channel_to)
    stub = CampaignServiceStub(channel)
    added = stub.AddCampaign(add_request(example_campaign("before")), timeout=30)
    proxy.stop()
    for attempt in range(4):
        assert refused_add(stub, f"during-{attempt}") == (grpc.StatusCode.UNAVAILABLE, "0200006")
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetCampaign(GetCampaignRequest(vdn_id=1, campaign_id=added.id), timeout=30)
        assert failure_of(caught.value).code == grpc.StatusCode.UNAVAILABLE
    proxy.thaw()
    assert stub.AddCampaign(add_request(example_campaign("after")), timeout=30).id > 0


def test_a_commit_never_confirmed_is_not_reported_as_nothing_stored(
    proxied_postgres: tuple[str, FreezableProxy],
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    url, proxy = proxied_postgres
    stub = CampaignServiceStub(serving_through(url, make_server, channel_to))
    proxy.hold_replies_after(b"COMMIT")  # the server commits; its answer never arrives
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(add_request(example_campaign("unconfirmed")), timeout=30)
    failure = failure_of(caught.value)
    assert (failure.code, failure.reason) == (grpc.StatusCode.UNAVAILABLE, "0200006")
    assert "may have been made" in failure.message
    proxy.thaw()
    engine = create_database_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM campaigns")).scalars().all()
    finally:
        engine.dispose()
    assert "unconfirmed" in names  # stored indeed: "nothing was changed" would have lied


def test_a_frozen_database_is_answered_before_the_callers_deadline(
    proxied_postgres: tuple[str, FreezableProxy],
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
) -> None:
    url, proxy = proxied_postgres
    # The service's own bound is far off: the caller's deadline is the nearer one.
    stub = CampaignServiceStub(serving_through(url, make_server, channel_to, timeout=60.0))
    proxy.freeze()
    with pytest.raises(grpc.RpcError) as caught:
        stub.AddCampaign(add_request(example_campaign("during")), timeout=4)
    # The service gave up first and said so; the caller did not have to time out.
    failure = failure_of(caught.value)
    assert (failure.code, failure.reason) == (grpc.StatusCode.UNAVAILABLE, "0200006")
    proxy.thaw()
    assert stub.AddCampaign(add_request(example_campaign("after")), timeout=30).id > 0
