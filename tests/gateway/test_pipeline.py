"""The pipeline every vendor path goes through, end to end: the body's limits and media
type, the ids of the path, the access key's VDN, a query parameter given twice, and an
unavailable service; and the order of the checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import orjson
import pytest

from isales_campaign.legacy import paths
from tests.gateway.conftest import Stack, example_body
from tests.gateway.helpers import (
    OPERATION_REQUESTS,
    envelope_of,
    fetched,
    listed_ids,
    operate,
    refused,
)


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


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_401_access_key_of_another_vdn(stack: Stack, executing: int, operation: str) -> None:
    response = operate(stack, operation, 2, executing, key_of=1)
    assert response.status == 401
    assert response.headers["www-authenticate"] == "auth-v2"
    assert response.body["resultCode"] == "0200001"
    assert response.body["resultDesc"] == (
        "authentication failed: the access key belongs to VDN 1, not 2"
    )
    found = fetched(stack.client(1), 1, executing)
    assert (found["status"], found["version"]) == (2, 1)


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
@pytest.mark.parametrize("campaign_id", ["abc", "0", "-1", "1.0", "9223372036854775808"])
def test_02000007_campaign_id(stack: Stack, operation: str, campaign_id: str) -> None:
    refused(operate(stack, operation, 1, campaign_id), "02000007", "campaignId")


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
@pytest.mark.parametrize("vdn", ["10000", "0", "abc"])
def test_02000007_vdn_id(stack: Stack, executing: int, operation: str, vdn: str) -> None:
    refused(operate(stack, operation, vdn, executing), "02000007", "vdnId")


def test_02000007_vdn_id_of_the_list(stack: Stack) -> None:
    url = stack.base_url + paths.path(paths.LIST, 10000)
    refused(stack.client(1).request("GET", url), "02000007", "vdnId")


def test_401_list_of_another_vdn(stack: Stack) -> None:
    response = stack.client(1).list_campaigns(2)
    assert response.status == 401
    assert response.body["resultCode"] == "0200001"
    assert "data" not in response.body


@pytest.mark.parametrize("order", ["true&validateOnly=false", "false&validateOnly=true"])
def test_a_query_parameter_given_twice_is_refused(stack: Stack, executing: int, order: str) -> None:
    """Which of the two would count is ambiguous, whichever comes last."""
    client = stack.client(1)
    body = example_body()
    add_url = stack.base_url + paths.path(paths.ADD, 1) + f"?validateOnly={order}"
    refused(client.request("POST", add_url, json.dumps(body).encode()), "02000007", "validateOnly")
    assert listed_ids(client, 1, name=body["name"]) == []
    rows = order.replace("validateOnly", "rowsPerPage").replace("true", "5").replace("false", "500")
    list_url = stack.base_url + paths.path(paths.LIST, 1) + f"?rowsPerPage={rows}&curPage=1"
    refused(client.request("GET", list_url), "02000007", "rowsPerPage")
    assert fetched(client, 1, executing)["version"] == 1


def test_503_when_the_service_is_unreachable(offline_stack: Stack) -> None:
    response = offline_stack.post(example_body())
    envelope_of(response, 503, "0200006")
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200006_service_unavailable(offline_stack: Stack, operation: str) -> None:
    response = operate(offline_stack, operation, 1, 1)
    assert response.status == 503
    assert response.headers["retry-after"].isdigit()
    assert response.body["resultCode"] == "0200006"


def test_0200006_list_service_unavailable(offline_stack: Stack) -> None:
    response = offline_stack.client(1).list_campaigns(1)
    assert response.status == 503
    assert response.body["resultCode"] == "0200006"


def test_of_two_failures_the_earlier_check_answers(stack: Stack, offline_stack: Stack) -> None:
    """The checks run in the order the pipeline states, cheap before costly: a request that
    fails two of them is answered by the first."""
    unsigned = ("", "")
    # The body's size and media type before the signature (offline: a 4 KiB limit).
    envelope_of(offline_stack.post(b"{" + b" " * 5000 + b"}", keys=unsigned), 413, "0200001")
    text = stack.post(example_body(), keys=unsigned, headers={"Content-Type": "text/plain"})
    envelope_of(text, 415, "0200001")
    # The signature before the path's ids.
    envelope_of(stack.post(example_body(), vdn="abc", keys=unsigned), 401, "0200001")
    # The path's ids before the access key's VDN, which comes before the query.
    refused(operate(stack, "get", 2, "abc", key_of=1), "02000007", "campaignId")
    twice = stack.base_url + paths.path(paths.LIST, 2) + "?rowsPerPage=1&rowsPerPage=2"
    assert stack.client(1).request("GET", twice).status == 401
