"""The campaign store (`db.store`) as its users see it, on SQLite and on PostgreSQL: the facts a
unit of work reads for the domain's rules, the idempotency keys it keeps, what it commits and
what not, and database failures answered by its one table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from isales.campaign.v2.campaign_service_pb2 import AddCampaignRequest, UpdateCampaignRequest
from sqlalchemy import case, delete, event, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.pool.base import _ConnectionFairy

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.answers import status_code
from isales_campaign.service.campaigns import CampaignService
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.db.schema import campaigns, service_secrets
from isales_campaign.service.db.store import (
    PAGE_TOKEN_KEY_NAME,
    CampaignStore,
    CampaignValues,
    ChangeRecord,
    Conflicts,
    StoredKey,
    TenantTransaction,
)
from isales_campaign.service.domain.idempotency import KEY_RETENTION
from isales_campaign.service.domain.quotas import Family, FamilyUsage
from isales_campaign.service.errors import InvalidArgument, NameTaken, TenantNotFound
from tests.conftest import seed_database
from tests.examples import add_request, example_campaign

#: The store keeps times as naive UTC.
NOW = datetime(2026, 11, 26, 10, 0)
TOMORROW = NOW + timedelta(days=1)


@pytest.fixture
def store(database_url: str) -> Iterator[CampaignStore]:
    """A store on a fresh, seeded database: VDN 1 and VDN 2, each with skill queue 2."""
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=2)
    store = CampaignStore(engine)
    try:
        yield store
    finally:
        store.close()
        engine.dispose()


def values(name: str, *, skill_id: int | None = 2, end_at: datetime = TOMORROW) -> CampaignValues:
    """A skill-queue campaign on queue `skill_id`, or an IVR campaign (`skill_id` None)."""
    return CampaignValues(
        name=name,
        family=Family.IVR if skill_id is None else Family.SKILL_QUEUE,
        device_type=3 if skill_id is None else 2,
        skill_id=skill_id,
        begin_at=NOW,
        end_at=end_at,
        cc_id=None,
        config=example_campaign(name).SerializeToString(),
    )


def added(store: CampaignStore, stored: CampaignValues, vdn_id: int = 1) -> int:
    with store.unit_of_work(vdn_id) as transaction:
        return transaction.insert(stored, status=2, now=NOW)


def keyed(store: CampaignStore, key: str, campaign_id: int, vdn_id: int = 1) -> None:
    """Remember `key` for an add of `campaign_id`, at NOW."""
    with store.unit_of_work(vdn_id) as transaction:
        transaction.remember_key(key, b"d" * 32, campaign_id, 2, NOW)


# -- the facts of a new campaign ---------------------------------------------------------------


def test_the_facts_of_a_new_campaign_tell_a_taken_name_and_a_missing_queue(
    store: CampaignStore,
) -> None:
    taken = added(store, values("taken"))
    with store.unit_of_work(1) as transaction:
        facts = transaction.facts_of_new(values("taken"), NOW)
        assert facts.conflicts == Conflicts(queue_exists=True, name_taken=True)
        unknown_queue = transaction.facts_of_new(values("free", skill_id=99), NOW)
        assert unknown_queue.conflicts == Conflicts(queue_exists=False, name_taken=False)
        # A campaign being changed keeps its own name.
        own = transaction.facts_of_change(values("taken"), exclude_id=taken)
        assert own == Conflicts(queue_exists=True, name_taken=False)
    with store.unit_of_work(2) as transaction:
        theirs = transaction.facts_of_new(values("taken"), NOW)
        assert not theirs.conflicts.name_taken  # names are unique per tenant
    with store.unit_of_work(1) as transaction:
        row = transaction.campaign(taken)
        assert row is not None
        transaction.update(row, now=NOW, archived=True)
    with store.unit_of_work(1) as transaction:
        archived = transaction.facts_of_new(values("taken"), NOW)
        assert not archived.conflicts.name_taken  # the history does not hold names


def test_the_facts_of_a_new_campaign_count_its_family(store: CampaignStore) -> None:
    for name in ("one", "two", "three"):
        added(store, values(name))
    added(store, values("ended", end_at=NOW - timedelta(hours=1)))
    added(store, values("ivr", skill_id=None))
    added(store, values("another tenant's"), vdn_id=2)
    with store.unit_of_work(1) as transaction:
        new = values("new")
        assert transaction.facts_of_new(new, NOW).usage == FamilyUsage(active=3, total=4)
        ivr = transaction.facts_of_new(values("new ivr", skill_id=None), NOW)
        assert ivr.usage == FamilyUsage(active=1, total=1)
    assert store.usage(1, NOW) == {
        Family.SKILL_QUEUE: FamilyUsage(active=3, total=4),
        Family.IVR: FamilyUsage(active=1, total=1),
    }


def test_the_counts_an_add_reads_follow_every_write_and_the_clock(
    store: CampaignStore, database_url: str
) -> None:
    """An add (and GetQuota, and a list) reads its family's counts, not its campaigns: they
    stay what counting the campaigns tells through adds, ends moved either way, archiving,
    deleting, and campaigns that end as time passes (and the clock going back)."""

    def counted(now: datetime) -> FamilyUsage:
        with store.unit_of_work(1) as transaction:
            return transaction.facts_of_new(values("new"), now).usage

    def counted_by_hand(now: datetime) -> FamilyUsage:
        live = (campaigns.c.vdn_id == 1, campaigns.c.family == 1, campaigns.c.archived_at.is_(None))
        active = func.count(case((campaigns.c.end_at > now, 1)))
        engine = create_database_engine(database_url, pool_size=1)
        try:
            with engine.connect() as connection:
                row = connection.execute(select(active, func.count()).where(*live)).one()
        finally:
            engine.dispose()
        return FamilyUsage(active=row[0], total=row[1])

    def agree(*moments: timedelta) -> None:
        for moment in moments:
            now = NOW + moment
            by_hand = counted_by_hand(now)
            assert store.usage(1, now).get(Family.SKILL_QUEUE, FamilyUsage()) == by_hand
            assert counted(now) == by_hand, moment

    def change(campaign_id: int, **how: Any) -> None:
        with store.unit_of_work(1) as transaction:
            row = transaction.campaign(campaign_id)
            assert row is not None
            if how.pop("deleted", False):
                transaction.delete(row)
            else:
                transaction.update(row, now=NOW, **how)

    hour = timedelta(hours=1)
    ids = [added(store, values(f"ends in {n}h", end_at=NOW + n * hour)) for n in range(1, 6)]
    assert counted(NOW) == FamilyUsage(active=5, total=5)
    agree(2 * hour, 2 * hour, 1.5 * hour, 3.5 * hour, 0 * hour)
    assert counted(NOW + 3.5 * hour) == FamilyUsage(active=2, total=5)
    change(ids[0], values=values("ends in 1h", end_at=NOW + 10 * hour))  # ended: runs again
    change(ids[4], values=values("ends in 5h", end_at=NOW + 0.5 * hour))  # runs: ended
    agree(3.5 * hour, 0 * hour, 11 * hour)
    change(ids[1], archived=True)  # ended
    change(ids[2], deleted=True)  # ended
    change(ids[3], archived=True)  # running
    agree(3.5 * hour, 11 * hour)
    assert counted(NOW + 3.5 * hour) == FamilyUsage(active=1, total=2)
    added(store, values("ended before it was added", end_at=NOW - hour))
    agree(0 * hour, 11 * hour, 12 * hour)
    assert counted(NOW + 12 * hour) == FamilyUsage(active=0, total=3)


def test_the_facts_of_a_new_campaign_hold_an_earlier_add_with_its_key(
    store: CampaignStore,
) -> None:
    campaign_id = added(store, values("keyed"))
    keyed(store, "order-1", campaign_id)
    earlier = StoredKey(b"d" * 32, campaign_id, 2)
    later = NOW + timedelta(hours=1)
    with store.unit_of_work(1) as transaction:
        assert transaction.facts_of_new(values("x"), later, key="order-1").earlier == earlier
        assert transaction.facts_of_new(values("x"), later, key="order-2").earlier is None
        assert transaction.facts_of_new(values("x"), later).earlier is None
        expired = NOW + KEY_RETENTION + timedelta(seconds=1)
        assert transaction.facts_of_new(values("x"), expired, key="order-1").earlier is None
    with store.unit_of_work(2) as transaction:
        assert transaction.facts_of_new(values("x"), later, key="order-1").earlier is None


# -- idempotency keys --------------------------------------------------------------------------


def test_a_key_is_kept_for_its_retention_and_for_its_tenant_only(store: CampaignStore) -> None:
    campaign_id = added(store, values("keyed"))
    keyed(store, "order-1", campaign_id)
    with store.unit_of_work(1) as transaction:
        kept = transaction.stored_key("order-1", NOW + KEY_RETENTION)
        assert kept == StoredKey(b"d" * 32, campaign_id, 2)
        assert transaction.stored_key("order-1", NOW + KEY_RETENTION + timedelta(seconds=1)) is None
        assert transaction.stored_key("order-2", NOW) is None
    with store.unit_of_work(2) as transaction:
        assert transaction.stored_key("order-1", NOW) is None


# -- units of work -----------------------------------------------------------------------------


def test_a_unit_of_work_for_an_unknown_tenant_is_refused_and_writes_nothing(
    store: CampaignStore,
) -> None:
    with pytest.raises(TenantNotFound) as refusal, store.unit_of_work(77):
        pass
    assert status_code(refusal.value) == grpc.StatusCode.NOT_FOUND
    assert [p.path for p in refusal.value.fields] == ["vdn_id"]
    # Its first read tells (on SQLite the lock is the file's, and the tenant is not read
    # first), and so does any write: nothing is written for it.
    attempts: list[Callable[[TenantTransaction], object]] = [
        lambda transaction: transaction.campaign(1),
        lambda transaction: transaction.facts_of_new(values("new"), NOW),
        lambda transaction: transaction.insert(values("new"), status=2, now=NOW),
        lambda transaction: transaction.record(
            ChangeRecord(1, 1, 1, NOW, actor=b"", config=b"", status=2)
        ),
    ]
    for attempt in attempts:
        with pytest.raises(TenantNotFound):
            _in_unknown_tenant(store, attempt)


def _in_unknown_tenant(
    store: CampaignStore, attempt: Callable[[TenantTransaction], object]
) -> None:
    with store.unit_of_work(77) as transaction:
        attempt(transaction)
        pytest.fail("an unknown tenant was read or written as a known one")


def add_then_fail(store: CampaignStore, failure: Exception, inserted: list[int]) -> None:
    """A unit of work that adds a campaign "undone" with a key, then raises `failure`."""
    with store.unit_of_work(1) as transaction:
        inserted.append(transaction.insert(values("undone"), status=2, now=NOW))
        transaction.remember_key("order-1", b"d" * 32, inserted[-1], 2, NOW)
        raise failure


def nothing_was_committed(store: CampaignStore, campaign_id: int) -> bool:
    with store.unit_of_work(1) as transaction:
        key = transaction.stored_key("order-1", NOW)
    return store.campaign(1, campaign_id) is None and store.usage(1, NOW) == {} and key is None


def test_a_unit_of_work_whose_block_raises_commits_nothing(store: CampaignStore) -> None:
    inserted: list[int] = []
    with pytest.raises(RuntimeError, match="the block failed"):
        add_then_fail(store, RuntimeError("the block failed"), inserted)
    assert nothing_was_committed(store, inserted[0])
    # The store goes on, and the name is free.
    assert store.campaign(1, added(store, values("undone"))) is not None


# -- database failures, answered by the store's one table --------------------------------------


def test_a_value_the_database_refuses_is_invalid_argument_by_the_stores_table(
    store: CampaignStore,
) -> None:
    inserted: list[int] = []
    with pytest.raises(InvalidArgument) as refusal:
        add_then_fail(store, DataError("INSERT", None, Exception("invalid input")), inserted)
    assert status_code(refusal.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal.value.code == ResultCode.RESULT_CODE_PARAMETER_ERROR
    assert [p.path for p in refusal.value.fields] == ["campaign"]
    assert nothing_was_committed(store, inserted[0])


def refuse(*_args: Any, **_options: Any) -> int:
    """A database that refuses the value being inserted."""
    raise DataError("INSERT", None, Exception("invalid byte sequence"))


def test_a_value_the_database_refuses_is_invalid_argument(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_database(database_url)
    monkeypatch.setattr(TenantTransaction, "insert", refuse)
    engine = create_database_engine(database_url, pool_size=1)
    try:
        service = CampaignService(CampaignStore(engine))
        with pytest.raises(InvalidArgument) as raised:
            service.add(AddCampaignRequest(vdn_id=1, campaign=example_campaign()))
    finally:
        engine.dispose()
    assert raised.value.code == ResultCode.RESULT_CODE_PARAMETER_ERROR
    assert [p.path for p in raised.value.fields] == ["campaign"]


@pytest.fixture
def blind_name_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name check looks for another name: as if it raced a change elsewhere."""
    checked = TenantTransaction._checked

    def elsewhere(self: TenantTransaction, statement: Any, values: CampaignValues, **params: Any):  # type: ignore[no-untyped-def]
        return checked(
            self, statement, replace(values, name=values.name + " (elsewhere)"), **params
        )

    monkeypatch.setattr(TenantTransaction, "_checked", elsewhere)


