"""The gateway's backend when the service runs in the same process (`isales serve`).

The gateway sends the same request messages and gets the same responses and the same
errors (`grpc.aio.AioRpcError` with the rich status) as over gRPC, but a call is a function
call on a worker thread instead of a round trip through two gRPC stacks. It runs in the same
call chain as a call over gRPC (`service.call_chain`: request id, deadline, token, drain,
metrics, answers, log line). This module is part of the composition root: it knows both
halves, so the gateway still never imports the service.
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
from isales_campaign.gateway.backend import READY, Backend, Readiness
from isales_campaign.service.call_chain import CallChain, ChainedMethod
from isales_campaign.service.errors import CallFailed
from isales_campaign.service.server import ACCESS_KEY_SERVICE_NAME, RunningServer

Metadata = Sequence[tuple[str, str]]
_NO_CONTEXT = cast(grpc.ServicerContext, None)


def _rpc_error(
    code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, str | bytes]] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


class _LocalMethod:
    """One servicer method, called like a `grpc.aio` unary-unary stub method."""

    def __init__(
        self,
        chained: ChainedMethod,
        method: Callable[[Any, Any], Message],
        executor: ThreadPoolExecutor,
    ) -> None:
        self._chained = chained
        self._method = method
        self._executor = executor

    async def __call__(
        self,
        request: Message,
        *,
        timeout: float,
        metadata: Metadata,
        wait_for_ready: bool | None = None,  # noqa: ARG002 (no channel: always ready)
    ) -> Message:
        call = partial(self._serve, request, metadata, time.monotonic() + timeout)
        served = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            # The gateway waits no longer than over gRPC; the call may still finish.
            return await asyncio.wait_for(served, timeout)
        except TimeoutError:
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None

    def _serve(self, request: Message, metadata: Metadata, deadline: float) -> Message:
        try:
            response: Message = self._chained.serve(
                request,
                metadata,
                deadline - time.monotonic(),
                # The servicers adapt requests only: they read nothing of a gRPC context.
                lambda request: self._method(request, _NO_CONTEXT),
            )
        except CallFailed as failed:
            status = failed.status
            raise _rpc_error(status.code, status.details, status.trailing_metadata) from None
        return response


class _LocalStub:
    """Every method of a servicer as a `_LocalMethod`, by its gRPC name (the methods of the
    generated base class `service`, whose full name is `name`)."""

    def __init__(
        self,
        servicer: object,
        service: type,
        name: str,
        chain: CallChain,
        executor: ThreadPoolExecutor,
    ) -> None:
        for method in vars(service):
            if not method.startswith("_"):
                chained = chain.method(f"/{name}/{method}")
                setattr(self, method, _LocalMethod(chained, getattr(servicer, method), executor))


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
                CAMPAIGN_SERVICE,
                self._running.chain,
                self._executor,
            ),
        )
        self._keys = cast(
            "access_key_service_pb2_grpc.AccessKeyServiceAsyncStub",
            _LocalStub(
                self._running.access_keys,
                access_key_service_pb2_grpc.AccessKeyServiceServicer,
                ACCESS_KEY_SERVICE_NAME,
                self._running.chain,
                self._executor,
            ),
        )

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _serving(self, timeout: float) -> Readiness:  # noqa: ARG002 (answers at once)
        """Whether the service in this process reports SERVING."""
        request = health_pb2.HealthCheckRequest(service=CAMPAIGN_SERVICE)
        answer = self._running.health.Check(request, _NO_CONTEXT)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            return Readiness("service", f"the campaign service reports {status}")
        return READY
