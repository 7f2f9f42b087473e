"""The change history (ListCampaignChanges): a record of every change that was made, in the
change's transaction, numbered per tenant without a gap; none of a change that was not made.
On SQLite and PostgreSQL, on a clock the tests set by hand."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_change_pb2 import CampaignChange, ChangeKind
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.internal_token import ACCESS_KEY_METADATA_KEY, bearer
from isales_campaign.logs import REQUEST_ID_HEADER
from tests.conftest import FixedClock
from tests.examples import add_request
from tests.service.helpers import (
    EXECUTING,
    MORNING,
    PAUSED,
    StubFactory,
    add,
    campaign,
    changes,
    delete,
    pause,
    refused,
    replacement,
    resume,
    update,
)

ADDED, MODIFIED = ChangeKind.CHANGE_KIND_ADDED, ChangeKind.CHANGE_KIND_MODIFIED
PAUSED_KIND, RESUMED = ChangeKind.CHANGE_KIND_PAUSED, ChangeKind.CHANGE_KIND_RESUMED
DELETED, ARCHIVED = ChangeKind.CHANGE_KIND_DELETED, ChangeKind.CHANGE_KIND_ARCHIVED


def every_change(
    client: CampaignServiceStub, vdn_id: int = 1, **fields: object
) -> list[CampaignChange]:
    """All of the tenant's changes, three a page, following `next_after_sequence`."""
    found: list[CampaignChange] = []
    after = 0
    while True:
        page = changes(client, vdn_id, after_sequence=after, page_size=3, **fields)
        found += page.changes
        if not page.next_after_sequence:
            return found
        after = page.next_after_sequence


def test_every_change_is_recorded_in_order_without_a_gap(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    page = changes(client)  # no change yet: the oldest retained is the one to come
    assert (page.latest_sequence, page.oldest_sequence) == (0, 1)
    first = add(client, campaign("first"))
    second = add(client, campaign("second", paused=True))
    update(client, first, replacement("first"))
    pause(client, first)
    resume(client, first)
    delete(client, second, archive=True)
    pause(client, first)
    delete(client, first)
    recorded = every_change(client)
    assert [(c.sequence, c.campaign_id, c.kind, c.version) for c in recorded] == [
        (1, first, ADDED, 1),
        (2, second, ADDED, 1),
        (3, first, MODIFIED, 2),
        (4, first, PAUSED_KIND, 3),
        (5, first, RESUMED, 4),
        (6, second, ARCHIVED, 1),  # the version removed
        (7, first, PAUSED_KIND, 5),
        (8, first, DELETED, 5),
    ]
    assert [c.status for c in recorded] == [
        EXECUTING, PAUSED, EXECUTING, PAUSED, EXECUTING, PAUSED, PAUSED, PAUSED,
    ]  # fmt: skip
    assert recorded[2].campaign == replacement("first")  # the configuration after
    assert recorded[7].campaign == replacement("first")  # as it was when deleted
    assert recorded[0].campaign == campaign("first")
    expected_time = Timestamp()
    expected_time.FromDatetime(MORNING)
    assert {c.change_time.ToSeconds() for c in recorded} == {expected_time.ToSeconds()}
    assert {c.vdn_id for c in recorded} == {1}
    page = changes(client)
    assert (page.latest_sequence, page.oldest_sequence) == (8, 1)


def test_a_modification_names_the_fields_it_changed(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("fields"))
    update(client, campaign_id, replacement("fields"))
    [_, modified] = every_change(client)
    assert modified.changed_fields.paths == [
        "description", "str_end_time", "caller_no", "max_alerting_time", "priority",
    ]  # fmt: skip
    update(client, campaign_id, replacement("fields"))  # the same again: a change of nothing
    assert every_change(client)[-1].changed_fields.paths == []


def test_no_record_of_a_change_that_was_not_made(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("once"))
    retry = add_request(campaign("keyed"))
    retry.idempotency_key = "key-1"
    client.AddCampaign(retry, timeout=10)
    assert client.AddCampaign(retry, timeout=10).replayed  # a replay: the first record stands
    checked = add_request(campaign("checked"))
    checked.validate_only = True
    client.AddCampaign(checked, timeout=10)
    refused(client.AddCampaign, add_request(campaign("once")))  # name taken
    refused(client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id))
    modification = rpc.UpdateCampaignRequest(
        vdn_id=1, campaign_id=campaign_id, campaign=replacement("once"), validate_only=True
    )
    client.UpdateCampaign(modification, timeout=10)
    assert [c.sequence for c in every_change(client)] == [1, 2]
    assert changes(client).latest_sequence == 2


def test_one_campaigns_history_outlives_it(client: CampaignServiceStub) -> None:
    kept = add(client, campaign("kept"))
    gone = add(client, campaign("gone", paused=True))
    pause(client, kept)
    delete(client, gone)
    history = every_change(client, campaign_id=gone)
    assert [(c.sequence, c.kind) for c in history] == [(2, ADDED), (4, DELETED)]
    assert [c.kind for c in every_change(client, campaign_id=kept)] == [ADDED, PAUSED_KIND]


def test_a_tenant_sees_only_its_own_changes(client: CampaignServiceStub) -> None:
    add(client, campaign("one"))
    other = client.AddCampaign(add_request(campaign("two"), 2), timeout=10).id
    assert [c.vdn_id for c in every_change(client, 2)] == [2]
    assert [c.sequence for c in every_change(client, 2)] == [1]  # its own sequence
    failure = refused(
        client.ListCampaignChanges, rpc.ListCampaignChangesRequest(vdn_id=1, campaign_id=other)
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")


def test_unknown_tenants_and_bad_requests_get_their_codes(client: CampaignServiceStub) -> None:
    failure = refused(client.ListCampaignChanges, rpc.ListCampaignChangesRequest(vdn_id=77))
    assert failure.code == grpc.StatusCode.NOT_FOUND
    for bad in (
        rpc.ListCampaignChangesRequest(vdn_id=0),
        rpc.ListCampaignChangesRequest(vdn_id=1, page_size=101),
        rpc.ListCampaignChangesRequest(vdn_id=1, after_sequence=-1),
        rpc.ListCampaignChangesRequest(vdn_id=1, campaign_id=0),
    ):
        assert refused(client.ListCampaignChanges, bad).code == grpc.StatusCode.INVALID_ARGUMENT


def test_who_made_a_change(stub_with: StubFactory) -> None:
    token = "history-token"
    client = stub_with(internal_token=token)
    gateway = ((ACCESS_KEY_METADATA_KEY, "ak-vdn-1"), bearer(token), (REQUEST_ID_HEADER, "r-1"))
    client.AddCampaign(add_request(campaign("by gateway")), metadata=gateway, timeout=10)
    forged = ((ACCESS_KEY_METADATA_KEY, "ak-vdn-1"), (REQUEST_ID_HEADER, "r-2"))
    client.AddCampaign(add_request(campaign("forged")), metadata=forged, timeout=10)
    [by_gateway, by_another] = [c.actor for c in every_change(client)]
    assert (by_gateway.access_key, by_gateway.internal, by_gateway.request_id) == (
        "ak-vdn-1",
        False,
        "r-1",
    )
    # An access key is believed only from a caller that presents the internal token.
    assert (by_another.access_key, by_another.internal, by_another.request_id) == ("", True, "r-2")
