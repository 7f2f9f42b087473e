"""/readyz: ready only when a request would be served, with what a request needs checked
through the gateway's own channel and credentials: the service answers, reports SERVING, and
accepts this gateway's internal token. Otherwise 503, naming the part that fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Stack, example_body, start_stack
from tests.waiting import wait_for


def _readiness(stack: Stack) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(stack.base_url + "/readyz", timeout=10)
    return answer.status_code, answer.json()


@pytest.fixture
def wrong_token(tmp_path: Path) -> Iterator[Stack]:
    stack = start_stack(tmp_path, gateway_token="not-the-service-token")
    yield stack
    stack.stop()


def test_a_gateway_whose_token_the_service_refuses_is_not_ready(wrong_token: Stack) -> None:
    status, body = _readiness(wrong_token)
    assert (status, body["status"], body["failing"]) == (503, "unavailable", "token")
    assert "refuses this gateway's ISALES_INTERNAL_TOKEN" in body["reason"]
    assert "not-the-service-token" not in body["reason"]
    # What it warns of: every signed request fails.
    assert wrong_token.post(example_body()).status_code == 500


def test_a_gateway_without_a_token_is_not_ready(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, gateway_token="")
    try:
        status, body = _readiness(stack)
    finally:
        stack.stop()
    assert (status, body["failing"]) == (503, "token")
    assert "ISALES_INTERNAL_TOKEN is not set" in body["reason"]


def test_a_gateway_is_ready_when_the_service_serves_it_and_not_once_it_drains(
    tmp_path: Path,
) -> None:
    stack = start_stack(tmp_path, require_internal_token=True)
    try:
        assert _readiness(stack) == (200, {"status": "ok"})
        assert stack.grpc is not None
        stack.grpc.health.enter_graceful_shutdown()
        wait_for(lambda: _readiness(stack)[0] == 503, "the gateway to see NOT_SERVING")
        _, body = _readiness(stack)
    finally:
        stack.stop()
    assert body["failing"] == "service"
    assert "NOT_SERVING" in body["reason"] or "backend unhealthy" in body["reason"]
