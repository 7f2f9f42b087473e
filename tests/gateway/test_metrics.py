"""Prometheus metrics of the gateway."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.gateway.conftest import Stack, example_body


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_gateway_requests_are_counted_by_status_and_result_code(stack: Stack) -> None:
    labels = [("200", "0200000"), ("200", "02000007"), ("401", "0200001")]

    def counts() -> list[float]:
        return [
            _sample("isales_gateway_requests_total", status=s, result_code=c) for s, c in labels
        ]

    before = counts()
    stack.post(example_body())
    stack.post({**example_body(), "priority": 9})
    stack.post(example_body(), keys=("", ""))
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 1, 1]
