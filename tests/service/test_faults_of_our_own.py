"""What a fault of the service itself looks like to its callers."""

from __future__ import annotations

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.service.campaigns import CampaignService
from tests.conftest import ServerFactory
from tests.examples import add_request, example_campaign
from tests.rpc_errors import failure_of


def test_a_fault_of_the_service_is_answered_internal(
    make_server: ServerFactory, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = make_server(sqlite_url)

    def broken(_self: CampaignService, _request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CampaignService, "add", broken)
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        CampaignServiceStub(channel).AddCampaign(add_request(example_campaign()), timeout=10)
    failure = failure_of(caught.value)
    assert (failure.code, failure.message) == (
        grpc.StatusCode.INTERNAL,
        "internal error; nothing was changed",
    )
