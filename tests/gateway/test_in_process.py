"""The gateway with the service of its own process as backend (`isales serve`): the same
answers as through gRPC, for successes and for every kind of refusal."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.service.campaigns import CampaignService
from tests.examples import add_request, example_campaign
from tests.gateway.conftest import KEYS, Stack, example_body, ivr_body, start_stack
from tests.gateway.helpers import run_ended_campaign, run_lifecycle


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(
        tmp_path_factory.mktemp("in-process"),
        in_process=True,
        max_active_tasks=10_000,
        max_campaigns_per_family=10_000,
    )
    yield started
    started.stop()


def test_the_lifecycle(in_process: Stack) -> None:
    run_lifecycle(in_process)


def test_an_ended_campaign(in_process: Stack) -> None:
    run_ended_campaign(in_process)


def test_ready(in_process: Stack) -> None:
    answer = httpx.get(f"{in_process.base_url}/readyz", timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def _without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in names}


#: Requests that the two backends must answer alike, with the answer's HTTP status and
#: legacy code: a success, the refusals of the contract (with their field lists) and of the
#: domain.
CASES: dict[str, tuple[Callable[[str], dict[str, Any]], int, str]] = {
    "valid": (example_body, 200, "0200000"),
    "valid IVR": (ivr_body, 200, "0200000"),
    "several problems": (
        lambda name: {**example_body(name), "priority": 9, "callerNo": []},
        200,
        "0200001",
    ),
    "missing fields": (
        lambda name: _without(example_body(name), "strBeginTime", "skillParam"),
        200,
        "02000001",
    ),
    "begin after end": (
        lambda name: {**example_body(name), "strBeginTime": example_body()["strEndTime"]},
        200,
        "02000007",
    ),
    "empty name": (lambda _name: {**example_body(), "name": ""}, 200, "02000001"),
}


def _comparable(answer: httpx.Response) -> tuple[int, Any]:
    body = answer.json()
    if isinstance(body.get("returnObject"), dict):
        body["returnObject"] = sorted(body["returnObject"])  # its keys: ids differ
    return answer.status_code, body


def _outcome(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["resultCode"]


@pytest.mark.parametrize("case", CASES)
def test_answers_are_those_over_grpc(stack: Stack, in_process: Stack, case: str) -> None:
    body_of, status, code = CASES[case]
    name = f"same-{uuid.uuid4().hex[:12]}"
    local = in_process.post(body_of(name))
    assert _outcome(local) == (status, code)
    assert _comparable(local) == _comparable(stack.post(body_of(name)))


def test_a_duplicate_name_is_refused_alike(stack: Stack, in_process: Stack) -> None:
    body = example_body()
    again = {**body, "description": "another campaign of the same name"}
    answers = [[s.post(body), s.post(again)] for s in (stack, in_process)]
    assert [_outcome(a) for a in answers[1]] == [(200, "0200000"), (200, "0200005")]
    assert [_comparable(a) for a in answers[1]] == [_comparable(a) for a in answers[0]]


@pytest.mark.parametrize(
    "keys",
    [("unknown-access-key", "secret"), ("", ""), (KEYS[1][0], "not the secret")],
    ids=["unknown key", "unsigned", "wrong secret"],
)
def test_authentication_failures_alike(
    stack: Stack, in_process: Stack, keys: tuple[str, str]
) -> None:
    body = example_body()
    local = in_process.post(body, keys=keys)
    assert _outcome(local) == (401, "0200001")
    # Alike but for the host (and its port) in a canonical request the answer may show.
    port = in_process.base_url.rpartition(":")[2]
    alike = _comparable(local)[1]["resultDesc"].replace(port, stack.base_url.rpartition(":")[2])
    assert alike == _comparable(stack.post(body, keys=keys))[1]["resultDesc"]


def test_a_fault_of_the_service_is_a_500(
    in_process: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_self: CampaignService, _request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CampaignService, "add", broken)
    answer = in_process.post(example_body())
    assert answer.status_code == 500
    assert "internal error" in answer.json()["resultDesc"]


def test_not_ready_while_the_service_is_not_serving(tmp_path: Path) -> None:
    stopping = start_stack(tmp_path, in_process=True)
    try:
        assert stopping.grpc is not None
        stopping.grpc.health.enter_graceful_shutdown()
        answer = httpx.get(f"{stopping.base_url}/readyz", timeout=10)
    finally:
        stopping.stop()
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "status": "unavailable",
            "failing": "service",
            "reason": "the campaign service reports NOT_SERVING",
        },
    )


def test_rest_and_grpc_adds_sent_at_once_are_all_made(in_process: Stack) -> None:
    """The gateway's changes run on its event loop, the gRPC port's on threads; they share
    the process's writes."""
    assert in_process.grpc is not None
    port = in_process.grpc.port
    tag = uuid.uuid4().hex[:8]
    made: dict[str, int] = {}

    def rest(index: int) -> None:
        client = in_process.client(1)
        for round_ in range(5):
            name = f"r{tag}{index}{round_}"
            made[name] = client.add_campaign(1, example_body(name)).body["returnObject"]["id"]

    def over_grpc(index: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = CampaignServiceStub(channel)
            for round_ in range(5):
                name = f"g{tag}{index}{round_}"
                request = add_request(example_campaign(name))
                made[name] = stub.AddCampaign(request, timeout=10).id

    threads = [threading.Thread(target=rest, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=over_grpc, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(made) == 45
    assert len(set(made.values())) == 45
    client = in_process.client(1)
    for name, campaign_id in made.items():
        assert client.get_campaign(1, campaign_id).body["returnObject"]["name"] == name
