"""The status model (`domain.transitions`): 2 executing, 3 suspended, 4 completed, and which
change each status allows. On its own, every status against every change; then as a client
sees it over gRPC, on SQLite and on PostgreSQL: a campaign past its end is completed, suspend
and resume, delete and archive.

The service runs on a clock the tests set by hand (the `clock` fixture).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.message import Message
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_pb2 import CampaignStatus
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.result_codes import legacy_code
from isales_campaign.service.answers import status_code
from isales_campaign.service.db.store import CampaignRow
from isales_campaign.service.domain import transitions
from isales_campaign.service.errors import CampaignNotFound, ServiceError, StaleVersion
from tests.conftest import FixedClock
from tests.service.helpers import (
    AFTER_THE_END,
    COMPLETED,
    EXECUTING,
    MORNING,
    PAUSED,
    SKILL_QUEUE,
    add,
    campaign,
    delete,
    get,
    listed,
    listed_ids,
    not_found,
    pause,
    refused,
    resume,
    usage,
)

# -- the status model on its own ---------------------------------------------------------------

Change = Callable[[int, CampaignStatus.ValueType], object]

CHANGES: dict[str, Change] = {
    "suspend": transitions.paused,
    "resume": transitions.resumed,
    "modify": transitions.check_modifiable,
    "delete": transitions.check_deletable,
}
#: Each status and change: the status the change leads to, None where it is allowed and leaves
#: the status alone, or the legacy code of its refusal.
STATUS_MODEL: dict[tuple[CampaignStatus.ValueType, str], CampaignStatus.ValueType | str | None] = {
    (EXECUTING, "suspend"): PAUSED,
    (EXECUTING, "resume"): "0200011",
    (EXECUTING, "modify"): None,
    (EXECUTING, "delete"): "0200009",
    (PAUSED, "suspend"): "0200011",
    (PAUSED, "resume"): EXECUTING,
    (PAUSED, "modify"): None,
    (PAUSED, "delete"): None,
    (COMPLETED, "suspend"): "0200011",
    (COMPLETED, "resume"): "0200011",
    (COMPLETED, "modify"): "0200016",
    (COMPLETED, "delete"): None,
}


def status_name(status: int) -> str:
    return CampaignStatus.Name(CampaignStatus.ValueType(status)).removeprefix("CAMPAIGN_STATUS_")


@pytest.mark.parametrize(
    ("status", "change"),
    list(itertools.product([EXECUTING, PAUSED, COMPLETED], CHANGES)),
    ids=lambda value: status_name(value) if isinstance(value, int) else value,
)
def test_each_status_allows_or_refuses_each_change(
    status: CampaignStatus.ValueType, change: str
) -> None:
    outcome = STATUS_MODEL[status, change]
    if not isinstance(outcome, str):
        assert CHANGES[change](7, status) == outcome
        return
    with pytest.raises(ServiceError) as refusal:
        CHANGES[change](7, status)
    assert legacy_code(refusal.value.code) == outcome
    assert status_code(refusal.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert "campaign 7" in refusal.value.message


def test_a_campaign_is_completed_from_its_end_time_on() -> None:
    end = datetime(2026, 11, 27, 23, 59, 59)
    for stored in (EXECUTING, PAUSED):
        before = transitions.effective_status(stored, end, end - timedelta(seconds=1))
        assert before == stored
        assert transitions.effective_status(stored, end, end) == COMPLETED
        assert transitions.effective_status(stored, end, end + timedelta(days=1)) == COMPLETED


def stored_row(*, version: int = 2, archived: bool = False) -> CampaignRow:
    at = datetime(2026, 11, 26, 10, 0)
    return CampaignRow(
        id=7,
        vdn_id=1,
        device_type=2,
        status=EXECUTING,
        end_at=at + timedelta(days=1),
        config=b"",
        version=version,
        created_at=at,
        updated_at=at,
        archived_at=at if archived else None,
    )


def test_a_change_is_for_a_live_campaign_at_the_version_the_caller_read() -> None:
    row = stored_row(version=2)
    assert transitions.current(1, 7, row, etag="") is row
    assert transitions.current(1, 7, row, etag="2") is row
    with pytest.raises(StaleVersion) as stale:
        transitions.current(1, 7, row, etag="1")
    assert stale.value.metadata == {"current_version": "2"}
    assert status_code(stale.value) == grpc.StatusCode.ABORTED
    for gone in (None, stored_row(archived=True)):
        with pytest.raises(CampaignNotFound) as missing:
            transitions.current(1, 7, gone, etag="2")
        assert legacy_code(missing.value.code) == "0200007"


# -- a campaign past its end -------------------------------------------------------------------


def test_a_campaign_past_its_end_is_completed(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    executing = add(client, campaign("executing"))
    paused = add(client, campaign("paused", paused=True))
    clock.now = datetime(2026, 11, 27, 23, 59, 58, tzinfo=UTC)  # a second before the end
    assert get(client, executing).status == EXECUTING
    assert usage(client)[SKILL_QUEUE] == (2, 2)
    clock.now = AFTER_THE_END
    assert [get(client, i).status for i in (executing, paused)] == [COMPLETED, COMPLETED]
    assert sorted(listed_ids(client, status=COMPLETED)) == [executing, paused]
    assert listed_ids(client, status=EXECUTING) == []
    assert listed_ids(client, status=PAUSED) == []
    assert [r.status for r in listed(client).campaigns] == [COMPLETED, COMPLETED]
    # No longer active, still counted in all until deleted.
    assert usage(client)[SKILL_QUEUE] == (0, 2)


# -- suspend and resume ------------------------------------------------------------------------


def test_pause_and_resume(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("switched"))
    paused = pause(client, campaign_id)
    assert (paused.status, paused.version, paused.etag) == (PAUSED, 2, "2")
    assert get(client, campaign_id) == paused
    failure = refused(
        client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200011")
    resumed = resume(client, campaign_id)
    assert (resumed.status, resumed.version) == (EXECUTING, 3)
    assert get(client, campaign_id) == resumed
    failure = refused(
        client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "0200011")
    assert get(client, campaign_id).version == 3


def test_an_ended_campaign_can_be_neither_paused_nor_resumed(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    executing = add(client, campaign("executing"))
    paused = add(client, campaign("paused", paused=True))
    clock.now = AFTER_THE_END
    for campaign_id in (executing, paused):
        for failure in (
            refused(
                client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id)
            ),
            refused(
                client.ResumeCampaign,
                rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id),
            ),
        ):
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "0200011",
            )
        assert get(client, campaign_id).version == 1


def test_pause_and_resume_with_etags(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned"))
    stale = refused(
        client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="7")
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).status == EXECUTING
    assert pause(client, campaign_id, etag="1").status == PAUSED
    stale = refused(
        client.ResumeCampaign,
        rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="1"),
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).status == PAUSED
    assert resume(client, campaign_id, etag="2").status == EXECUTING


def test_changes_to_another_tenants_campaign_are_not_found(client: CampaignServiceStub) -> None:
    theirs = add(client, campaign("theirs", paused=True), vdn_id=2)
    for call, request in (
        (client.PauseCampaign, rpc.PauseCampaignRequest(vdn_id=1, campaign_id=theirs)),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=theirs)),
        (client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=theirs)),
    ):
        failure = refused(call, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    record = get(client, theirs, vdn_id=2)
    assert (record.status, record.version) == (PAUSED, 1)


def test_changes_check_their_arguments(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("argued", paused=True))
    changes: list[tuple[Callable[..., object], Callable[..., Message]]] = [
        (client.PauseCampaign, rpc.PauseCampaignRequest),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest),
        (client.DeleteCampaign, rpc.DeleteCampaignRequest),
    ]
    for call, make in changes:
        unconfigured = refused(call, make(vdn_id=5, campaign_id=campaign_id))
        assert unconfigured.code == grpc.StatusCode.NOT_FOUND
        no_vdn = refused(call, make(vdn_id=0, campaign_id=campaign_id))
        assert no_vdn.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(no_vdn.codes_by_field()) == {"vdn_id"}
        no_id = refused(call, make(vdn_id=1, campaign_id=0))
        assert no_id.codes_by_field() == {"campaign_id": {"02000007"}}
        not_a_version = refused(call, make(vdn_id=1, campaign_id=campaign_id, etag="v1"))
        assert not_a_version.code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(not_a_version.codes_by_field()) == {"etag"}
    assert get(client, campaign_id).version == 1


# -- delete and archive ------------------------------------------------------------------------


def test_an_executing_campaign_cannot_be_deleted(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("running"))
    for archive in (False, True):
        request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, archive=archive)
        failure = refused(client.DeleteCampaign, request)
        assert (failure.code, failure.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "0200009",
        )
    assert get(client, campaign_id).version == 1


def test_a_deleted_campaign_is_gone_and_frees_its_name(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("doomed"))
    pause(client, campaign_id)
    assert usage(client)[SKILL_QUEUE] == (1, 1)
    delete(client, campaign_id)
    assert not_found(client, campaign_id)
    request = rpc.GetCampaignRequest(vdn_id=1, campaign_id=campaign_id, include_archived=True)
    assert refused(client.GetCampaign, request).code == grpc.StatusCode.NOT_FOUND
    assert usage(client)[SKILL_QUEUE] == (0, 0)
    assert listed_ids(client) == []
    assert listed_ids(client, archived=True) == []
    again = add(client, campaign("doomed"))
    assert again != campaign_id
    assert usage(client)[SKILL_QUEUE] == (1, 1)
    twice = refused(
        client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id)
    )
    assert (twice.code, twice.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")


def test_an_archived_campaign_is_history(client: CampaignServiceStub, clock: FixedClock) -> None:
    accepted = campaign("history", paused=True)
    campaign_id = add(client, accepted)
    clock.now = MORNING + timedelta(hours=2)
    delete(client, campaign_id, archive=True)
    assert not_found(client, campaign_id)
    record = get(client, campaign_id, include_archived=True)
    assert record.campaign == accepted
    assert record.archive_time.ToDatetime(tzinfo=UTC) == clock.now
    assert record.status == PAUSED
    assert listed_ids(client) == []
    archived = listed(client, archived=True)
    assert list(archived.campaigns) == [record]
    assert archived.total_size == 1
    assert usage(client)[SKILL_QUEUE] == (0, 0)
    # The name is free again; the history may hold it more than once.
    again = add(client, campaign("history", paused=True))
    delete(client, again, archive=True)
    assert sorted(listed_ids(client, archived=True)) == [campaign_id, again]
    assert add(client, campaign("history"))
    # The history cannot be changed, nor deleted again.
    for call, request in (
        (client.DeleteCampaign, rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id)),
        (client.ResumeCampaign, rpc.ResumeCampaignRequest(vdn_id=1, campaign_id=campaign_id)),
        (
            client.UpdateCampaign,
            rpc.UpdateCampaignRequest(vdn_id=1, campaign_id=campaign_id, campaign=accepted),
        ),
    ):
        failure = refused(call, request)
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "0200007")
    # Another tenant does not see it either.
    other_tenant = rpc.GetCampaignRequest(vdn_id=2, campaign_id=campaign_id, include_archived=True)
    assert refused(client.GetCampaign, other_tenant).code == grpc.StatusCode.NOT_FOUND


def test_an_ended_campaign_may_be_deleted(client: CampaignServiceStub, clock: FixedClock) -> None:
    campaign_id = add(client, campaign("ended"))
    clock.now = AFTER_THE_END
    assert usage(client)[SKILL_QUEUE] == (0, 1)
    delete(client, campaign_id)
    assert not_found(client, campaign_id)
    assert usage(client)[SKILL_QUEUE] == (0, 0)


def test_delete_with_a_stale_etag_changes_nothing(client: CampaignServiceStub) -> None:
    campaign_id = add(client, campaign("versioned", paused=True))
    request = rpc.DeleteCampaignRequest(vdn_id=1, campaign_id=campaign_id, etag="2")
    failure = refused(client.DeleteCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.ABORTED, "0200001")
    assert get(client, campaign_id).version == 1
    request.etag = "1"
    client.DeleteCampaign(request, timeout=10)
    assert not_found(client, campaign_id)


def test_ids_are_never_reused(client: CampaignServiceStub) -> None:
    older = add(client, campaign("older"))
    newest = add(client, campaign("newest"))
    pause(client, newest)
    delete(client, newest)
    latest = add(client, campaign("latest"))
    assert latest > max(older, newest)
