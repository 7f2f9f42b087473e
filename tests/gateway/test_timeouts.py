"""A service that does not answer within the gateway's deadline: the legacy client learns
that a change may have been made, and how to find out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isales_campaign.service.db.engine import create_database_engine
from tests.gateway.conftest import Stack, example_body, start_stack
from tests.waiting import wait_for


@pytest.fixture(params=[False, True], ids=["over gRPC", "in process"])
def slow(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A gateway whose deadline (1 s) is shorter than the service's database wait (60 s)."""
    started = start_stack(
        tmp_path,
        in_process=request.param,
        grpc_timeout_seconds=1.0,
        database_timeout_seconds=60.0,
    )
    yield started
    started.stop()


def test_a_timed_out_change_says_how_to_learn_its_outcome(slow: Stack) -> None:
    client = slow.client(1)
    campaign_id = client.add_campaign(1, example_body()).body["returnObject"]["id"]
    engine = create_database_engine(slow.settings.database_url, pool_size=1)
    try:
        # Another process holds the file's write lock: the service waits for it.
        with engine.connect() as other_writer:
            lock = other_writer.begin()
            paused = client.pause_campaign(1, campaign_id)
            lock.rollback()
        # The service went on once the lock was free: the pause was made after all.
        wait_for(
            lambda: (
                (client.get_campaign(1, campaign_id).body.get("returnObject") or {}).get("status")
                == 3
            ),
            "the pause to be made",
        )
        with engine.connect() as other_writer:
            lock = other_writer.begin()
            added = client.add_campaign(1, example_body())
            lock.rollback()
    finally:
        engine.dispose()
    assert (added.status, added.result_code) == (503, "0200006")
    assert "send the same signed request again" in added.body["resultDesc"]
    assert (paused.status, paused.result_code) == (503, "0200006")
    assert "query the campaign" in paused.body["resultDesc"]
