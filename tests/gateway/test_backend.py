"""What the gateway passes to the service with each call: the access key the request was
signed with, which the service records as who made a change (over gRPC and in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2 import ListCampaignChangesRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.internal_token import bearer
from tests.gateway.conftest import KEYS, Stack, example_body, start_stack
from tests.gateway.helpers import added


@pytest.fixture(params=[False, True], ids=["grpc", "in-process"])
def stack_of_either_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    stack = start_stack(tmp_path, in_process=request.param)
    yield stack
    stack.stop()


def test_a_change_made_over_rest_is_recorded_with_its_access_key(
    stack_of_either_kind: Stack,
) -> None:
    stack = stack_of_either_kind
    campaign_id = added(stack.client(1), 1, example_body())
    assert stack.grpc is not None
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc.port}") as channel:
        answer = CampaignServiceStub(channel).ListCampaignChanges(
            ListCampaignChangesRequest(vdn_id=1, campaign_id=campaign_id),
            metadata=(bearer(stack.settings.internal_token),),
            timeout=10,
        )
    [change] = answer.changes
    assert change.actor.access_key == KEYS[1][0]
    assert not change.actor.internal
    assert change.actor.request_id  # the gateway's request id
