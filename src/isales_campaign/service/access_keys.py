"""What gateways verify auth-v2 signatures with: the access keys.

Only callers that present the internal token get either; without a configured
token nobody does (see `isales_campaign.internal_token`). Errors are raised as
`ServiceError`s and answered by the interceptor.
"""

from __future__ import annotations

import logging

import grpc
from isales.campaign.v2 import access_key_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import GetAccessKeyRequest, GetAccessKeyResponse

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.db.store import CampaignStore
from isales_campaign.service.errors import ServiceError, check_internal_token
from isales_campaign.service.validation import require_valid

log = logging.getLogger(__name__)


class UnknownAccessKey(ServiceError):
    status_code = grpc.StatusCode.NOT_FOUND

    def __init__(self) -> None:
        super().__init__(ResultCode.RESULT_CODE_INVALID_VALUE, "unknown access key")


class AccessKeyServicer(access_key_service_pb2_grpc.AccessKeyServiceServicer):
    def __init__(self, store: CampaignStore, internal_token: str) -> None:
        self._store = store
        self._token = internal_token
        if not internal_token:
            log.warning("ISALES_INTERNAL_TOKEN is not set: AccessKeyService refuses every call")

    def _authorize(self, context: grpc.ServicerContext) -> None:
        check_internal_token(context.invocation_metadata(), self._token)

    def GetAccessKey(
        self, request: GetAccessKeyRequest, context: grpc.ServicerContext
    ) -> GetAccessKeyResponse:
        """The VDN and secret key of the request's access key, for an authorized caller."""
        self._authorize(context)
        require_valid(request)
        found = self._store.app_key(request.access_key)
        if found is None:
            raise UnknownAccessKey()
        vdn_id, secret_key = found
        return GetAccessKeyResponse(vdn_id=vdn_id, secret_key=secret_key)
