"""Retention of the change history: records older than the retention are pruned.

A pass visits the tenants whose oldest record is old enough and deletes their oldest records a
batch at a time, each batch in a short transaction of its own under the tenant's lock: a change
of the tenant waits for one batch at most. Passes of several processes or replicas may overlap:
each batch deletes what is still there and moves the tenant's pruned sequence forward only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from isales_campaign.service.db.store import CampaignStore
from isales_campaign.service.domain import history
from isales_campaign.service.domain.legacy_time import utc_naive

log = logging.getLogger(__name__)

#: Records deleted per transaction: a change of the tenant waits for one batch at most (500
#: took 5 ms on SQLite and 15 ms on PostgreSQL, commit included, on the development VM).
PRUNE_BATCH = 500
#: Seconds between a server's passes: records age by the day, so an hour late prunes a day's
#: records an hour late, and a pass with nothing to prune reads one record per tenant.
PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a pass pruned."""

    tenants: int
    records: int
    seconds: float


def prune_history(
    store: CampaignStore,
    now: datetime,
    retention_days: int,
    *,
    batch: int = PRUNE_BATCH,
    stopping: Callable[[], bool] = lambda: False,
) -> Pruned:
    """Prune the records made more than `retention_days` before `now` (aware), `batch` per
    transaction, until done or `stopping()`; logs a line when it pruned something."""
    started = time.monotonic()
    cutoff = history.retention_cutoff(now, retention_days)
    tenants = records = 0
    if cutoff is not None:
        before = utc_naive(cutoff)
        for vdn_id in store.tenants_to_prune(before):
            pruned = _prune_tenant(store, vdn_id, before, batch, stopping)
            tenants += pruned > 0
            records += pruned
    result = Pruned(tenants, records, time.monotonic() - started)
    if records:
        log.info(
            "change history pruned",
            extra={"tenants": tenants, "records": records, "seconds": round(result.seconds, 3)},
        )
    return result


def _prune_tenant(
    store: CampaignStore, vdn_id: int, before: datetime, batch: int, stopping: Callable[[], bool]
) -> int:
    pruned = 0
    while not stopping():
        with store.unit_of_work(vdn_id) as transaction:
            deleted = transaction.prune_changes(before, batch)
        pruned += deleted
        if deleted < batch:  # the batch reached a record to keep, or the last record
            break
    return pruned


class HistoryPruner:
    """Prunes the change history in a daemon thread: at start, then every `interval`
    seconds, until stopped. A pass that fails (the database, most likely) is logged and tried
    again at the next one."""

    def __init__(
        self,
        store: CampaignStore,
        retention_days: int,
        clock: Callable[[], datetime],
        *,
        interval: float = PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._retention_days = retention_days
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-pruner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop after the batch under way, waiting for it at most `timeout` seconds; whether
        the thread has ended (a daemon thread, it is otherwise left to the process's end)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_pass(self) -> Pruned | None:
        """One pass; None when it failed."""
        try:
            return prune_history(
                self._store, self._clock(), self._retention_days, stopping=self._stop.is_set
            )
        except Exception:
            log.warning(
                "pruning the change history failed; the next pass tries again", exc_info=True
            )
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_pass()
            self._stop.wait(self._interval)
