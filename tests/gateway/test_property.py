"""Generated bodies against the live gateway: never a 5xx, always a documented code."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isales_campaign.client import sign_request
from isales_campaign.gateway.openapi import documented_codes
from tests.gateway.conftest import CONTENT_TYPE, KEYS, Stack, example_body

CODES = set(documented_codes())
VDN = 9  # its own tenant: campaigns created here may exhaust a quota without harm

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=15,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


EXAMPLE_PATHS = [p for p in _paths(example_body()) if p]
#: Strings that look like what the embedded policies hold.
policy_texts = st.sampled_from(
    [
        "[{'dataType':'SI','type':1,'policy':[{'result':4,'retryNumber':3,'callInterval':600}]}]",
        '[{"dataType":"ST","type":"0","policy":{"retryDay":"2","retryTimes":"x"}}]',
        "[{'dataType':'it\\'s','type':1,'policy':{'result':'4'}}]",
        "{'a': \"b'c\"}",
        "[{",
        "",
    ]
) | st.text(max_size=60)


@st.composite
def mutated_examples(draw: st.DrawFn) -> bytes:
    body = example_body()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(EXAMPLE_PATHS))
        parent: Any = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                value = draw(policy_texts if path[-1] == "policyJson" else json_values)
                parent[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return orjson.dumps(body)


bodies = (
    mutated_examples()
    | json_values.map(orjson.dumps)
    | st.binary(max_size=200)
    | st.dictionaries(st.sampled_from(sorted(example_body())), json_values).map(orjson.dumps)
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_generated_bodies_get_documented_answers(
    stack: Stack, http: httpx.Client, body: bytes
) -> None:
    ak, sk = KEYS[VDN]
    url = stack.url(VDN)
    authorization = sign_request(ak, sk, method="POST", url=url, body=body)
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": authorization}
    response = http.post(url, content=body, headers=headers)
    assert response.status_code < 500, response.text
    envelope = response.json()
    assert envelope["resultCode"] in CODES, envelope
    assert envelope["returnCode"] == envelope["resultCode"]
    if envelope["resultCode"] != "0200000":
        assert envelope["resultDesc"]
