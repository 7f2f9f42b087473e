"""Prometheus metrics of the gRPC server, and its /metrics endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from prometheus_client import REGISTRY

from tests.conftest import ServerFactory, seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess, free_port


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _handled(code: str) -> float:
    return _sample(
        "grpc_server_handled_total",
        grpc_type="unary",
        grpc_service="isales.campaign.v2.CampaignService",
        grpc_method="AddCampaign",
        grpc_code=code,
    )


def test_grpc_calls_are_counted_by_status_code(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    stub = CampaignServiceStub(channel_to(make_server(sqlite_url).port))
    before = {code: _handled(code) for code in ("OK", "INVALID_ARGUMENT", "ALREADY_EXISTS")}
    stub.AddCampaign(add_request(example_campaign()), timeout=10)
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            stub.AddCampaign(add_request(example_campaign()), timeout=10)  # name taken
    with pytest.raises(grpc.RpcError):
        stub.AddCampaign(add_request(example_campaign(), vdn_id=0), timeout=10)
    after = {code: _handled(code) for code in before}
    assert {code: after[code] - before[code] for code in before} == {
        "OK": 1,
        "ALREADY_EXISTS": 2,
        "INVALID_ARGUMENT": 1,
    }


def test_metrics_endpoint_of_a_server_process(sqlite_url: str, tmp_path: Path) -> None:
    seed_database(sqlite_url)
    port = free_port()
    server = ServerProcess(
        tmp_path / "server.log",
        ISALES_DATABASE_URL=sqlite_url,
        ISALES_METRICS_LISTEN=f"127.0.0.1:{port}",
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            CampaignServiceStub(channel).AddCampaign(add_request(example_campaign()), timeout=10)
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        assert server.stop() == 0, server.log_text()
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="AddCampaign",'
        'grpc_service="isales.campaign.v2.CampaignService",grpc_type="unary"} 1.0'
    ) in exposition
    assert (
        'grpc_server_started_total{grpc_method="AddCampaign",'
        'grpc_service="isales.campaign.v2.CampaignService",grpc_type="unary"} 1.0'
    ) in exposition
    assert "grpc_server_handling_seconds_bucket" in exposition
