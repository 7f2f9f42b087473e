"""The health service: statuses checked and watched, and no deadlock when watches end while
statuses change (grpcio's own servicer stops for good there: a drained server never stopped)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from isales_campaign.service.health import NOT_SERVING, SERVING, HealthServicer

#: Connections and watches of each: a gateway's channels, each watching.
CONNECTIONS = 20
WATCHES = 5


@pytest.fixture
def served() -> Iterator[tuple[HealthServicer, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(8))
    servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(0).wait(10)


def _request(service: str = "s") -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest(service=service)


def test_check_and_watch(served: tuple[HealthServicer, int]) -> None:
    servicer, port = served
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the type stubs lack its methods
        assert stub.Check(_request(""), timeout=5).status == SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(_request(), timeout=5)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(_request(), timeout=10)
        statuses = [next(watch).status]  # SERVICE_UNKNOWN until set
        servicer.set("s", SERVING)
        statuses.append(next(watch).status)
        servicer.enter_graceful_shutdown()
        statuses.append(next(watch).status)
        servicer.set("s", SERVING)  # ignored from now on
        assert stub.Check(_request(), timeout=5).status == NOT_SERVING
        watch.cancel()
    assert statuses == [health_pb2.HealthCheckResponse.SERVICE_UNKNOWN, SERVING, NOT_SERVING]


def test_watches_ending_while_the_status_changes_stop_nothing(
    served: tuple[HealthServicer, int],
) -> None:
    servicer, port = served
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CONNECTIONS)
    ]
    stubs: list[Any] = [health_pb2_grpc.HealthStub(channel) for channel in channels]
    watches = [stub.Watch(_request()) for stub in stubs for _ in range(WATCHES)]
    stop, flipped = threading.Event(), threading.Event()

    def flip() -> None:
        turn = 0
        while not stop.is_set():
            servicer.set("s", (SERVING, NOT_SERVING)[turn % 2])
            turn += 1
        flipped.set()

    threading.Thread(target=flip, daemon=True).start()
    stop.wait(0.3)
    for watch in watches:
        watch.cancel()
    for channel in channels:
        channel.close()
    stop.wait(0.2)
    stop.set()
    assert flipped.wait(10), "set() is stuck: the health service deadlocked"
    servicer.enter_graceful_shutdown()
