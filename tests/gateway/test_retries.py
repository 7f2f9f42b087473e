"""What the gateway sends again, and what it does not: a call that a draining server refused
saying it did nothing is sent again (a change included) and served by another replica; a
change whose outcome the service could not tell, and a database failure, are answered as
they came."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.errors import DatabaseUnavailable, OutcomeUnknown
from isales_campaign.service.server import RunningServer, start_server
from tests.gateway.conftest import Stack, example_body, serve_gateway, start_stack
from tests.gateway.helpers import added

#: Suspends and resumes after one replica began draining: with calls spread over both, about
#: half reach the draining one first.
ROUNDS = 10


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[Stack, RunningServer]]:
    """A stack whose gateway calls its server and a second one on the same database."""
    stack = start_stack(tmp_path)
    assert stack.grpc is not None
    other = start_server(replace(stack.settings, grpc_listen="127.0.0.1:0"))
    targets = f"ipv4:127.0.0.1:{stack.grpc.port},127.0.0.1:{other.port}"
    base_url, stop_gateway = serve_gateway(replace(stack.settings, grpc_target=targets))
    both = Stack(stack.settings, base_url, stack.grpc)
    try:
        yield both, other
    finally:
        stop_gateway()
        other.stop(0)
        stack.stop()


def test_a_call_a_draining_replica_refused_is_served_by_another(
    two_replicas: tuple[Stack, RunningServer],
) -> None:
    stack, draining = two_replicas
    client = stack.client(1)
    campaign_id = added(client, 1, example_body())
    # Draining, but its clients have not heard NOT_SERVING yet: every call it gets is
    # refused UNAVAILABLE before anything is done (as in the instant after SIGTERM).
    draining._drain.start()
    answers = []
    for _ in range(ROUNDS):
        answers.append(client.pause_campaign(1, campaign_id))
        answers.append(client.resume_campaign(1, campaign_id))
        answers.append(client.get_campaign(1, campaign_id))
        answers.append(client.add_campaign(1, example_body()))
    assert [(a.status, a.result_code) for a in answers] == [(200, "0200000")] * len(answers)


def _counted(monkeypatch: pytest.MonkeyPatch, method: str, error: Exception) -> list[int]:
    """Make `CampaignService.method` fail with `error`; the list its calls are counted in."""
    calls: list[int] = []

    def failing(_self: CampaignService, _request: object) -> None:
        calls.append(1)
        raise error

    monkeypatch.setattr(CampaignService, method, failing)
    return calls


def test_a_change_of_unknown_outcome_is_not_sent_again(
    two_replicas: tuple[Stack, RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, _ = two_replicas
    client = stack.client(1)
    campaign_id = added(client, 1, example_body())
    calls = _counted(monkeypatch, "pause", OutcomeUnknown())
    answer = client.pause_campaign(1, campaign_id)
    assert (answer.status, answer.result_code) == (503, "0200006")
    assert "may have been made" in answer.body["resultDesc"]
    assert len(calls) == 1


def test_a_read_the_database_failed_is_not_sent_again_at_once(
    two_replicas: tuple[Stack, RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read may be repeated, but a database failure is not mended by repeating it now: the
    service's pushback stops the gateway's retries (the client is told to retry later)."""
    stack, _ = two_replicas
    client = stack.client(1)
    campaign_id = added(client, 1, example_body())
    calls = _counted(monkeypatch, "get", DatabaseUnavailable())
    answer = client.get_campaign(1, campaign_id)
    assert (answer.status, answer.result_code) == (503, "0200006")
    assert answer.headers["retry-after"] == "5"
    assert len(calls) == 1
