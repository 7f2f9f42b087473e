"""Prometheus metrics of the gateway: the API's traffic by operation, status and result code."""

from __future__ import annotations

import contextlib

import httpx

from isales_campaign.legacy import paths
from isales_campaign.metrics import GATEWAY_METRICS
from tests.gateway.conftest import Stack, example_body
from tests.gateway.helpers import connect, read_all

REQUESTS = "isales_gateway_requests_total"
SECONDS = "isales_gateway_request_seconds"


def _sample(name: str, **labels: str) -> float:
    return GATEWAY_METRICS.get_sample_value(name, labels) or 0.0


def _total(name: str) -> float:
    """A metric's samples named `name`, added up over every label."""
    return sum(
        sample.value
        for family in GATEWAY_METRICS.collect()
        for sample in family.samples
        if sample.name == name
    )


def _labels(name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in GATEWAY_METRICS.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_requests_are_counted_by_operation_status_and_result_code(
    stack: Stack, executing: int
) -> None:
    labels = [
        ("addCampaign", "200", "0200000"),
        ("addCampaign", "200", "02000007"),
        ("addCampaign", "401", "0200001"),
        ("getCampaign", "200", "0200000"),
        ("getCampaign", "200", "0200007"),
        ("pauseCampaign", "200", "0200000"),
    ]

    def counts() -> list[float]:
        return [_sample(REQUESTS, operation=o, status=s, result_code=c) for o, s, c in labels]

    before = counts()
    stack.post(example_body())
    stack.post({**example_body(), "priority": 9})
    stack.post(example_body(), keys=("", ""))
    client = stack.client(1)
    assert client.get_campaign(1, executing).result_code == "0200000"
    assert client.get_campaign(1, 999_999).result_code == "0200007"
    assert client.pause_campaign(1, executing).result_code == "0200000"
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 1, 1, 1, 1, 1]


def test_the_operation_is_the_routes_never_the_path(stack: Stack, executing: int) -> None:
    """Ids in paths do not become label values: the label set stays bounded."""
    client = stack.client(1)
    for campaign_id in (executing, 424_242, 434_343):
        client.get_campaign(1, campaign_id)
    operations = _labels(REQUESTS, "operation") | _labels(SECONDS + "_count", "operation")
    assert "getCampaign" in operations
    assert not [name for name in operations if "/" in name or any(c.isdigit() for c in name)]


def test_request_seconds_are_observed_by_operation_and_status(stack: Stack, executing: int) -> None:
    def observed() -> tuple[float, float]:
        return (
            _sample(SECONDS + "_count", operation="getCampaign", status="200"),
            _sample(SECONDS + "_count", operation="addCampaign", status="401"),
        )

    before = observed()
    stack.client(1).get_campaign(1, executing)
    stack.post(example_body(), keys=("", ""))
    after = observed()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]
    assert _sample(SECONDS + "_sum", operation="getCampaign", status="200") > 0


def test_probes_and_documents_are_not_business_traffic(stack: Stack) -> None:
    before = (_total(REQUESTS), _total(SECONDS + "_count"))
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/"):
        assert httpx.get(stack.base_url + path, timeout=30).status_code in (200, 307), path
    assert httpx.post(stack.base_url + "/readyz", timeout=30).status_code == 405
    assert (_total(REQUESTS), _total(SECONDS + "_count")) == before


def test_requests_of_no_operation_are_counted_apart(stack: Stack) -> None:
    """A path of no operation (404), an operation's path with another method (405), and a
    request the HTTP parser refuses before any route sees it (431) are the API's traffic
    too, under operation "none"."""

    def counts() -> list[float]:
        return [
            _sample(REQUESTS, operation="none", status=status, result_code="0200001")
            for status in ("404", "405", "431")
        ]

    before = counts()
    assert httpx.get(stack.base_url + "/rest/isales/v9/nothing/1", timeout=30).status_code == 404
    one = stack.base_url + paths.path(paths.ONE, 1, 1)
    assert httpx.patch(one, timeout=30).status_code == 405
    with connect(stack) as connection:
        # Refused before it was all sent, the answer is on its way all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(
                f"GET {paths.path(paths.ONE, 1, 1)} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode()
                + b"a" * (stack.settings.http_max_header_bytes + 1024)
            )
        assert read_all(connection).startswith(b"HTTP/1.1 431 ")
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 1, 1]
