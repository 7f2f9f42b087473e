"""UpdateCampaign end to end over gRPC, on SQLite and on PostgreSQL: the whole configuration
replaced under the rules of an add, the status and the device type kept, names unique, and
etags, validate_only and ended campaigns changing nothing.

The service runs on a clock the tests set by hand (the `clock` fixture).
"""

from __future__ import annotations

from datetime import UTC, timedelta

import grpc
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from tests.conftest import FixedClock
from tests.examples import ivr_campaign
from tests.service.helpers import (
    AFTER_THE_END,
    EXECUTING,
    MORNING,
    PAUSED,
    TODAY,
    add,
    campaign,
    get,
    listed_ids,
    refused,
    replacement,
    update,
)


def test_update_replaces_the_whole_configuration(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    campaign_id = add(client, campaign("before"))
    clock.now = MORNING + timedelta(hours=1)
    changed = replacement("after")
    answered = update(client, campaign_id, changed)
    record = get(client, campaign_id)
    assert answered == record
    assert record.campaign == changed
    assert not record.campaign.HasField("priority")  # replaced, not merged
    assert (record.status, record.version, record.etag) == (EXECUTING, 2, "2")
    assert record.create_time.ToDatetime(tzinfo=UTC) == MORNING
    assert record.update_time.ToDatetime(tzinfo=UTC) == clock.now
    # The list shows the new name, and the old one is free.
    assert listed_ids(client, name_contains="after") == [campaign_id]
    assert listed_ids(client, name_contains="before") == []
    assert add(client, campaign("before"))


def test_update_keeps_the_status(client: CampaignServiceStub) -> None:
    paused = add(client, campaign("paused", paused=True))
    record = update(client, paused, replacement("still paused"))  # asks INIT_STATUS_EXECUTING
    assert (record.status, record.version) == (PAUSED, 2)
    stored = get(client, paused)
    assert stored.status == PAUSED
    assert stored.campaign.init_status == pb.INIT_STATUS_PAUSED
    # A campaign added without initStatus keeps having none.
    plain = campaign("plain")
    plain.ClearField("init_status")
    executing = add(client, plain)
    asks_paused = replacement("still executing")
    asks_paused.init_status = pb.INIT_STATUS_PAUSED
    assert update(client, executing, asks_paused).status == EXECUTING
    stored = get(client, executing)
    assert stored.status == EXECUTING
    assert not stored.campaign.HasField("init_status")


def test_update_cannot_change_the_device_type(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("skill queue"))
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=ivr_campaign("skill queue", today=TODAY)
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000009"
    assert failure.codes_by_field() == {"campaign.device_type": {"02000009"}}
    assert get(client, campaign_id).version == 1


def test_update_keeps_names_unique(client: CampaignServiceStub) -> None:
    add(client, campaign("first"))
    second = add(client, campaign("second"))
    request = rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=second, campaign=campaign("first"))
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "0200005"
    assert failure.codes_by_field() == {"campaign.name": {"0200005"}}
    assert get(client, second).campaign.name == "second"
    # Keeping its own name is fine.
    assert update(client, second, replacement("second")).version == 2


def test_update_with_a_stale_etag_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned"))
    update(client, campaign_id, replacement("versioned"), etag="1")
    before = get(client, campaign_id)
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=campaign("lost update"), etag="1"
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.ABORTED
    assert failure.reason == "0200001"
    assert failure.metadata["current_version"] == "2"
    assert get(client, campaign_id) == before
    request.etag = before.etag
    assert client.UpdateCampaign(request, timeout=10).campaign.version == 3
    assert get(client, campaign_id).campaign.name == "lost update"


def test_update_validate_only_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("original"))
    add(client, campaign("taken"))
    before = get(client, campaign_id)
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=replacement("checked"), validate_only=True
    )
    client.UpdateCampaign(request, timeout=10)
    assert get(client, campaign_id) == before
    assert listed_ids(client, name_contains="checked") == []
    # The database rules are checked too.
    request.campaign.name = "taken"
    assert refused(client.UpdateCampaign, request).reason == "0200005"


def test_an_ended_campaign_cannot_be_updated(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    campaign_id = add(client, campaign("ended"))
    clock.now = AFTER_THE_END
    request = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=campaign("ended", day=AFTER_THE_END.date())
    )
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "0200016"
    assert get(client, campaign_id).version == 1


def test_update_follows_the_rules_of_add(client: CampaignServiceStub, clock: FixedClock) -> None:
    campaign_id = add(client, campaign("ruled"))
    wrong_priority = campaign("ruled")
    wrong_priority.priority = 9
    request = rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=wrong_priority)
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.codes_by_field()) == {"campaign.priority"}
    unknown_queue = campaign("ruled")
    unknown_queue.skill_param.skill_id = 99
    request.campaign.CopyFrom(unknown_queue)
    failure = refused(client.UpdateCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200017")
    clock.now = MORNING + timedelta(days=1)  # the campaign's start is now before today
    request.campaign.CopyFrom(campaign("ruled"))
    failure = refused(client.UpdateCampaign, request)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "0200002"
    assert failure.codes_by_field() == {"campaign.str_begin_time": {"0200002"}}
    assert get(client, campaign_id).version == 1


def test_update_unknown_or_another_tenants_campaign_is_not_found(
    client: CampaignServiceStub,
) -> None:
    theirs = add(client, campaign("theirs"), vdn_id=2)
    for asked in (theirs + 1000, theirs):
        request = rpc.UpdateCampaignRequest(
            vdn_id=1, campaign_id=asked, campaign=campaign("theirs")
        )
        failure = refused(client.UpdateCampaign, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    assert get(client, theirs, vdn_id=2).version == 1
