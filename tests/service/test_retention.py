"""Retention of the change history (`service/retention.py`): records older than the retention
are pruned, a prefix of each tenant's history, a batch per transaction, by any number of
pruners at once; sequences go on without a gap or a reuse. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub
from sqlalchemy import select

from isales_campaign.config import Settings
from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.schema import tenants
from isales_campaign.service.db.store import (
    CampaignStore,
    ChangeRecord,
    HistoryQuery,
    TenantTransaction,
)
from isales_campaign.service.domain.history import retention_cutoff
from isales_campaign.service.domain.legacy_time import utc_naive
from isales_campaign.service.retention import HistoryPruner, Pruned, prune_history
from isales_campaign.service.server import start_server
from tests.conftest import FixedClock, ServerFactory, seed_database
from tests.service.helpers import MORNING, TODAY, add, campaign, changes, refused
from tests.waiting import wait_for

NOW = MORNING
DAYS = 400
#: Ages (in days before NOW) of records that are pruned, and of records that are kept.
OLD = 401.0
YOUNG = 1.0


@pytest.fixture
def store(database_url: str) -> Iterator[CampaignStore]:
    """A store of a seeded database (VDN 1 and 2)."""
    seed_database(database_url)
    with store_of(database_url) as store:
        yield store


@contextmanager
def store_of(database_url: str, timeout: float = 5.0) -> Iterator[CampaignStore]:
    """A store of its own engine, as another process or replica has."""
    engine = create_database_engine(database_url, pool_size=4, timeout=timeout)
    store = CampaignStore(engine, lock_timeout=timeout)
    try:
        yield store
    finally:
        store.close()
        engine.dispose()


def record(store: CampaignStore, *ages: float, vdn_id: int = 1) -> list[int]:
    """Record a change made `age` days before NOW for each age, one transaction each; their
    sequences."""
    sequences = []
    for age in ages:
        with store.unit_of_work(vdn_id) as transaction:
            change_time = utc_naive(NOW - timedelta(days=age))
            transaction.record(ChangeRecord(1, 1, 1, change_time, actor=b"", config=b"", status=2))
        _, latest, _ = store.history(HistoryQuery(vdn_id, after=0, limit=1))
        sequences.append(latest)
    return sequences


def retained(store: CampaignStore, vdn_id: int = 1) -> list[int]:
    rows, _, _ = store.history(HistoryQuery(vdn_id, after=0, limit=1000))
    return [row.sequence for row in rows]


def pruned_sequence(database_url: str, vdn_id: int = 1) -> int:
    engine = create_database_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            found = connection.scalar(
                select(tenants.c.pruned_sequence).where(tenants.c.vdn_id == vdn_id)
            )
    finally:
        engine.dispose()
    assert found is not None
    return int(found)


def test_records_older_than_the_retention_are_pruned_and_younger_ones_kept(
    store: CampaignStore, database_url: str
) -> None:
    record(store, 500, OLD, DAYS, YOUNG, 0)  # the third is exactly as old as the retention
    record(store, YOUNG, vdn_id=2)
    pruned = prune_history(store, NOW, DAYS)
    assert (pruned.tenants, pruned.records) == (1, 2)
    assert retained(store) == [3, 4, 5]
    assert pruned_sequence(database_url) == 2
    assert retained(store, 2) == [1]
    assert prune_history(store, NOW, DAYS).records == 0  # nothing more to prune


def test_only_the_oldest_records_go_so_that_what_is_kept_stays_contiguous(
    store: CampaignStore, database_url: str
) -> None:
    """Records are made in sequence order, but their times follow the clock, which may go
    back: an old record after a younger one is kept until the younger one goes."""
    record(store, 500, 450, YOUNG, 500, OLD)
    assert prune_history(store, NOW, DAYS).records == 2
    assert retained(store) == [3, 4, 5]
    assert pruned_sequence(database_url) == 2
    assert prune_history(store, NOW + timedelta(days=DAYS), DAYS).records == 3


def test_a_tenant_pruned_to_nothing_goes_on_after_its_last_sequence(
    store: CampaignStore, database_url: str
) -> None:
    record(store, 500, 500, OLD)
    assert prune_history(store, NOW, DAYS).records == 3
    assert retained(store) == []
    assert pruned_sequence(database_url) == 3
    _, latest, _ = store.history(HistoryQuery(1, after=0, limit=10))
    assert latest == 3
    assert record(store, YOUNG) == [4]  # neither a gap nor a sequence given twice
    assert prune_history(store, NOW, DAYS).records == 0
    assert pruned_sequence(database_url) == 3


def test_a_retention_of_0_days_keeps_every_record(store: CampaignStore) -> None:
    record(store, 100_000, OLD)
    assert prune_history(store, NOW, 0).records == 0
    assert retained(store) == [1, 2]
    assert retention_cutoff(NOW, 0) is None
    assert retention_cutoff(NOW, 10**9) is None  # before the calendar: nothing is that old
    assert retention_cutoff(NOW, DAYS) == NOW - timedelta(days=DAYS)


class _Batches:
    """Counts the units of work a store opens, and makes a change of the tenant between any
    two batches of a pass (which it can only if the batch before let the tenant's lock go)."""

    def __init__(self, store: CampaignStore) -> None:
        self.opened = 0
        self.changes: list[int] = []
        self._store = store
        self._unit_of_work = store.unit_of_work
        store.unit_of_work = self._counted  # type: ignore[method-assign,assignment]

    def _counted(self, vdn_id: int) -> AbstractContextManager[TenantTransaction]:
        self.opened += 1
        return self._unit_of_work(vdn_id)

    def change_between_batches(self) -> bool:
        if self.opened:
            self.changes += record(self._store, YOUNG)
        return False  # go on

    @property
    def batches(self) -> int:
        return self.opened - len(self.changes)


def test_a_tenant_with_more_records_than_a_batch_is_pruned_a_batch_per_transaction(
    store: CampaignStore, database_url: str
) -> None:
    record(store, *[500] * 7, YOUNG, OLD)
    batches = _Batches(store)
    pruned = prune_history(store, NOW, DAYS, batch=3, stopping=batches.change_between_batches)
    assert (pruned.records, batches.batches) == (7, 3)  # 3, 3, then 1: record 8 is young
    assert batches.changes == [10, 11]
    assert retained(store) == [8, 9, 10, 11]
    assert pruned_sequence(database_url) == 7


def test_a_pass_stops_between_batches_when_asked(store: CampaignStore) -> None:
    record(store, *[500] * 5)
    batches = iter([False, False, True])
    assert prune_history(store, NOW, DAYS, batch=2, stopping=lambda: next(batches)).records == 4
    assert retained(store) == [5]


def test_pruners_at_once_leave_one_consistent_history(
    store: CampaignStore, database_url: str
) -> None:
    """Two pruners (each with its own engine, as two replicas) prune the same tenants while
    a third writer makes changes: every old record goes once, the young ones stay, and the
    sequences go on without a gap or a reuse."""
    record(store, *[500] * 40, YOUNG)
    record(store, *[500] * 30, vdn_id=2)
    start = threading.Barrier(3)
    results: list[Pruned] = []
    changes: list[int] = []

    def prune() -> None:
        with store_of(database_url) as replica:
            start.wait()
            results.append(prune_history(replica, NOW, DAYS, batch=4))

    def change() -> None:
        start.wait()
        for _ in range(10):
            changes.extend(record(store, YOUNG))

    threads = [threading.Thread(target=task) for task in (prune, prune, change)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(result.records for result in results) == 70
    assert changes == list(range(42, 52))
    assert retained(store) == list(range(41, 52))
    assert (pruned_sequence(database_url), pruned_sequence(database_url, 2)) == (40, 30)
    assert retained(store, 2) == []
    assert record(store, YOUNG, vdn_id=2) == [31]


def test_a_failed_pass_is_logged_and_the_next_one_prunes(
    store: CampaignStore, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    record(store, OLD, OLD, YOUNG)
    with ExitStack() as stack:
        impatient = stack.enter_context(store_of(database_url, timeout=0.3))
        pruner = HistoryPruner(impatient, DAYS, lambda: NOW)
        blocker = create_database_engine(database_url, pool_size=1)
        stack.callback(blocker.dispose)
        with blocker.begin() as connection:  # BEGIN IMMEDIATE on SQLite
            lock = select(tenants.c.vdn_id).where(tenants.c.vdn_id == 1).with_for_update()
            connection.execute(lock)
            with caplog.at_level(logging.WARNING):
                assert pruner.run_pass() is None  # the tenant's lock was not had in time
        [warning] = [r for r in caplog.records if r.name == "isales_campaign.service.retention"]
        assert warning.levelno == logging.WARNING
        assert warning.getMessage().startswith("pruning the change history failed")
        passed = pruner.run_pass()
    assert passed is not None
    assert passed.records == 2
    assert retained(store) == [3]


def test_the_pruner_prunes_at_start_and_every_interval_until_stopped(
    store: CampaignStore, caplog: pytest.LogCaptureFixture
) -> None:
    record(store, OLD, YOUNG)
    clock = FixedClock(NOW)
    pruner = HistoryPruner(store, DAYS, clock, interval=0.05)
    with caplog.at_level(logging.INFO, logger="isales_campaign.service.retention"):
        pruner.start()
        wait_for(lambda: retained(store) == [2], "the pass at start")
        clock.now = NOW + timedelta(days=DAYS)
        wait_for(lambda: retained(store) == [], "a later pass")
        assert pruner.stop(5)
    lines = [r for r in caplog.records if r.getMessage() == "change history pruned"]
    assert [(line.tenants, line.records) for line in lines] == [(1, 1), (1, 1)]  # type: ignore[attr-defined]


def test_a_server_prunes_from_its_start_until_it_stops(database_url: str) -> None:
    seed_database(database_url)
    with store_of(database_url) as store:
        record(store, OLD, YOUNG)
        settings = replace(Settings(), database_url=database_url, grpc_listen="127.0.0.1:0")
        running = start_server(settings, migrate=False, clock=FixedClock(NOW))
        try:
            assert running.pruner is not None
            wait_for(lambda: retained(store) == [2], "the pass at the server's start")
        finally:
            running.stop(0)
        assert running.pruner.stop(0)  # its thread has ended


def test_a_server_keeping_every_record_runs_no_pruner(
    make_server: ServerFactory, database_url: str
) -> None:
    assert make_server(database_url, change_retention_days=0).pruner is None


def test_a_cursor_into_the_pruned_history_is_refused_with_the_oldest_retained_sequence(
    client: CampaignServiceStub, clock: FixedClock, database_url: str
) -> None:
    add(client, campaign("a"))
    add(client, campaign("b"))
    clock.now = MORNING + timedelta(days=1)
    add(client, campaign("c", day=TODAY + timedelta(days=1)))
    with store_of(database_url) as replica:
        prune_history(replica, MORNING + timedelta(days=DAYS, hours=1), DAYS)  # a and b
        assert [c.sequence for c in changes(client, after_sequence=2).changes] == [3]
        assert changes(client, after_sequence=2).oldest_sequence == 3
        assert refused_cursor(client, after=1) == "3"
        # A reader that has seen nothing starts from the oldest retained change.
        assert [c.sequence for c in changes(client).changes] == [3]
        prune_history(replica, MORNING + timedelta(days=DAYS + 2), DAYS)  # all of them
    page = changes(client, after_sequence=3)  # the reader at the latest sequence goes on
    assert (list(page.changes), page.latest_sequence, page.oldest_sequence) == ([], 3, 4)
    assert refused_cursor(client, after=2) == "4"
    assert list(changes(client).changes) == []
    clock.now = MORNING + timedelta(days=2)
    add(client, campaign("d", day=TODAY + timedelta(days=2)))
    assert [c.sequence for c in changes(client, after_sequence=3).changes] == [4]


def refused_cursor(client: CampaignServiceStub, after: int) -> str:
    """The oldest retained sequence a refusal of `after` names."""
    failure = refused(
        client.ListCampaignChanges, rpc.ListCampaignChangesRequest(vdn_id=1, after_sequence=after)
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    oldest = failure.metadata["oldest_sequence"]
    assert f"the oldest is {oldest}" in failure.message
    return oldest
