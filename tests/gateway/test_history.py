"""A campaign's change history over REST (this gateway's extension), end to end: the records
of the changes made over REST, with their access key; paging by cursor; tenancy; the answers
to bad parameters and to a cursor older than the retained history. On SQLite and PostgreSQL.

The ids' checks, an unknown or another tenant's campaign and an unreachable service are
tested with every operation on one campaign (test_pipeline, test_lifecycle)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from isales_campaign.client import LegacyClient
from isales_campaign.legacy import auth_v2, paths
from isales_campaign.logs import REQUEST_ID_HEADER
from isales_campaign.service.db.schema import campaign_changes
from tests.gateway.conftest import KEYS, Stack, example_body, start_stack
from tests.gateway.helpers import (
    ENVELOPE_KEYS,
    UNKNOWN_ID,
    added,
    fetched,
    modified,
    ok,
    refused,
    run_statement,
)

HISTORY_KEYS = {
    *ENVELOPE_KEYS,
    "afterSequence",
    "rowsPerPage",
    "nextAfterSequence",
    "latestSequence",
    "oldestSequence",
    "data",
}
#: auth-v2's timestamp, to the millisecond.
CHANGE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """The shared stack (SQLite), then a stack on PostgreSQL."""
    name = "stack" if request.param == "sqlite" else "postgres_stack"
    found: Stack = request.getfixturevalue(name)
    return found


def history(client: LegacyClient, vdn: int, campaign_id: int, **params: str | int) -> Any:
    """A history page, checked to have its fields beside the envelope's keys."""
    body = ok(client.list_campaign_changes(vdn, campaign_id, **params))
    assert set(body) == HISTORY_KEYS, body
    return body


def every_record(client: LegacyClient, campaign_id: int, rows: int) -> list[dict[str, Any]]:
    """All of the campaign's records (VDN 1), `rows` a page, following nextAfterSequence."""
    records: list[dict[str, Any]] = []
    after = 0
    while True:
        page = history(client, 1, campaign_id, afterSequence=after, rowsPerPage=rows)
        assert (page["afterSequence"], page["rowsPerPage"]) == (after, rows)
        assert len(page["data"]) <= rows
        records += page["data"]
        if not page["nextAfterSequence"]:
            return records
        assert page["nextAfterSequence"] == page["data"][-1]["sequence"]
        after = page["nextAfterSequence"]


def test_every_change_made_over_rest_is_recorded_with_its_access_key(any_stack: Stack) -> None:
    client = any_stack.client(1)
    body = example_body()
    campaign_id = added(client, 1, body)
    changed = modified(body, lambda b: b.update(description="changed", maxAlertingTime=30))
    ok(client.update_campaign(1, campaign_id, changed))
    ok(client.update_campaign(1, campaign_id, body, validate_only=True))  # not a change
    request_id = f"history-{uuid.uuid4().hex}"
    pause_url = any_stack.base_url + paths.path(paths.PAUSE, 1, campaign_id)
    ok(client.request("PUT", pause_url, headers={REQUEST_ID_HEADER: request_id}))
    ok(client.resume_campaign(1, campaign_id))
    refused(client.resume_campaign(1, campaign_id), "0200011")  # not a change either
    ok(client.pause_campaign(1, campaign_id))
    before_deletion = fetched(client, 1, campaign_id)
    ok(client.delete_campaign(1, campaign_id))

    # The history outlives the campaign.
    records = history(client, 1, campaign_id)["data"]
    assert [(r["kind"], r["version"], r["status"]) for r in records] == [
        ("ADDED", 1, 2),
        ("MODIFIED", 2, 2),
        ("PAUSED", 3, 3),
        ("RESUMED", 4, 2),
        ("PAUSED", 5, 3),
        ("DELETED", 5, 3),  # the version removed, the status it had
    ]
    sequences = [r["sequence"] for r in records]
    assert sequences == sorted(set(sequences))
    assert {r["campaignId"] for r in records} == {campaign_id}
    access_key = KEYS[1][0]
    assert [r["actor"] | {"requestId": None} for r in records] == [
        {"accessKey": access_key, "certificateSubject": None, "internal": False, "requestId": None}
    ] * len(records)
    assert records[2]["actor"]["requestId"] == request_id
    assert all(r["actor"]["requestId"] for r in records)  # generated when the client sent none
    # Legacy names of the changed fields; other kinds change no field's value.
    assert records[1]["changedFields"] == ["description", "maxAlertingTime"]
    assert [r["changedFields"] for r in records if r["kind"] != "MODIFIED"] == [[]] * 5
    # The configuration after each change (the deletion's: as it was), as query one writes it.
    configuration = {
        k: v for k, v in before_deletion.items() if k not in ("id", "status", "version")
    }
    assert records[-1]["campaign"] == configuration
    assert records[0]["campaign"]["description"] == body["description"]
    now = datetime.now(UTC)
    for record in records:
        assert CHANGE_TIME.fullmatch(record["changeTime"]), record["changeTime"]
        moment = auth_v2.parse_timestamp(record["changeTime"])
        assert now - timedelta(minutes=5) < moment <= now
    assert [r["changeTime"] for r in records] == sorted(r["changeTime"] for r in records)


