"""The gateway's backend when the service runs in the same process (`isales serve`).

The gateway sends the same request messages and gets the same responses and the same
errors (`grpc.aio.AioRpcError` with the rich status) as over gRPC, but a call is a function
call instead of a round trip through two gRPC stacks. It runs in the same call chain as a
call over gRPC (`service.call_chain`: request id, deadline, token, drain, metrics, answers,
log line). This module is part of the composition root: it knows both halves, so the gateway
still never imports the service.

A read runs on a worker thread, so that a long list never holds the event loop. On SQLite, a
change runs on the loop itself, in a greenlet: its statements are short, and its commit is
shared with the changes of the calls the loop serves in the same pass, which the greenlet
waits for while the loop goes on (see `db.group_commit`). That spares the hand-off to a
thread and back, and the threads' turns: a REST add at 32 concurrent calls costs 27 % less of
the server's CPU (621 against 847 us) and its p99 fell from 48 to 29 ms; at 1, where nothing
is shared, 1-4 % more (`python -m bench.compare`, pinned). On PostgreSQL every call runs on a
thread: its statements are round trips over the network.
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

from isales_campaign.channel_config import CAMPAIGN_SERVICE, CHANGES, KEYED_ADD
from isales_campaign.gateway.backend import READY, Backend, Readiness
from isales_campaign.service.call_chain import CallChain, ChainedMethod
from isales_campaign.service.db.group_commit import in_loop_greenlet
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


#: The methods that change campaigns (`(service, method)`).
_CHANGES = frozenset((KEYED_ADD, *CHANGES))


class _LocalMethod:
    """One servicer method, called like a `grpc.aio` unary-unary stub method; on `executor`'s
    threads, or (`on_loop`) in a greenlet on the event loop."""

    def __init__(
        self,
        chained: ChainedMethod,
        method: Callable[[Any, Any], Message],
        executor: ThreadPoolExecutor,
        *,
        on_loop: bool,
    ) -> None:
        self._chained = chained
        self._method = method
        self._executor = executor
        self._on_loop = on_loop

    async def __call__(
        self,
        request: Message,
        *,
        timeout: float,
        metadata: Metadata,
        wait_for_ready: bool | None = None,  # noqa: ARG002 (no channel: always ready)
    ) -> Message:
        deadline = time.monotonic() + timeout
        served: asyncio.Future[Message]
        if self._on_loop:
            spawned = in_loop_greenlet(self._serve, request, metadata, deadline)
            served = asyncio.ensure_future(spawned)
        else:
            call = partial(self._serve, request, metadata, deadline)
            served = asyncio.get_running_loop().run_in_executor(self._executor, call)
        # The gateway waits no longer than over gRPC; the call may still finish.
        try:
            await asyncio.wait((served,), timeout=timeout)
        finally:
            if not served.done():  # timed out, or the request was cancelled
                served.add_done_callback(_forget)
        if not served.done():
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        return served.result()

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


def _forget(served: asyncio.Future[Message]) -> None:
    """Take the outcome of a call nobody waits for any more (its failure was logged)."""
    if not served.cancelled():
        served.exception()


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
        *,
        changes_on_loop: bool,
    ) -> None:
        for method in vars(service):
            if not method.startswith("_"):
                chained = chain.method(f"/{name}/{method}")
                on_loop = changes_on_loop and (name, method) in _CHANGES
                local = _LocalMethod(chained, getattr(servicer, method), executor, on_loop=on_loop)
                setattr(self, method, local)


class LocalBackend(Backend):
    """A `Backend` that calls the servicers of `running` on `workers` threads, its changes on
    the event loop when the store commits writes in groups (SQLite)."""

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
                changes_on_loop=self._running.store.commits_in_groups,
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
                changes_on_loop=self._running.store.commits_in_groups,
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
