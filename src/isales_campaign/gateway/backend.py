"""The gateway's gRPC client: one channel, a deadline and the request id on every call."""

from __future__ import annotations

import grpc
from isales.campaign.v2 import access_key_service_pb2_grpc, campaign_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import (
    DeriveSigningKeyRequest,
    DeriveSigningKeyResponse,
)
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest, AddCampaignResponse


class Backend:
    """Open with `await start()` inside the event loop that makes the calls."""

    def __init__(self, target: str, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._keys: access_key_service_pb2_grpc.AccessKeyServiceAsyncStub | None = None
        self._campaigns: campaign_service_pb2_grpc.CampaignServiceAsyncStub | None = None

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._target)
        self._keys = access_key_service_pb2_grpc.AccessKeyServiceStub(self._channel)
        self._campaigns = campaign_service_pb2_grpc.CampaignServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None

    async def derive_signing_key(
        self, access_key: str, prefix: str, request_id: str
    ) -> DeriveSigningKeyResponse:
        assert self._keys is not None, "Backend.start() was not awaited"
        request = DeriveSigningKeyRequest(access_key=access_key, prefix=prefix)
        return await self._keys.DeriveSigningKey(
            request, timeout=self._timeout, metadata=_metadata(request_id)
        )

    async def add_campaign(
        self, request: AddCampaignRequest, request_id: str
    ) -> AddCampaignResponse:
        assert self._campaigns is not None, "Backend.start() was not awaited"
        return await self._campaigns.AddCampaign(
            request, timeout=self._timeout, metadata=_metadata(request_id)
        )


def _metadata(request_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-request-id", request_id),)
