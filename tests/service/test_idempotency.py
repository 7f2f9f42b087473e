"""Idempotency keys (`domain.idempotency`): for a day, a retry of an add with the same key and
the same campaign is answered as the add was, and the key with another campaign is refused.
On their own; then as a client sees them over gRPC, on SQLite and on PostgreSQL, across
changes, deletion and the day's end, and the keys' table kept bounded. The first retries of
an add are in test_add_campaign.py, one racing its first attempt in test_retry_race.py.

The service runs on a clock the tests set by hand (the `clock` fixture).
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select

from isales_campaign.result_codes import ResultCode, legacy_code
from isales_campaign.service.answers import status_code
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import idempotency_keys
from isales_campaign.service.db.store import KEY_SWEEP_INTERVAL, StoredKey
from isales_campaign.service.domain.idempotency import (
    KEY_RETENTION,
    digest,
    may_retry_an_earlier_day,
    replayed,
)
from isales_campaign.service.errors import FieldProblem, IdempotencyKeyReused
from tests.conftest import FixedClock
from tests.examples import add_request
from tests.service.helpers import (
    EXECUTING,
    MORNING,
    SKILL_QUEUE,
    TODAY,
    add,
    campaign,
    delete,
    get,
    listed_ids,
    not_found,
    pause,
    refused,
    replacement,
    update,
    usage,
)

# -- keys on their own -------------------------------------------------------------------------


def test_a_retry_asking_for_the_same_campaign_is_answered_as_the_add_was() -> None:
    asked = campaign("keyed").SerializeToString()
    stored = StoredKey(digest(asked), campaign_id=7, status=EXECUTING)
    assert replayed(1, stored, digest(asked)) is stored


def test_a_key_used_for_another_campaign_is_refused() -> None:
    stored = StoredKey(digest(campaign("keyed").SerializeToString()), 7, EXECUTING)
    other = digest(campaign("another").SerializeToString())
    with pytest.raises(IdempotencyKeyReused) as refusal:
        replayed(1, stored, other)
    assert status_code(refusal.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert [(p.path, legacy_code(p.code)) for p in refusal.value.fields] == [
        ("idempotency_key", "02000009")
    ]


def test_only_a_keyed_add_refused_for_its_begin_day_may_be_a_retry_of_an_earlier_day() -> None:
    before_today = FieldProblem(
        "campaign.str_begin_time", ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY, "before today"
    )
    too_long = FieldProblem("campaign.name", ResultCode.RESULT_CODE_TOO_LONG, "too long")
    assert may_retry_an_earlier_day("order-1", [before_today])
    assert not may_retry_an_earlier_day("", [before_today])
    assert not may_retry_an_earlier_day("order-1", [before_today, too_long])
    assert not may_retry_an_earlier_day("order-1", [too_long])


# -- as a client sees them ---------------------------------------------------------------------


def test_an_idempotent_add_is_answered_again_after_changes_and_deletion(
    client: CampaignServiceStub,
) -> None:
    request = add_request(campaign("keyed"))
    request.idempotency_key = "order-42"
    first = client.AddCampaign(request, timeout=10)
    assert not first.replayed
    update(client, first.id, replacement("renamed"))
    add(client, campaign("keyed"))  # another campaign takes the name the add asked for
    again = client.AddCampaign(request, timeout=10)
    assert (again.id, again.replayed) == (first.id, True)
    assert len(listed_ids(client)) == 2
    assert get(client, first.id).campaign.name == "renamed"
    pause(client, first.id)
    delete(client, first.id)
    after_delete = client.AddCampaign(request, timeout=10)
    assert (after_delete.id, after_delete.replayed) == (first.id, True)
    assert not_found(client, first.id)
    assert len(listed_ids(client)) == 1
    assert usage(client)[SKILL_QUEUE] == (1, 1)


def test_an_idempotency_key_answers_retries_for_a_day(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    request = add_request(campaign("kept a day"))
    request.idempotency_key = "day-key"
    first = client.AddCampaign(request, timeout=10)
    clock.now = MORNING + timedelta(hours=23)
    assert client.AddCampaign(request, timeout=10).replayed
    # A day later the key is forgotten (when the tenant's next keyed add comes): the same
    # request is a new add, refused because its start day has passed, not answered again.
    clock.now = MORNING + timedelta(hours=25)
    later = add_request(campaign("a day later", day=TODAY + timedelta(days=1)))
    later.idempotency_key = "later-key"
    client.AddCampaign(later, timeout=10)
    failure = refused(client.AddCampaign, request)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "0200002")
    get(client, first.id)  # the campaign itself stays (NOT_FOUND would raise)


def test_a_key_reused_after_its_day_answers_for_its_new_add(
    client: CampaignServiceStub, clock: FixedClock
) -> None:
    def keyed(name: str, key: str) -> rpc.AddCampaignRequest:
        request = add_request(campaign(name, day=TODAY + timedelta(days=1)))
        request.idempotency_key = key
        return request

    first = client.AddCampaign(keyed("first", "reused-key"), timeout=10)
    # Another keyed add sweeps the expired keys just before the first key expires...
    clock.now = MORNING + timedelta(hours=24, seconds=-10)
    client.AddCampaign(keyed("sweeping", "other-key"), timeout=10)
    # ...so it has expired, but is still stored, when it comes again for another campaign.
    clock.now = MORNING + timedelta(hours=24, seconds=10)
    reused = client.AddCampaign(keyed("second", "reused-key"), timeout=10)
    assert not reused.replayed
    assert reused.id != first.id
    again = client.AddCampaign(keyed("second", "reused-key"), timeout=10)
    assert (again.id, again.replayed) == (reused.id, True)


def test_expired_keys_leave_the_table_with_the_tenants_next_keyed_add(
    client: CampaignServiceStub, clock: FixedClock, database_url: str
) -> None:
    """The keys' table stays bounded: a tenant's keys go once expired, at the first keyed
    add of that tenant after the sweep interval (a minute) since the last sweep."""

    def add_keyed(name: str, key: str, vdn_id: int = 1) -> None:
        request = add_request(campaign(name, day=TODAY + timedelta(days=2)), vdn_id=vdn_id)
        request.idempotency_key = key
        client.AddCampaign(request, timeout=10)

    for index in range(3):
        add_keyed(f"old {index}", f"old-{index}")
    add_keyed("other tenant", "other-tenant", vdn_id=2)
    assert stored_keys(database_url) == {
        (1, "old-0"),
        (1, "old-1"),
        (1, "old-2"),
        (2, "other-tenant"),
    }
    clock.now = MORNING + KEY_RETENTION + KEY_SWEEP_INTERVAL + timedelta(seconds=1)
    add_keyed("new", "new")
    assert stored_keys(database_url) == {(1, "new"), (2, "other-tenant")}


def stored_keys(database_url: str) -> set[tuple[int, str]]:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(idempotency_keys.c.vdn_id, idempotency_keys.c.key)
            ).all()
    finally:
        engine.dispose()
    return {(vdn_id, key) for vdn_id, key in rows}
