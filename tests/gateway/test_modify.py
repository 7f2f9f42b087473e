"""Modifying an Outbound Campaign (V2), end to end: the add rules apply, the device type
and the name, and validateOnly (of add and modify)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from isales_campaign.legacy import paths
from tests.gateway.conftest import Stack, example_body, ivr_body
from tests.gateway.helpers import (
    ENVELOPE_KEYS,
    SUCCESS,
    added,
    code_of,
    fetched,
    listed_ids,
    modified,
    ok,
    refused,
)


@pytest.mark.parametrize(
    ("code", "field", "change"),
    [
        ("02000007", "priority", lambda b: b.update(priority=9)),
        ("02000001", "name", lambda b: b.pop("name")),
        ("02000003", "name", lambda b: b.update(name="n" * 33)),
        ("02000006", "maxAlertingTime", lambda b: b.update(maxAlertingTime="twenty")),
        ("02000008", "strEndTime", lambda b: b.update(strEndTime="2999-13-45 00:00:00")),
        ("0200017", "skillParam.skillId", lambda b: b["skillParam"].update(skillId=7)),
        (
            "0200002",
            "strBeginTime",
            lambda b: b.update(
                strBeginTime=(datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d 00:00:00")
            ),
        ),
    ],
)
def test_modify_applies_the_add_rules(
    stack: Stack, code: str, field: str, change: Callable[[dict[str, Any]], object]
) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    refused(client.update_campaign(1, campaign_id, modified(body, change)), code, field)
    assert fetched(client, 1, campaign_id)["version"] == 1


def test_02000009_modify_with_another_device_type(stack: Stack) -> None:
    client = stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    desc = refused(
        client.update_campaign(1, campaign_id, ivr_body(body["name"])), "02000009", "deviceType"
    )
    assert "2" in desc
    # Another device type of the same family (a previewed skill-queue campaign) neither.
    previewed = modified(body, lambda b: b.update(deviceType=5))
    previewed["skillParam"] = {
        "skillId": 2,
        "skillName": "defaultAudioSkill",
        "outBoundType": 5,
        "previewParam": {"failInterval": 3, "obCallCount": 1, "autoCallTime": 5},
    }
    valid = modified(previewed, lambda b: b.update(name=b["name"] + "-p"))
    assert code_of(client.add_campaign(1, valid, validate_only=True)) == SUCCESS
    refused(client.update_campaign(1, campaign_id, previewed), "02000009", "deviceType")
    assert fetched(client, 1, campaign_id)["deviceType"] == 2


def test_0200005_modify_with_a_name_another_campaign_has(stack: Stack) -> None:
    client = stack.client(1)
    first, second = example_body(), example_body()
    added(client, 1, first)
    second_id = added(client, 1, second)
    taken = modified(second, lambda b: b.update(name=first["name"]))
    refused(client.update_campaign(1, second_id, taken), "0200005", "name")
    # Its own name is no conflict; another tenant's campaign of that name neither.
    ok(client.update_campaign(1, second_id, second))
    other_tenant = stack.client(2)
    other_id = added(other_tenant, 2, example_body())
    ok(other_tenant.update_campaign(2, other_id, copy.deepcopy(second)))


def test_validate_only_modify_changes_nothing(stack: Stack) -> None:
    client = stack.client(1)
    body, other = example_body(), example_body()
    campaign_id = added(client, 1, body)
    added(client, 1, other)
    changed = modified(body, lambda b: b.update(name=b["name"] + "-v", maxAlertingTime=30))
    assert list(ok(client.update_campaign(1, campaign_id, changed, validate_only=True))) == (
        ENVELOPE_KEYS
    )
    found = fetched(client, 1, campaign_id)
    assert (found["name"], found["maxAlertingTime"], found["version"]) == (body["name"], 20, 1)
    taken = modified(body, lambda b: b.update(name=other["name"]))
    refused(client.update_campaign(1, campaign_id, taken, validate_only=True), "0200005")


@pytest.mark.parametrize("value", ["maybe", "1", "yes"])
def test_validate_only_must_be_true_or_false(stack: Stack, executing: int, value: str) -> None:
    client = stack.client(1)
    body = example_body()
    add_url = stack.base_url + paths.path(paths.ADD, 1) + f"?validateOnly={value}"
    modify_url = stack.base_url + paths.path(paths.MODIFY, 1, executing) + f"?validateOnly={value}"
    for method, url in (("POST", add_url), ("PUT", modify_url)):
        response = client.request(method, url, json.dumps(body).encode())
        refused(response, "02000007", "validateOnly")
    assert listed_ids(client, 1, name=body["name"]) == []
    assert fetched(client, 1, executing)["version"] == 1
