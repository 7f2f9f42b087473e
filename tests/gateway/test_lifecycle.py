"""The campaign lifecycle as a legacy REST client sees it, end to end over loopback: uvicorn,
the real gRPC server, SQLite (and PostgreSQL for the main lifecycle, see TestOnPostgreSQL).

Add, list, query one, modify (V2), suspend, resume and delete in turn (spec/LIFECYCLE.md), the
codes every operation on one campaign shares, the status conflicts, an ended campaign. Each
operation's own rules are tested in its own module (test_add_campaign, test_list,
test_modify, test_delete); the pipeline's checks in test_pipeline. The shared `stack` is not
empty: each test names its campaigns uniquely and filters the list by name, or counts
differences."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.conftest import Stack, example_body, ivr_body, start_stack
from tests.gateway.helpers import (
    OPERATION_REQUESTS,
    UNKNOWN_ID,
    added,
    fetched,
    listed,
    listed_ids,
    modified,
    ok,
    operate,
    prefix,
    refused,
    run_ended_campaign,
    run_lifecycle,
)


def test_lifecycle_of_a_newcomer(stack: Stack) -> None:
    run_lifecycle(stack)


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200007_unknown_campaign(stack: Stack, operation: str) -> None:
    refused(operate(stack, operation, 1, UNKNOWN_ID), "0200007")


@pytest.mark.parametrize("operation", list(OPERATION_REQUESTS))
def test_0200007_another_tenants_campaign(stack: Stack, executing: int, operation: str) -> None:
    refused(operate(stack, operation, 2, executing, key_of=2), "0200007")
    found = fetched(stack.client(1), 1, executing)
    assert (found["status"], found["version"]) == (2, 1)


def test_status_conflicts(stack: Stack, executing: int) -> None:
    client = stack.client(1)
    desc = refused(client.resume_campaign(1, executing), "0200011")
    assert str(executing) in desc
    refused(client.delete_campaign(1, executing), "0200009")
    refused(client.delete_campaign(1, executing, archive=True), "0200009")
    ok(client.pause_campaign(1, executing))
    refused(client.pause_campaign(1, executing), "0200011")
    found = fetched(client, 1, executing)
    assert (found["status"], found["version"]) == (3, 2)  # refusals change nothing
    # A modification keeps the status.
    ok(client.update_campaign(1, executing, example_body(found["name"])))
    found = fetched(client, 1, executing)
    assert (found["status"], found["version"]) == (3, 3)
    ok(client.delete_campaign(1, executing))


def test_an_ended_campaign(tmp_path: Path) -> None:
    """A campaign whose end has passed is 4 whatever was stored: it cannot be suspended,
    resumed or modified, and can be deleted."""
    ended_stack = start_stack(tmp_path)
    try:
        run_ended_campaign(ended_stack)
    finally:
        ended_stack.stop()


class TestOnPostgreSQL:
    """The main lifecycle, an ended campaign and the list on PostgreSQL."""

    def test_lifecycle(self, postgres_stack: Stack) -> None:
        run_lifecycle(postgres_stack)

    def test_an_ended_campaign(self, postgres_stack: Stack) -> None:
        run_ended_campaign(postgres_stack)

    def test_list_pages_and_filters(self, postgres_stack: Stack) -> None:
        client = postgres_stack.client(1)
        name = prefix()
        ids = [added(client, 1, example_body(f"{name}{index}")) for index in range(3)]
        ivr = added(client, 1, ivr_body(f"{name}i"))
        newest_first = [ivr, *ids[::-1]]
        walked = [
            row["id"]
            for page in (1, 2)
            for row in listed(client, 1, name=name, rowsPerPage=2, curPage=page)["data"]
        ]
        assert walked == newest_first
        assert listed_ids(client, 1, name=name.upper()) == []
        assert listed_ids(client, 1, name=name, deviceType=3) == [ivr]
        ok(client.pause_campaign(1, ids[0]))
        assert listed_ids(client, 1, name=name, status=3) == [ids[0]]
        ok(client.delete_campaign(1, ids[0], archive=True))
        added(client, 1, modified(example_body(f"{name}0"), lambda b: b.update(priority=1)))
        assert listed(client, 1, name=name)["totalSize"] == 4
