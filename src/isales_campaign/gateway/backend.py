"""What the gateway calls: the campaign service (over one gRPC channel, or in process),
with a deadline and the request id on every call, and the access keys it keeps."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from isales.campaign.v2 import access_key_service_pb2_grpc, campaign_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import GetAccessKeyRequest

from isales_campaign.channel_config import CAMPAIGN_SERVICE, open_channel
from isales_campaign.config import TlsFiles
from isales_campaign.internal_token import ACCESS_KEY_METADATA_KEY, bearer
from isales_campaign.logs import REQUEST_ID_HEADER

#: An access key is kept this long after it was fetched: the gateway verifies signatures
#: without a call per request, and a revoked key stops working within this.
ACCESS_KEY_CACHE_SECONDS = 30.0
#: An unknown access key is not asked about again for this long.
UNKNOWN_KEY_CACHE_SECONDS = 5.0
ACCESS_KEY_CACHE_SIZE = 10_000


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
        self._token = bearer(internal_token)
        self._access_keys: dict[str, tuple[float, AccessKey | None]] = {}
        self._keys: access_key_service_pb2_grpc.AccessKeyServiceAsyncStub | None = None
        self._campaigns: campaign_service_pb2_grpc.CampaignServiceAsyncStub | None = None

    @abstractmethod
    async def start(self) -> None:
        """Set up the stubs `_keys` and `_campaigns`."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ready(self) -> bool:
        """Whether the campaign service reports SERVING."""

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
        metadata = self._metadata(request_id)
        if access_key:
            metadata += ((ACCESS_KEY_METADATA_KEY, access_key),)
        return await method(request, timeout=self._timeout, metadata=metadata)

    def _metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        """The request id, and the internal token (every call presents it, so that services
        that require it on every method serve this gateway)."""
        return ((REQUEST_ID_HEADER, request_id), self._token)


class GrpcBackend(Backend):
    """The campaign service at `target`, over one gRPC channel."""

    def __init__(
        self, target: str, timeout: float, internal_token: str, tls: TlsFiles | None = None
    ) -> None:
        super().__init__(timeout, internal_token)
        self._target = target
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None
        # Any: the type stubs declare HealthStub without its methods.
        self._health: Any = None

    async def start(self) -> None:
        # Every replica a `dns:///` target resolves to gets calls while it is healthy.
        self._channel = open_channel(self._target, self._tls)
        self._keys = access_key_service_pb2_grpc.AccessKeyServiceStub(self._channel)
        self._campaigns = campaign_service_pb2_grpc.CampaignServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None

    async def ready(self) -> bool:
        """Whether the campaign service answers its health check with SERVING."""
        assert self._health is not None, "Backend.start() was not awaited"
        request = health_pb2.HealthCheckRequest(service=CAMPAIGN_SERVICE)
        try:
            answer = await self._health.Check(request, timeout=self._timeout)
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
