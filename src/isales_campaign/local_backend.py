"""The gateway's backend when the service runs in the same process (`isales serve`).

The gateway sends the same request messages and gets the same responses and the same
errors (`grpc.aio.AioRpcError` with the rich status) as over gRPC, but a call is a function
call on a worker thread instead of a round trip through two gRPC stacks. This module is
part of the composition root: it knows both halves, so the gateway still never imports the
service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from isales.campaign.v2 import access_key_service_pb2_grpc, campaign_service_pb2_grpc

from isales_campaign.channel_config import CAMPAIGN_SERVICE
from isales_campaign.gateway.backend import Backend
from isales_campaign.service.interceptors import CallScope, failure_status, request_id_of
from isales_campaign.service.server import RunningServer

Metadata = Sequence[tuple[str, str]]


class _LocalContext:
    """The parts of `grpc.ServicerContext` that the servicers read."""

    def __init__(self, metadata: Metadata, deadline: float) -> None:
        self._metadata = metadata
        self._deadline = deadline

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())


def _rpc_error(
    code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, str | bytes]] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


class _LocalMethod:
    """One servicer method, called like a `grpc.aio` unary-unary stub method."""

    def __init__(
        self, name: str, method: Callable[[Any, Any], Message], executor: ThreadPoolExecutor
    ) -> None:
        self._name = name
        self._method = method
        self._executor = executor

    async def __call__(self, request: Message, *, timeout: float, metadata: Metadata) -> Message:
        call = partial(self._serve, request, metadata, time.monotonic() + timeout)
        served = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            # The gateway waits no longer than over gRPC; the call may still finish.
            return await asyncio.wait_for(served, timeout)
        except TimeoutError:
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def _serve(self, request: Message, metadata: Metadata, deadline: float) -> Message:
        """What the interceptor does for a call over gRPC, minus the wire."""
        context = _LocalContext(metadata, deadline)
        if context.time_remaining() <= 0:  # waited for a worker past the deadline
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        scope = CallScope(request_id_of(metadata), context.time_remaining())
        try:
            return self._method(request, context)
        except Exception as error:
            status = failure_status(self._name, error)
            raise _rpc_error(status.code, status.details, status.trailing_metadata) from None
        finally:
            scope.close()


class _LocalStub:
    """Every method of a servicer as a `_LocalMethod`, by its gRPC name (the methods of the
    generated base class `service`)."""

    def __init__(self, servicer: object, service: type, executor: ThreadPoolExecutor) -> None:
        for name in vars(service):
            if not name.startswith("_"):
                setattr(self, name, _LocalMethod(name, getattr(servicer, name), executor))


class LocalBackend(Backend):
    """A `Backend` that calls the servicers of `running` on `workers` threads."""

    def __init__(self, running: RunningServer, timeout: float, internal_token: str, workers: int):
        super().__init__(timeout, internal_token)
        self._running = running
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="local")
        # Typed as the gRPC stubs they stand in for: same names, same call signature.
        self._campaigns = cast(
            "campaign_service_pb2_grpc.CampaignServiceAsyncStub",  # only in the .pyi
            _LocalStub(
                self._running.campaigns,
                campaign_service_pb2_grpc.CampaignServiceServicer,
                self._executor,
            ),
        )
        self._keys = cast(
            "access_key_service_pb2_grpc.AccessKeyServiceAsyncStub",
            _LocalStub(
                self._running.access_keys,
                access_key_service_pb2_grpc.AccessKeyServiceServicer,
                self._executor,
            ),
        )

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def ready(self) -> bool:
        """Whether the service in this process reports SERVING."""
        request = health_pb2.HealthCheckRequest(service=CAMPAIGN_SERVICE)
        answer = self._running.health.Check(request, cast(grpc.ServicerContext, None))
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
