"""What gateways verify auth-v2 signatures with: access keys, or signing keys.

Only callers that present the internal token get either; without a configured
token nobody does (see `isales_campaign.internal_token`). Errors are raised as
`ServiceError`s and answered by the interceptor.
"""

from __future__ import annotations

import logging

import grpc
from isales.campaign.v2 import access_key_service_pb2_grpc
from isales.campaign.v2.access_key_service_pb2 import (
    DeriveSigningKeyRequest,
    DeriveSigningKeyResponse,
    GetAccessKeyRequest,
    GetAccessKeyResponse,
)

from isales_campaign.legacy import auth_v2
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

    def DeriveSigningKey(
        self, request: DeriveSigningKeyRequest, context: grpc.ServicerContext
    ) -> DeriveSigningKeyResponse:
        vdn_id, secret_key = self._app_key(request, context)
        return DeriveSigningKeyResponse(
            vdn_id=vdn_id, signing_key=auth_v2.signing_key(secret_key, request.prefix)
        )

    def GetAccessKey(
        self, request: GetAccessKeyRequest, context: grpc.ServicerContext
    ) -> GetAccessKeyResponse:
        vdn_id, secret_key = self._app_key(request, context)
        return GetAccessKeyResponse(vdn_id=vdn_id, secret_key=secret_key)

    def _app_key(
        self, request: DeriveSigningKeyRequest | GetAccessKeyRequest, context: grpc.ServicerContext
    ) -> tuple[int, str]:
        """The VDN and secret key of the request's access key, for an authorized caller."""
        self._authorize(context)
        require_valid(request)
        found = self._store.app_key(request.access_key)
        if found is None:
            raise UnknownAccessKey()
        return found