def test_pages_walk_the_whole_history_once_in_order(any_stack: Stack) -> None:
    client = any_stack.client(1)
    campaign_id = added(client, 1, example_body())
    other = added(client, 1, example_body())  # its changes take sequences in between
    for _ in range(3):
        for operate in (client.pause_campaign, client.resume_campaign):
            ok(operate(1, campaign_id))
            ok(operate(1, other))
    whole = history(client, 1, campaign_id, rowsPerPage=100)
    records = whole["data"]
    assert [r["kind"] for r in records] == ["ADDED"] + ["PAUSED", "RESUMED"] * 3
    assert whole["nextAfterSequence"] == 0
    assert whole["latestSequence"] > records[-1]["sequence"]  # the VDN's, other's included
    assert whole["oldestSequence"] == 1  # nothing pruned
    for rows in (1, 2, 3, 7):
        assert every_record(client, campaign_id, rows) == records
    # A cursor in the middle, at the end, beyond it (the largest there is).
    middle = history(client, 1, campaign_id, afterSequence=records[3]["sequence"])
    assert middle["data"] == records[4:]
    for after in (records[-1]["sequence"], 2**63 - 1):
        page = history(client, 1, campaign_id, afterSequence=after)
        assert (page["data"], page["nextAfterSequence"]) == ([], 0)
    # rowsPerPage as the list takes it: 10 when absent, empty or 0.
    defaults: list[dict[str, str | int]] = [{}, {"rowsPerPage": ""}, {"rowsPerPage": 0}]
    for given in defaults:
        page = history(client, 1, campaign_id, **given)
        assert (page["afterSequence"], page["rowsPerPage"]) == (0, 10)
        assert page["data"] == records


def test_a_tenant_never_sees_another_tenants_records(any_stack: Stack) -> None:
    one, two = any_stack.client(1), any_stack.client(2)
    ours = added(one, 1, example_body())
    theirs = added(two, 2, example_body())
    refused(two.list_campaign_changes(2, ours), "0200007")  # as if it did not exist
    refused(one.list_campaign_changes(1, theirs), "0200007")
    for vdn, campaign_id in ((1, theirs), (77, ours)):  # another's VDN, or one not configured
        answer = two.list_campaign_changes(vdn, campaign_id)
        assert (answer.status, answer.result_code) == (401, "0200001")
        assert "data" not in answer.body
    records = history(two, 2, theirs)["data"]
    assert [(r["campaignId"], r["actor"]["accessKey"]) for r in records] == [(theirs, KEYS[2][0])]


def test_0200007_a_campaign_without_history(any_stack: Stack) -> None:
    refused(any_stack.client(1).list_campaign_changes(1, UNKNOWN_ID), "0200007")


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"afterSequence": "x"}, "02000006", "afterSequence"),
        ({"afterSequence": "1.5"}, "02000006", "afterSequence"),
        ({"afterSequence": "--1"}, "02000006", "afterSequence"),
        ({"afterSequence": -1}, "02000007", "afterSequence"),
        ({"afterSequence": 2**63}, "02000007", "afterSequence"),
        ({"afterSequence": "9" * 5000}, "02000007", "afterSequence"),
        ({"rowsPerPage": "ten"}, "02000006", "rowsPerPage"),
        ({"rowsPerPage": 101}, "02000007", "rowsPerPage"),
        ({"rowsPerPage": -1}, "02000007", "rowsPerPage"),
    ],
)
def test_bad_query_parameters(
    any_stack: Stack, params: dict[str, str | int], code: str, field: str
) -> None:
    client = any_stack.client(1)
    campaign_id = added(client, 1, example_body())
    refused(client.list_campaign_changes(1, campaign_id, **params), code, field)


def test_a_query_parameter_given_twice_is_refused(any_stack: Stack) -> None:
    client = any_stack.client(1)
    url = any_stack.base_url + paths.path(paths.CHANGES, 1, added(client, 1, example_body()))
    refused(client.request("GET", url + "?afterSequence=0&afterSequence=1"), "02000007")


def test_a_cursor_older_than_the_retained_history(database_url: str, tmp_path: Path) -> None:
    """0200001 naming the oldest retained sequence; the records after it are read from
    afterSequence = oldest - 1, or from the default 0 (the oldest retained record)."""
    pruned = start_stack(tmp_path, database_url=database_url)
    try:
        client = pruned.client(1)
        campaign_id = added(client, 1, example_body())
        ok(client.pause_campaign(1, campaign_id))
        ok(client.resume_campaign(1, campaign_id))
        # As the retention's pruning of the first two records would leave the history.
        assert run_statement(
            pruned, campaign_changes.delete().where(campaign_changes.c.sequence < 3)
        )
        desc = refused(client.list_campaign_changes(1, campaign_id, afterSequence=1), "0200001")
        assert "the oldest is 3" in desc, desc
        for after in ({}, {"afterSequence": 2}):
            page = history(client, 1, campaign_id, **after)
            assert [(r["sequence"], r["kind"]) for r in page["data"]] == [(3, "RESUMED")]
            assert (page["oldestSequence"], page["latestSequence"]) == (3, 3)
    finally:
        pruned.stop()