@pytest.mark.usefixtures("blind_name_check")
def test_the_unique_index_answers_a_name_clash_as_the_check_would(database_url: str) -> None:
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=2)
    service = CampaignService(CampaignStore(engine))
    try:
        service.add(add_request(example_campaign("taken")))
        with pytest.raises(NameTaken) as on_add:
            service.add(add_request(example_campaign("taken")))
        other = service.add(add_request(example_campaign("other")))
        renamed = example_campaign("taken")
        with pytest.raises(NameTaken) as on_modify:
            service.update(UpdateCampaignRequest(vdn_id=1, campaign_id=other.id, campaign=renamed))
    finally:
        engine.dispose()
    for refusal in (on_add.value, on_modify.value):
        assert (status_code(refusal), refusal.code) == (
            grpc.StatusCode.ALREADY_EXISTS,
            ResultCode.RESULT_CODE_NAME_NOT_UNIQUE,
        )


def test_a_rollback_that_fails_drops_its_connection_and_the_service_goes_on(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused change is rolled back; should the rollback itself fail, the connection is
    dropped (not handed to the next change with its transaction open) and the refusal is
    still the answer."""
    seed_database(database_url)
    engine = create_database_engine(database_url, pool_size=1)
    service = CampaignService(CampaignStore(engine))
    failed: list[object] = []
    opened: list[object] = []
    event.listen(engine, "connect", lambda _dbapi_connection, _record: opened.append(1))

    def failing(self: _ConnectionFairy) -> None:
        failed.append(self.dbapi_connection)
        raise OSError("the rollback failed")

    try:
        service.add(add_request(example_campaign("taken")))
        with monkeypatch.context() as patched:
            # Found on the class before the DBAPI connection's own (which is C code).
            patched.setattr(_ConnectionFairy, "rollback", failing, raising=False)
            with pytest.raises(NameTaken):
                service.add(add_request(example_campaign("taken")))
        assert failed
        before = len(opened)
        added = service.add(add_request(example_campaign("after")))
        assert added.id > 0
        assert len(opened) == before + 1  # the pool replaced the connection it dropped
    finally:
        engine.dispose()


# -- secrets -----------------------------------------------------------------------------------


def test_a_database_without_the_key_says_to_migrate(sqlite_url: str) -> None:
    engine = create_database_engine(sqlite_url, pool_size=1)
    try:
        migrate_to(engine)
        store = CampaignStore(engine)
        assert len(store.secret(PAGE_TOKEN_KEY_NAME)) == 32
        with engine.begin() as connection:
            connection.execute(delete(service_secrets))
        with pytest.raises(LookupError, match="run isales migrate"):
            store.secret(PAGE_TOKEN_KEY_NAME)
        store.close()
    finally:
        engine.dispose()
