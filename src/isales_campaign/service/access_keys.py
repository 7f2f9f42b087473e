"""What gateways verify auth-v2 signatures with: the access keys.

Only callers that present the internal token get them (the call chain checks it; without a
configured token nobody does, see `isales_campaign.internal_token`).
"""

from __future__ import annotations

import grpc
from isales.campaign.v2 import access_key_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import GetAccessKeyRequest, GetAccessKeyResponse

from isales_campaign.service.db.store import CampaignStore
from isales_campaign.service.errors import UnknownAccessKey
from isales_campaign.service.validation import require_valid


class AccessKeyServicer(access_key_service_pb2_grpc.AccessKeyServiceServicer):
    def __init__(self, store: CampaignStore) -> None:
        self._store = store

    def GetAccessKey(
        self, request: GetAccessKeyRequest, _context: grpc.ServicerContext
    ) -> GetAccessKeyResponse:
        """The VDN and secret key of the request's access key."""
        require_valid(request)
        found = self._store.app_key(request.access_key)
        if found is None:
            raise UnknownAccessKey()
        vdn_id, secret_key = found
        return GetAccessKeyResponse(vdn_id=vdn_id, secret_key=secret_key)
