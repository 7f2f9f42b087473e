"""HTTP-level behaviour: limits, media types, bad bodies, routing, request ids, 503, OpenAPI."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from isales_campaign.gateway.operations import OPERATIONS
from isales_campaign.legacy import paths
from isales_campaign.logs import JsonFormatter
from isales_campaign.result_codes import ResultCode, legacy_code
from tests.gateway.conftest import Stack, example_body


def envelope_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resultCode"] == body["returnCode"] == code
    assert "Traceback" not in response.text
    return str(body["resultDesc"])


def test_413_declared_length(offline_stack: Stack) -> None:
    response = offline_stack.post(b"{" + b" " * 5000 + b"}")
    assert "4096 bytes" in envelope_of(response, 413, "0200001")


def test_413_counted_while_streaming(offline_stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(5):
            yield b" " * 1000
        yield b"}"

    response = httpx.post(
        offline_stack.url(1),
        content=chunks(),
        headers={"Content-Type": "application/json", "Authorization": "x"},
    )
    assert "content-length" not in response.request.headers  # chunked
    envelope_of(response, 413, "0200001")


def test_body_at_the_limit_is_read(offline_stack: Stack) -> None:
    # 4096 bytes pass the limit; without a backend the signed request then gets 503.
    body = orjson.dumps({"name": "x" * (4096 - 11)})
    assert len(body) == 4096
    envelope_of(offline_stack.post(body), 503, "0200006")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json;charset=ISO-8859-1", "application/xml", ""],
)
def test_415_media_type(stack: Stack, content_type: str) -> None:
    response = stack.post(example_body(), headers={"Content-Type": content_type})
    assert "application/json" in envelope_of(response, 415, "0200001")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"'],
)
def test_json_media_types_accepted(stack: Stack, content_type: str) -> None:
    response = stack.post(example_body(), headers={"Content-Type": content_type})
    envelope_of(response, 200, "0200000")


@pytest.mark.parametrize(
    "body", [b'{"name":', b"", b"\xff\xfe{}", b"{'name': 'x'}", b"NaN", b"[" * 5000]
)
def test_malformed_json_is_02000006(stack: Stack, body: bytes) -> None:
    desc = envelope_of(stack.post(body), 200, "02000006")
    assert "not valid JSON" in desc


@pytest.mark.parametrize("body", [b"[1, 2]", b"null", b'"campaign"', b"42", b"true"])
def test_non_object_json_is_02000006(stack: Stack, body: bytes) -> None:
    assert envelope_of(stack.post(body), 200, "02000006") == "the body must be a JSON object"


def test_503_when_the_service_is_unreachable(offline_stack: Stack) -> None:
    response = offline_stack.post(example_body())
    envelope_of(response, 503, "0200006")
    assert response.headers["retry-after"] == "5"


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


def test_openapi_document(stack: Stack) -> None:
    response = httpx.get(stack.base_url + "/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    operation = document["paths"]["/rest/isales/v2/openapi/campaigns/{vdnId}"]["post"]
    assert {"200", "401", "413", "415", "503"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert set(example_body()) <= set(schemas["Campaign"]["properties"])
    assert schemas["RetryPolicy"]["properties"]["policyJson"]["type"] == "string"
    envelope = schemas["Envelope"]
    codes = set(envelope["properties"]["resultCode"]["enum"])
    # Every code of the contract, the success included, is documented.
    numbers = [v.number for v in ResultCode.DESCRIPTOR.values if v.number]
    assert codes == {legacy_code(ResultCode.ValueType(n)) for n in numbers}
    # Every operation of the route table is documented, with its method.
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert {(op.path, op.method) for op in OPERATIONS} <= documented
    # Real answers fit the schema.
    for body in (example_body(), {**example_body(), "priority": 9}):
        answer = stack.post(body).json()
        assert set(envelope["required"]) <= set(answer) <= set(envelope["properties"])
        assert answer["resultCode"] in codes
    for code in ["0200000", "0200001", "0200006", "0200017", "02000006", "02000011"]:
        assert code in codes
        assert f"`{code}`" in document["info"]["description"]


def test_each_operation_with_a_body_shows_an_example_that_works(stack: Stack) -> None:
    """The add example is the interface page's (dated in the past: refused 0200002 as it is,
    accepted dated today); delete's example archives."""
    document = httpx.get(stack.base_url + "/openapi.json").json()
    with_bodies = {
        (path, method): spec["requestBody"]["content"]["application/json"]["example"]
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if "requestBody" in spec
    }
    add = with_bodies.pop((paths.ADD, "post"))
    assert with_bodies.pop((paths.MODIFY, "put")) == add
    assert with_bodies == {(paths.ONE, "delete"): {"archiveHistory": 1}}
    assert stack.post(add).json()["resultCode"] == "0200002"  # the page's date is past
    dated = {**add, **{k: v for k, v in example_body().items() if k.startswith("str")}}
    assert stack.post(dated).json()["resultCode"] == "0200000"
    answer = document["paths"][paths.ADD]["post"]["responses"]["200"]["content"]
    assert answer["application/json"]["example"]["returnObject"] == {"id": 46}


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
