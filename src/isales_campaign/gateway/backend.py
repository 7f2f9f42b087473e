"""What the gateway calls: the campaign service (over a few gRPC connections, or in
process), with a deadline and the request id on every call, and the access keys it keeps;
and whether a request would be served now (readiness)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from isales.campaign.v2 import access_key_service_pb2_grpc, campaign_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import GetAccessKeyRequest

from isales_campaign.channel_config import (
    CAMPAIGN_SERVICE,
    RETRY_BACKOFF_SECONDS,
    RETRY_MAX_BACKOFF_SECONDS,
    gateway_service_config,
    open_channel,
)
from isales_campaign.config import TlsFiles
from isales_campaign.internal_token import ACCESS_KEY_METADATA_KEY, bearer
from isales_campaign.logs import REQUEST_ID_HEADER

log = logging.getLogger("isales_campaign.gateway")

#: An access key is kept this long after it was fetched: the gateway verifies signatures
#: without a call per request, and a revoked key stops working within this.
ACCESS_KEY_CACHE_SECONDS = 30.0
#: An unknown access key is not asked about again for this long.
UNKNOWN_KEY_CACHE_SECONDS = 5.0
ACCESS_KEY_CACHE_SIZE = 10_000

#: A readiness check waits this long at most for the service (less when the gateway's
#: deadline is shorter), and its outcome is kept this long: probes cost the service at most
#: two cheap calls a second, however many ask.
READINESS_TIMEOUT_SECONDS = 2.0
READINESS_CACHE_SECONDS = 1.0
#: The access key the readiness check asks for: an authenticated call that changes nothing,
#: answered NOT_FOUND (or with the key, should one be so named) only to a caller whose token
#: the service accepts. Its calls carry the request id below, in the service's log.
PROBE_ACCESS_KEY = "isales-readiness-probe"
PROBE_REQUEST_ID = "readiness-probe"
#: A call refused by a draining server is sent again only while this much of its deadline
#: is left for the new attempt.
LAST_ATTEMPT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a request would be served now; if not, the part that fails and why."""

    #: "" when ready; "service": it cannot be reached or is not SERVING; "token": it refuses
    #: this gateway's internal token.
    failing: str = ""
    reason: str = ""

    @property
    def ready(self) -> bool:
        return not self.failing


READY = Readiness()


@dataclass(frozen=True, slots=True)
class AccessKey:
    vdn_id: int
    secret_key: str = field(repr=False)  # never in logs or tracebacks


Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)


