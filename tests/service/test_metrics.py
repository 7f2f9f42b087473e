"""Prometheus metrics of the gRPC server, and its /metrics endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from isales.campaign.v2.campaign_service_pb2 import GetCampaignRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.metrics import SERVICE_METRICS
from tests.conftest import ServerFactory, seed_database
from tests.examples import add_request, example_campaign
from tests.processes import ServerProcess, free_port
from tests.scrape import families


def _sample(name: str, **labels: str) -> float:
    return SERVICE_METRICS.get_sample_value(name, labels) or 0.0


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


def _refused(method: str, code: str, result_code: str) -> float:
    return _sample(
        "isales_grpc_server_refused_total",
        grpc_type="unary",
        grpc_service="isales.campaign.v2.CampaignService",
        grpc_method=method,
        grpc_code=code,
        result_code=result_code,
    )


def test_refusals_are_counted_by_status_and_legacy_result_code(
    sqlite_url: str, make_server: ServerFactory, channel_to: Callable[[int], grpc.Channel]
) -> None:
    stub = CampaignServiceStub(channel_to(make_server(sqlite_url).port))
    counted = [
        ("AddCampaign", "ALREADY_EXISTS", "0200005"),  # the name is taken
        ("AddCampaign", "INVALID_ARGUMENT", "02000007"),  # no such VDN
        ("GetCampaign", "NOT_FOUND", "0200007"),  # no such campaign
        ("AddCampaign", "OK", "0200000"),  # a success is no refusal
    ]
    before = [_refused(*labels) for labels in counted]
    stub.AddCampaign(add_request(example_campaign()), timeout=10)
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            stub.AddCampaign(add_request(example_campaign()), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.AddCampaign(add_request(example_campaign(), vdn_id=0), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.GetCampaign(GetCampaignRequest(vdn_id=1, campaign_id=999_999), timeout=10)
    after = [_refused(*labels) for labels in counted]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 0]


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
        scraped = families(f"http://127.0.0.1:{port}/metrics")
    finally:
        assert server.stop() == 0, server.log_text()
    # The server's state, read when scraped: its database answers, it does not drain, and
    # its pool (ISALES_GRPC_WORKERS, 16) holds the connection the add used (on SQLite the
    # writer and the reader keep theirs checked out).
    state = {
        name: scraped[name][()]
        for name in scraped
        if name in ("isales_database_up", "isales_draining") or "_pool_" in name
    }
    open_connections = state.pop("isales_database_pool_checked_out") + state.pop(
        "isales_database_pool_idle"
    )
    assert state == {
        "isales_database_up": 1.0,
        "isales_draining": 0.0,
        "isales_database_pool_size": 16.0,
        "isales_database_pool_overflow": 0.0,
    }
    assert 1 <= open_connections <= 16
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="AddCampaign",'
        'grpc_service="isales.campaign.v2.CampaignService",grpc_type="unary"} 1.0'
    ) in exposition
    assert (
        'grpc_server_started_total{grpc_method="AddCampaign",'
        'grpc_service="isales.campaign.v2.CampaignService",grpc_type="unary"} 1.0'
    ) in exposition
    assert "grpc_server_handling_seconds_bucket" in exposition
