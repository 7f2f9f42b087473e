"""The gateway with the service of its own process as backend (`isales serve`): the same
answers as through gRPC, for successes and for every kind of refusal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import KEYS, Stack, example_body, ivr_body, start_stack
from tests.gateway.test_lifecycle import run_ended_campaign, run_lifecycle


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


#: Requests that the two backends must answer alike: a success, the refusals of the
#: contract (with their field lists), of the domain, and of authentication.
CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "valid": lambda name: example_body(name),
    "valid IVR": lambda name: ivr_body(name),
    "several problems": lambda name: {**example_body(name), "priority": 9, "callerNo": []},
    "missing fields": lambda name: _without(example_body(name), "strBeginTime", "skillParam"),
    "begin after end": lambda name: {
        **example_body(name),
        "strBeginTime": example_body()["strEndTime"],
    },
    "empty name": lambda _name: {**example_body(), "name": ""},
}


def _comparable(answer: httpx.Response) -> tuple[int, Any]:
    body = answer.json()
    if isinstance(body.get("returnObject"), dict):
        body["returnObject"] = sorted(body["returnObject"])  # its keys: ids differ
    return answer.status_code, body


@pytest.mark.parametrize("case", CASES)
def test_answers_are_those_over_grpc(stack: Stack, in_process: Stack, case: str) -> None:
    name = f"same-{case[:6]}-{id(stack) % 1000}"
    over_grpc = stack.post(CASES[case](name + "g"))
    local = in_process.post(CASES[case](name + "g"))
    assert _comparable(local) == _comparable(over_grpc)


def test_a_duplicate_name_is_refused_alike(stack: Stack, in_process: Stack) -> None:
    body = example_body()
    again = {**body, "description": "another campaign of the same name"}
    answers = [[s.post(body), s.post(again)] for s in (stack, in_process)]
    assert [_comparable(a) for a in answers[1]] == [_comparable(a) for a in answers[0]]
    assert answers[1][1].json()["resultCode"] != "0200000"


@pytest.mark.parametrize(
    "keys", [("unknown-access-key", "secret"), ("", "")], ids=["unknown key", "unsigned"]
)
def test_authentication_failures_alike(
    stack: Stack, in_process: Stack, keys: tuple[str, str]
) -> None:
    body = example_body()
    assert _comparable(in_process.post(body, keys=keys)) == _comparable(stack.post(body, keys=keys))


def test_a_wrong_secret_is_refused(in_process: Stack, stack: Stack) -> None:
    access_key = KEYS[1][0]
    body = example_body()
    local = in_process.post(body, keys=(access_key, "not the secret"))
    assert local.status_code == 401
    assert _comparable(local) == _comparable(stack.post(body, keys=(access_key, "not the secret")))
