"""Deleting an Outbound Campaign, end to end: deleting or archiving frees the name and the
count; the optional body's errors."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Stack, example_body
from tests.gateway.helpers import (
    added,
    counts,
    fetched,
    listed_ids,
    modified,
    ok,
    one_url,
    operate,
    refused,
)


def test_archive_frees_the_name_and_the_count(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    ok(client.pause_campaign(1, campaign_id))
    before = counts(client)
    ok(client.delete_campaign(1, campaign_id, archive=True))
    refused(client.get_campaign(1, campaign_id), "0200007")
    for operation in ("pause", "resume", "modify", "delete"):
        refused(operate(stack, operation, 1, campaign_id), "0200007")
    assert listed_ids(client, 1, name=body["name"]) == []
    assert counts(client) == (before[0] - 1, before[1])
    # Another description: the same body signed in the same second would be a retry.
    again = modified(body, lambda b: b.update(description="again"))
    new_id = added(client, 1, again)
    assert new_id != campaign_id
    assert listed_ids(client, 1, name=body["name"]) == [new_id]


def test_delete_frees_the_name(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    ok(client.pause_campaign(1, campaign_id))
    ok(client.request("DELETE", one_url(stack, campaign_id), b'{"archiveHistory": 0}'))
    refused(client.get_campaign(1, campaign_id), "0200007")
    added(client, 1, modified(body, lambda b: b.update(description="again")))


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b'{"archiveHistory": 2}', "02000007", "archiveHistory"),
        (b'{"archiveHistory": -1}', "02000007", "archiveHistory"),
        (b'{"archiveHistory": "1"}', "02000006", "archiveHistory"),
        (b'{"archiveHistory": true}', "02000006", "archiveHistory"),
        (b'{"archiveHistory": 1.0}', "02000006", "archiveHistory"),
        (b"not json", "02000006", None),
        (b"[1]", "02000006", None),
        (b'{"archiveHistory": 0, "archiveHistory": 1}', "02000006", None),
    ],
)
def test_delete_body_errors(
    stack: Stack, executing: int, body: bytes, code: str, field: str | None
) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    refused(client.request("DELETE", one_url(stack, executing), body), code, field)
    assert fetched(client, 1, executing)["status"] == 3


def test_delete_body_may_start_with_a_byte_order_mark(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    body = b'\xef\xbb\xbf{"archiveHistory": 1}'
    ok(client.request("DELETE", one_url(stack, executing), body))
    assert client.get_campaign(1, executing).body["resultCode"] == "0200007"  # archived


def test_415_delete_with_a_text_body(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    ok(client.pause_campaign(1, executing))
    response = client.request(
        "DELETE",
        one_url(stack, executing),
        b'{"archiveHistory": 1}',
        {"Content-Type": "text/plain"},
    )
    assert response.status == 415
    assert response.body["resultCode"] == "0200001"
    assert "Content-Type" in response.body["resultDesc"]
    assert fetched(client, 1, executing)["status"] == 3
