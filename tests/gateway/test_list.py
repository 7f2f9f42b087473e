"""Querying Outbound Campaigns (the list), end to end: its parameters' errors, paging,
filters and tenancy."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.gateway.conftest import Stack, example_body, ivr_body
from tests.gateway.helpers import added, counts, listed, listed_ids, ok, prefix, refused


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"rowsPerPage": 101}, "02000007", "rowsPerPage"),
        ({"rowsPerPage": -1}, "02000007", "rowsPerPage"),
        ({"rowsPerPage": "x"}, "02000006", "rowsPerPage"),
        ({"rowsPerPage": "1.5"}, "02000006", "rowsPerPage"),
        ({"curPage": "x"}, "02000006", "curPage"),
        ({"curPage": 2**31}, "02000007", "curPage"),
        ({"status": 1}, "02000007", "status"),
        ({"status": "executing"}, "02000006", "status"),
        ({"deviceType": 4}, "02000007", "deviceType"),
        ({"beginTime": "2026-13-45 00:00:00"}, "02000008", "beginTime"),
        ({"endTime": "2026-02-30 00:00:00"}, "02000008", "endTime"),
        ({"beginTime": "2026-01-01"}, "02000008", "beginTime"),
        ({"name": "n" * 31}, "02000003", "name"),
        ({"ccId": 0}, "02000007", "ccId"),
    ],
)
def test_list_parameter_errors(
    stack: Stack, params: dict[str, str | int], code: str, field: str
) -> None:
    refused(stack.client(1).list_campaigns(1, **params), code, field)


@pytest.mark.parametrize("name", ["rowsPerPage", "curPage", "status"])
def test_list_integer_with_two_minus_signs_is_02000006(stack: Stack, name: str) -> None:
    refused(stack.client(1).list_campaigns(1, **{name: "--5"}), "02000006", name)


@pytest.mark.parametrize("name", ["rowsPerPage", "curPage", "status", "ccId"])
def test_list_integer_of_thousands_of_digits_is_02000007(stack: Stack, name: str) -> None:
    refused(stack.client(1).list_campaigns(1, **{name: "9" * 5000}), "02000007", name)


def test_list_page_beyond_32_bits_of_rows_is_02000007(stack: Stack) -> None:
    answer = stack.client(1).list_campaigns(1, curPage=2**31 - 1, rowsPerPage=100)
    refused(answer, "02000007", "curPage")


def test_list_name_of_30_characters_is_accepted(stack: Stack) -> None:
    assert listed(stack.client(1), 1, name="n" * 30)["totalSize"] == 0


def test_list_empty_center_is_no_filter(stack: Stack) -> None:
    client = stack.client(1)
    assert listed(client, 1, ccId="")["totalSize"] == listed(client, 1)["totalSize"]


@pytest.fixture
def five(stack: Stack) -> tuple[str, list[int]]:
    """Five new executing campaigns of VDN 1 under one name prefix, newest first."""
    name = prefix()
    client = stack.client(1)
    ids = [added(client, 1, example_body(f"{name}{index}")) for index in range(5)]
    return name, ids[::-1]


def test_list_pages_walk_every_campaign_once_newest_first(
    stack: Stack, five: tuple[str, list[int]]
) -> None:
    name, newest_first = five
    client = stack.client(1)
    seen: list[int] = []
    for page in (1, 2, 3):
        answer = listed(client, 1, name=name, rowsPerPage=2, curPage=page)
        assert (answer["curPage"], answer["rowsPerPage"], answer["totalSize"]) == (page, 2, 5)
        assert len(answer["data"]) == (2 if page < 3 else 1)
        seen += [row["id"] for row in answer["data"]]
    assert seen == newest_first
    beyond = listed(client, 1, name=name, rowsPerPage=2, curPage=4)
    assert (beyond["data"], beyond["totalSize"]) == ([], 5)
    # Defaults: page 1 of 10.
    first = listed(client, 1, name=name)
    assert (first["curPage"], first["rowsPerPage"]) == (1, 10)
    assert [row["id"] for row in first["data"]] == newest_first
    assert [row["id"] for row in listed(client, 1, name=name, rowsPerPage=0)["data"]] == (
        newest_first
    )


@pytest.mark.parametrize("page", [0, -3, ""])
def test_list_page_below_1_is_page_1(
    stack: Stack, five: tuple[str, list[int]], page: int | str
) -> None:
    name, newest_first = five
    answer = listed(stack.client(1), 1, name=name, rowsPerPage=2, curPage=page)
    assert answer["curPage"] == 1
    assert [row["id"] for row in answer["data"]] == newest_first[:2]


def test_list_name_is_a_case_sensitive_substring(stack: Stack, five: tuple[str, list[int]]) -> None:
    name, newest_first = five
    client = stack.client(1)
    assert listed_ids(client, 1, name=name[1:-1]) == newest_first
    assert listed_ids(client, 1, name=f"{name}3") == [newest_first[1]]
    assert listed_ids(client, 1, name=name.upper()) == []
    assert listed_ids(client, 1, name=name.replace("-", "%")) == []
    assert listed_ids(client, 1, name=name.replace("-", "_")) == []


def test_list_name_filter_of_other_characters(stack: Stack) -> None:
    client = stack.client(1)
    name = f"测试 {uuid.uuid4().hex[:8]}"
    campaign_id = added(client, 1, example_body(name))
    assert listed_ids(client, 1, name=name) == [campaign_id]
    assert listed_ids(client, 1, name=name[1:]) == [campaign_id]
    assert listed(client, 1, name=name)["data"][0]["name"] == name


def test_list_status_filter(stack: Stack, five: tuple[str, list[int]]) -> None:
    name, newest_first = five
    client = stack.client(1)
    paused = newest_first[1::2]
    for campaign_id in paused:
        ok(client.pause_campaign(1, campaign_id))
    executing = [i for i in newest_first if i not in paused]
    assert listed_ids(client, 1, name=name, status=3) == paused
    assert listed_ids(client, 1, name=name, status=2) == executing
    assert listed_ids(client, 1, name=name, status=4) == []
    assert listed_ids(client, 1, name=name, status=0) == newest_first
    statuses = {row["id"]: row["status"] for row in listed(client, 1, name=name)["data"]}
    assert statuses == {i: 3 if i in paused else 2 for i in newest_first}
    filtered = listed(client, 1, name=name, status=3)
    assert filtered["totalSize"] == len(paused)


def test_list_device_type_filter(stack: Stack) -> None:
    name = prefix()
    client = stack.client(1)
    skill = added(client, 1, example_body(f"{name}s"))
    ivr = added(client, 1, ivr_body(f"{name}i"))
    assert listed_ids(client, 1, name=name, deviceType=3) == [ivr]
    assert listed_ids(client, 1, name=name, deviceType=2) == [skill]
    assert listed_ids(client, 1, name=name, deviceType=1) == []
    assert listed_ids(client, 1, name=name, deviceType=0) == [ivr, skill]
    row = listed(client, 1, name=name, deviceType=3)["data"][0]
    assert (row["deviceType"], row["name"]) == (3, f"{name}i")


def test_list_time_filters(stack: Stack) -> None:
    name = prefix()
    client = stack.client(1)
    first = example_body(f"{name}a")  # today 00:00:00 to tomorrow 23:59:59
    today = date.fromisoformat(first["strBeginTime"][:10])
    tomorrow = today + timedelta(days=1)
    second = example_body(f"{name}b")
    second["strBeginTime"] = f"{tomorrow} 00:00:00"
    second["strEndTime"] = f"{today + timedelta(days=3)} 12:00:00"
    first_id, second_id = added(client, 1, first), added(client, 1, second)

    assert listed_ids(client, 1, name=name, beginTime=f"{today} 00:00:00") == [
        second_id,
        first_id,
    ]
    assert listed_ids(client, 1, name=name, beginTime=f"{tomorrow} 00:00:00") == [second_id]
    assert listed_ids(client, 1, name=name, beginTime=f"{today} 00:00:01") == [second_id]
    assert listed_ids(client, 1, name=name, endTime=f"{tomorrow} 23:59:59") == [first_id]
    assert listed_ids(client, 1, name=name, endTime=f"{tomorrow} 23:59:58") == []
    assert listed_ids(
        client,
        1,
        name=name,
        beginTime=f"{tomorrow} 00:00:00",
        endTime=f"{today + timedelta(days=3)} 12:00:00",
    ) == [second_id]


def test_list_never_shows_another_tenants_campaigns(stack: Stack) -> None:
    name = prefix()
    one, two = stack.client(1), stack.client(2)
    ours = added(one, 1, example_body(f"{name}x"))
    # The same name is free in another tenant.
    theirs = added(two, 2, example_body(f"{name}x"))
    assert listed_ids(one, 1, name=name) == [ours]
    assert listed_ids(two, 2, name=name) == [theirs]
    every_id = [row["id"] for row in listed(two, 2, rowsPerPage=100)["data"]]
    assert ours not in every_id
    skill_one, ivr_one = counts(one)
    added(two, 2, ivr_body())
    assert counts(one) == (skill_one, ivr_one)
