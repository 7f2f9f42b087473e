"""The gRPC face of the use cases: requests in, responses or rich statuses out."""

from __future__ import annotations

import logging

import grpc
from grpc_status import rpc_status
from isales.campaign.v2 import campaign_service_pb2_grpc
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest, AddCampaignResponse

from isales_campaign.result_codes import legacy_code
from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.errors import ServiceError

log = logging.getLogger(__name__)


class CampaignServicer(campaign_service_pb2_grpc.CampaignServiceServicer):
    def __init__(self, service: CampaignService) -> None:
        self._service = service

    def AddCampaign(
        self, request: AddCampaignRequest, context: grpc.ServicerContext
    ) -> AddCampaignResponse:
        try:
            added = self._service.add(request)
        except ServiceError as error:
            log.info(
                "AddCampaign rejected",
                extra={
                    "vdn_id": request.vdn_id,
                    "grpc_code": error.status_code.name,
                    "result_code": legacy_code(error.code),
                    "fields": [problem.path for problem in error.fields],
                },
            )
            context.abort_with_status(rpc_status.to_status(error.to_status()))
        except Exception:
            log.exception("AddCampaign failed unexpectedly")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; nothing was stored")
        return AddCampaignResponse(id=added.id, status=added.status, replayed=added.replayed)
