"""Generated requests against a live server: a documented status every time, never a fault.

Three generators: campaigns whose fields take arbitrary values of their proto
types (drawn from the contract's descriptors), the documented example with a
few fields changed (many of these pass and reach the database), and the
example's bytes with random damage.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest

from isales_campaign.config import Settings
from isales_campaign.result_codes import from_legacy
from isales_campaign.service.server import start_server
from tests.conftest import seed_database
from tests.examples import add_request, example_campaign
from tests.rpc_errors import failure_of
from tests.service.helpers import any_fields, any_scalar, build

#: What a caller may be answered; INTERNAL, UNKNOWN and the rest would be faults.
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.fixture(scope="module")
def add_raw(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[grpc.UnaryUnaryMultiCallable[bytes, bytes]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('generated')) / 'isales.db'}"
    seed_database(url)
    # No quota in the way: how many generated campaigns pass and are stored is up to chance,
    # and the last test's add must not find its family full.
    settings = replace(
        Settings(),
        database_url=url,
        grpc_listen="127.0.0.1:0",
        max_active_tasks=1_000_000,
        max_campaigns_per_family=1_000_000,
    )
    running = start_server(settings, migrate=False)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield channel.unary_unary(
        "/isales.campaign.v2.CampaignService/AddCampaign",
        request_serializer=None,
        response_deserializer=None,
    )
    channel.close()
    running.stop(0)


def _answer(call: grpc.UnaryUnaryMultiCallable[bytes, bytes], payload: bytes) -> grpc.StatusCode:
    try:
        call(payload, timeout=10)
    except grpc.RpcError as error:
        failure = failure_of(error)
        assert failure.code in DOCUMENTED, failure
        assert from_legacy(failure.reason) is not None, failure
        return failure.code
    return grpc.StatusCode.OK


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=any_fields(pb.Campaign.DESCRIPTOR), vdn_id=st.sampled_from([1, 2, 0, 10000, -1]))
def test_campaigns_of_any_values(
    add_raw: grpc.UnaryUnaryMultiCallable[bytes, bytes], values: dict[str, Any], vdn_id: int
) -> None:
    request = AddCampaignRequest(vdn_id=vdn_id)
    build(request.campaign, values)
    _answer(add_raw, request.SerializeToString())


FieldPath = tuple[tuple[str, ...], FieldDescriptor]


def _scalar_paths(descriptor: Descriptor, prefix: tuple[str, ...] = ()) -> list[FieldPath]:
    """Every scalar field below `descriptor` (repeated messages through their first item)."""
    found: list[FieldPath] = []
    for field in descriptor.fields:
        path = (*prefix, field.name)
        if field.message_type is None:
            found.append((path, field))
        elif len(path) < 5:
            found += _scalar_paths(field.message_type, path)
    return found


SCALAR_PATHS = _scalar_paths(pb.Campaign.DESCRIPTOR)
NAMES = itertools.count()


def _put(message: Any, path: tuple[str, ...], value: Any) -> None:
    *parents, name = path
    for part in parents:
        child = getattr(message, part)
        if message.DESCRIPTOR.fields_by_name[part].is_repeated:
            message = child[0] if child else child.add()
        else:
            message = child
    if message.DESCRIPTOR.fields_by_name[name].is_repeated:
        getattr(message, name).append(value)
    else:
        setattr(message, name, value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_example_with_a_few_fields_changed(
    add_raw: grpc.UnaryUnaryMultiCallable[bytes, bytes], data: Any
) -> None:
    campaign = example_campaign(f"changed example {next(NAMES)}")
    for path, field in data.draw(st.lists(st.sampled_from(SCALAR_PATHS), min_size=1, max_size=3)):
        _put(campaign, path, data.draw(any_scalar(field)))
    _answer(add_raw, add_request(campaign).SerializeToString())


EXAMPLE = add_request(example_campaign("damaged example")).SerializeToString()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_bytes(add_raw: grpc.UnaryUnaryMultiCallable[bytes, bytes], data: Any) -> None:
    payload = bytearray(EXAMPLE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        position = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
        kind = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if kind == "delete":
            del payload[position]
        else:
            byte = data.draw(st.integers(min_value=0, max_value=255))
            if kind == "insert":
                payload.insert(position, byte)
            else:
                payload[position] = byte
    _answer(add_raw, bytes(payload))


def test_the_server_still_serves_after_the_generated_requests(
    add_raw: grpc.UnaryUnaryMultiCallable[bytes, bytes],
) -> None:
    request = add_request(example_campaign("after generated requests"))
    assert _answer(add_raw, request.SerializeToString()) == grpc.StatusCode.OK
