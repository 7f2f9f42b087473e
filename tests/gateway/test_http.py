"""HTTP-level behaviour: bad bodies, routing, request ids, health, the page for people."""

from __future__ import annotations

import logging
import re
import time

import httpx
import orjson
import pytest

from isales_campaign.legacy import paths
from isales_campaign.logs import JsonFormatter
from tests.gateway.conftest import Stack, example_body
from tests.gateway.helpers import envelope_of


@pytest.mark.parametrize(
    "body", [b'{"name":', b"", b"\xff\xfe{}", b"{'name': 'x'}", b"NaN", b"[" * 5000]
)
def test_malformed_json_is_02000006(stack: Stack, body: bytes) -> None:
    desc = envelope_of(stack.post(body), 200, "02000006")
    assert "not valid JSON" in desc


@pytest.mark.parametrize("body", [b"[1, 2]", b"null", b'"campaign"', b"42", b"true"])
def test_non_object_json_is_02000006(stack: Stack, body: bytes) -> None:
    assert envelope_of(stack.post(body), 200, "02000006") == "the body must be a JSON object"


def test_404_and_405_in_the_envelope(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/nothing/here")
    envelope_of(response, 404, "0200001")
    response = httpx.get(stack.url(1))
    envelope_of(response, 405, "0200001")
    assert response.headers["allow"] == "POST"
    response = httpx.post(stack.url(1) + "/")  # no redirect: it would lose the body
    envelope_of(response, 404, "0200001")


def test_405_names_every_method_of_the_path(stack: Stack) -> None:
    one_campaign = stack.base_url + paths.path(paths.ONE, 1, 1)
    response = httpx.patch(one_campaign)
    envelope_of(response, 405, "0200001")
    assert response.headers["allow"] == "DELETE, GET, HEAD"
    response = httpx.put(stack.base_url + paths.path(paths.PAUSE, 1, 1) + "x")
    envelope_of(response, 404, "0200001")


@pytest.mark.parametrize("escape", ["%2F", "%2f", "%3B", "%3F", "%5C", "%25", "%40"])
def test_an_encoded_delimiter_in_the_path_is_not_found(stack: Stack, escape: str) -> None:
    """Signed and otherwise valid: `1%2F9` names no campaign, neither 1 nor 9."""
    client = stack.client(1)
    campaign_id = client.add_campaign(1, example_body()).body["returnObject"]["id"]
    found = client.request("GET", stack.base_url + paths.path(paths.ONE, 1, campaign_id))
    assert found.status == 200
    assert found.body["returnObject"]["id"] == campaign_id
    for template, vdn_id, campaign in (
        (paths.LIST, f"1{escape}{campaign_id}", None),  # `1/9` would be campaign 9 of VDN 1
        (paths.ONE, 1, f"{campaign_id}{escape}"),
    ):
        url = stack.base_url + paths.path(template, vdn_id, campaign)
        response = client.request("GET", url)
        assert (response.status, response.body["resultCode"]) == (404, "0200001"), url
        assert response.body["resultDesc"] == "no such resource"
    # Escapes of other characters are only another spelling: `%31` is `1`.
    spelled = client.request("GET", stack.base_url + paths.path(paths.ONE, "%31", campaign_id))
    assert spelled.status == 200


class _JsonLines(logging.Handler):
    """Formats at emit time, in the emitting thread (the service adds the id from context)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


def test_request_id_is_echoed_or_generated(stack: Stack) -> None:
    handler = _JsonLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        response = stack.post(example_body(), headers={"X-Request-Id": "trace-42"})
        # The gateway writes its access line once the response has gone out.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            line["logger"] == "isales_campaign.gateway" for line in handler.lines
        ):
            time.sleep(0.01)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert response.headers["x-request-id"] == "trace-42"
    # The id travels to the service as gRPC metadata and shows in its log lines too.
    ids = [(str(line["logger"]), line.get("request_id")) for line in handler.lines]
    loggers = {name for name, request_id in ids if request_id == "trace-42"}
    assert "isales_campaign.gateway" in loggers
    assert any(name.startswith("isales_campaign.service") for name in loggers), ids
    generated = stack.post(example_body()).headers["x-request-id"]
    assert len(generated) == 32
    unsafe = stack.post(example_body(), headers={"X-Request-Id": "a b\tc"})
    assert unsafe.headers["x-request-id"] != "a b\tc"


def test_a_page_for_people_without_a_cdn(stack: Stack) -> None:
    first = httpx.get(stack.base_url + "/")
    assert (first.status_code, first.headers["location"]) == (307, "/docs")
    page = httpx.get(stack.base_url + "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets == ["/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js"]
    for asset in assets:  # served from the package: nothing from another host
        served = httpx.get(stack.base_url + asset)
        assert served.status_code == 200
        assert len(served.content) > 10_000
    assert '"/openapi.json"' in page.text
    envelope_of(httpx.get(stack.base_url + "/docs/assets/nothing.js"), 404, "0200001")


def test_healthz(stack: Stack, offline_stack: Stack) -> None:
    for served in (stack, offline_stack):
        response = httpx.get(served.base_url + "/healthz", timeout=30)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz(stack: Stack, offline_stack: Stack) -> None:
    ready = httpx.get(stack.base_url + "/readyz", timeout=30)
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    offline = httpx.get(offline_stack.base_url + "/readyz", timeout=30)
    assert offline.status_code == 503
    assert offline.json()["status"] == "unavailable"
    assert offline.json()["failing"] == "service"
