"""The gRPC face of the use cases: each method hands its request to one use case.

Failures are `ServiceError`s, which the call chain (`call_chain`) answers as rich statuses.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from isales.campaign.v2 import campaign_service_pb2 as messages
from isales.campaign.v2 import campaign_service_pb2_grpc

from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.changes import ChangeHistory


class CampaignServicer(campaign_service_pb2_grpc.CampaignServiceServicer):
    def __init__(self, service: CampaignService, changes: ChangeHistory) -> None:
        self._service = service
        self._changes = changes

    def AddCampaign(
        self, request: messages.AddCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.AddCampaignResponse:
        return self._service.add(request)

    def GetCampaign(
        self, request: messages.GetCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.GetCampaignResponse:
        return self._service.get(request)

    def ListCampaigns(
        self, request: messages.ListCampaignsRequest, _context: grpc.ServicerContext
    ) -> messages.ListCampaignsResponse:
        return self._service.list_campaigns(request)

    def UpdateCampaign(
        self, request: messages.UpdateCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.UpdateCampaignResponse:
        return self._service.update(request)

    def PauseCampaign(
        self, request: messages.PauseCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.PauseCampaignResponse:
        return self._service.pause(request)

    def ResumeCampaign(
        self, request: messages.ResumeCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.ResumeCampaignResponse:
        return self._service.resume(request)

    def DeleteCampaign(
        self, request: messages.DeleteCampaignRequest, _context: grpc.ServicerContext
    ) -> messages.DeleteCampaignResponse:
        return self._service.delete(request)

    def GetQuota(
        self, request: messages.GetQuotaRequest, _context: grpc.ServicerContext
    ) -> messages.GetQuotaResponse:
        return self._service.quota(request)

    def ListCampaignChanges(
        self, request: messages.ListCampaignChangesRequest, _context: grpc.ServicerContext
    ) -> messages.ListCampaignChangesResponse:
        return self._changes.list_changes(request)

    def WatchCampaignChanges(
        self, request: messages.WatchCampaignChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[messages.WatchCampaignChangesResponse]:
        watcher = self._changes.watch(request)
        if not context.add_callback(watcher.cancel):  # the call has already ended
            watcher.cancel()
        return watcher.events()