class Backend(ABC):
    """What the gateway calls: the campaign service's methods, with the deadline and the
    request id, and the access keys it verifies signatures with (cached). `GrpcBackend`
    reaches the service over gRPC; `isales serve` hands the gateway one that calls the
    service of its own process (`isales_campaign.local_backend`). Open it with
    `await start()` inside the event loop that makes the calls."""

    def __init__(self, timeout: float, internal_token: str) -> None:
        self._timeout = timeout
        self._internal_token = internal_token
        self._token = bearer(internal_token)
        self._readiness: tuple[float, Readiness] = (0.0, READY)
        self._readiness_lock = asyncio.Lock()
        self._access_keys: dict[str, tuple[float, AccessKey | None]] = {}
        self._keys: access_key_service_pb2_grpc.AccessKeyServiceAsyncStub | None = None
        self._campaigns: campaign_service_pb2_grpc.CampaignServiceAsyncStub | None = None

    @abstractmethod
    async def start(self) -> None:
        """Set up the stubs `_keys` and `_campaigns`."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _serving(self, timeout: float) -> Readiness:
        """Whether the campaign service answers its health check with SERVING."""

    async def ready(self) -> Readiness:
        """Whether a request would be served now: the service answers, reports SERVING and
        accepts this gateway's internal token. Checked at most every READINESS_CACHE_SECONDS
        (concurrent probes share one check), each call bounded by READINESS_TIMEOUT_SECONDS."""
        async with self._readiness_lock:
            expires, readiness = self._readiness
            if expires <= time.monotonic():
                readiness = await self._check_readiness()
                self._readiness = (time.monotonic() + READINESS_CACHE_SECONDS, readiness)
        return readiness

    async def _check_readiness(self) -> Readiness:
        timeout = min(READINESS_TIMEOUT_SECONDS, self._timeout)
        serving = await self._serving(timeout)
        if not serving.ready:
            return serving
        if not self._internal_token:
            return Readiness(
                "token",
                "ISALES_INTERNAL_TOKEN is not set: the service gives this gateway no access keys",
            )
        assert self._keys is not None, "Backend.start() was not awaited"
        try:
            # Fail fast: a probe does not wait for a server to become ready.
            await self._keys.GetAccessKey(
                GetAccessKeyRequest(access_key=PROBE_ACCESS_KEY),
                timeout=timeout,
                metadata=self._metadata(PROBE_REQUEST_ID),
                wait_for_ready=False,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                return Readiness(
                    "token",
                    "the campaign service refuses this gateway's ISALES_INTERNAL_TOKEN: "
                    + str(error.details()),
                )
            if error.code() != grpc.StatusCode.NOT_FOUND:
                return _unreachable(error)
        return READY

    async def access_key(self, access_key: str, request_id: str) -> AccessKey | None:
        """The VDN and secret of an access key (None: no such key), from the service at most
        every ACCESS_KEY_CACHE_SECONDS. grpc.aio.AioRpcError when the service fails or
        refuses this gateway."""
        assert self._keys is not None, "Backend.start() was not awaited"
        now = time.monotonic()
        cached = self._access_keys.get(access_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        key: AccessKey | None
        try:
            answer = await self._keys.GetAccessKey(
                GetAccessKeyRequest(access_key=access_key),
                timeout=self._timeout,
                metadata=self._metadata(request_id),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise
            key, lifetime = None, UNKNOWN_KEY_CACHE_SECONDS
        else:
            key, lifetime = AccessKey(answer.vdn_id, answer.secret_key), ACCESS_KEY_CACHE_SECONDS
        if len(self._access_keys) >= ACCESS_KEY_CACHE_SIZE:
            # Dicts keep insertion order: drop the oldest tenth.
            for stale in list(self._access_keys)[: ACCESS_KEY_CACHE_SIZE // 10]:
                del self._access_keys[stale]
        self._access_keys[access_key] = (now + lifetime, key)
        return key

    @property
    def campaigns(self) -> campaign_service_pb2_grpc.CampaignServiceAsyncStub:
        assert self._campaigns is not None, "Backend.start() was not awaited"
        return self._campaigns

    async def call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        request_id: str,
        access_key: str = "",
    ) -> Response:
        """One call of a `campaigns` method, with the deadline, the request id and the access
        key of the caller it is made for."""
        return await self._send(method, request, request_id, access_key, self._timeout)

    async def _send(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        request_id: str,
        access_key: str,
        timeout: float,
    ) -> Response:
        metadata = self._metadata(request_id)
        if access_key:
            metadata += ((ACCESS_KEY_METADATA_KEY, access_key),)
        return await method(request, timeout=timeout, metadata=metadata)

    def _metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        """The request id, and the internal token (every call presents it, so that services
        that require it on every method serve this gateway)."""
        return ((REQUEST_ID_HEADER, request_id), self._token)


class GrpcBackend(Backend):
    """The campaign service at `target`, over `connections` gRPC channels that each hold
    their own connections and take calls in turn: the kernel spreads the connections (not the
    calls) over the processes of `isales grpc-server --workers N`, so that one connection
    would send every call to one of them.

    Each channel is configured as `channel_config.gateway_service_config` says: a call waits
    for a ready server within its deadline, and is sent again after an UNAVAILABLE when
    repeating it is safe (a read; an add, which carries its idempotency key). Beyond that
    (`call`), any call that the service refused saying it did nothing (a `RetryInfo`: a
    draining server) is sent again, a change included, until its deadline is near."""

    def __init__(
        self,
        target: str,
        timeout: float,
        internal_token: str,
        tls: TlsFiles | None = None,
        connections: int = 1,
    ) -> None:
        super().__init__(timeout, internal_token)
        self._target = target
        self._tls = tls
        self._connections = connections
        self._channels: list[grpc.aio.Channel] = []
        self._pool: list[campaign_service_pb2_grpc.CampaignServiceAsyncStub] = []
        self._turns = itertools.cycle([0])
        # Any: the type stubs declare HealthStub without its methods.
        self._health: list[Any] = []

    async def start(self) -> None:
        config = gateway_service_config()
        # Every replica a `dns:///` target resolves to gets calls while it is healthy.
        self._channels = [
            open_channel(self._target, self._tls, config=config, own_connection=True)
            for _ in range(self._connections)
        ]
        self._pool = [
            campaign_service_pb2_grpc.CampaignServiceStub(channel) for channel in self._channels
        ]
        self._health = [health_pb2_grpc.HealthStub(channel) for channel in self._channels]
        self._turns = itertools.cycle(range(len(self._channels)))
        self._keys = access_key_service_pb2_grpc.AccessKeyServiceStub(self._channels[0])
        self._campaigns = self._pool[0]

    async def close(self) -> None:
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close(grace=None)

    @property
    def campaigns(self) -> campaign_service_pb2_grpc.CampaignServiceAsyncStub:
        """The stub of the next channel in turn."""
        assert self._pool, "Backend.start() was not awaited"
        return self._pool[next(self._turns)]

    async def call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        request_id: str,
        access_key: str = "",
    ) -> Response:
        """As `Backend.call`; a call the service refused saying it did nothing (RetryInfo) is
        sent again after a short random wait, as long as its deadline is not near."""
        deadline = time.monotonic() + self._timeout
        backoff = RETRY_BACKOFF_SECONDS
        while True:
            try:
                return await self._send(
                    method, request, request_id, access_key, deadline - time.monotonic()
                )
            except grpc.aio.AioRpcError as error:
                delay = retry_delay(error)
                if delay is None:
                    raise
                wait = max(delay, random.uniform(0, backoff))  # noqa: S311 (jitter)
                if time.monotonic() + wait + LAST_ATTEMPT_SECONDS > deadline:
                    raise  # an attempt cut short would leave its outcome unknown
                log.info(
                    "the service did nothing and asked to be called again",
                    extra={"request_id": request_id, "details": error.details()},
                )
                await asyncio.sleep(wait)
                backoff = min(2 * backoff, RETRY_MAX_BACKOFF_SECONDS)

    async def _serving(self, timeout: float) -> Readiness:
        """Whether the service (one of its servers, over the next channel in turn) answers
        its health check with SERVING."""
        assert self._health, "Backend.start() was not awaited"
        request = health_pb2.HealthCheckRequest(service=CAMPAIGN_SERVICE)
        try:
            answer = await self._health[next(self._turns)].Check(
                request, timeout=timeout, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as error:
            return _unreachable(error)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            return Readiness("service", f"the campaign service reports {status}")
        return READY


def _unreachable(error: grpc.aio.AioRpcError) -> Readiness:
    return Readiness(
        "service",
        f"the campaign service did not answer: {error.code().name}: {error.details()}",
    )


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    """The wait the service asked for before the call is sent again, when it refused it
    UNAVAILABLE saying that it did nothing (a `RetryInfo`); None otherwise."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details that contradict the call's status: not trustworthy
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToTimedelta().total_seconds())
    return None
