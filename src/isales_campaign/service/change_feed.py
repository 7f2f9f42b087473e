"""The change feed of one server process: its watchers, and the changes it hands them.

A watcher reads its backlog from the store itself, then waits for live changes. The feed
reads a tenant's new records once, however many watch it, when it hears that the tenant
changed: from this process's store after each commit, and from `db.change_signals` for the
commits of other processes. It puts them in the buffer of each of the tenant's watchers.

A watcher never trusts its buffer alone: whenever what it holds does not follow the last
sequence it sent, or the feed knows of a later one, it reads the gap from the store. A
missed or late signal can delay a change; it cannot lose one, repeat one or reorder them.

Memory is bounded: a buffer holds at most `buffer` changes (the feed's messages, shared by
every watcher of the tenant). A watcher whose buffer is full is too slow to keep up: it is
ended with a status that tells it to resume (`WatcherTooSlow`), never skipped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from isales.campaign.v2.campaign_change_pb2 import CampaignChange
from isales.campaign.v2.campaign_service_pb2 import (
    ChangeBookmark,
    WatchCampaignChangesResponse,
)

from isales_campaign.metrics import CHANGE_WATCHERS
from isales_campaign.service.domain.history import check_retained
from isales_campaign.service.errors import (
    ShuttingDown,
    WatchersExhausted,
    WatcherTooSlow,
    WatchInterrupted,
)

log = logging.getLogger(__name__)

#: Changes read from the store at once (the largest page of ListCampaignChanges).
PAGE_SIZE = 100
#: Seconds before the feed reads a tenant again after the store failed.
RETRY_SECONDS = 1.0
#: Seconds a stop waits for the feed's thread (a read on a hung database may not return).
STOP_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ChangePage:
    """Changes after a sequence, ascending; with the tenant's latest sequence and its oldest
    retained one (when none is, the next one)."""

    changes: list[CampaignChange]
    latest: int
    oldest: int


#: Reads up to `limit` of a tenant's changes after a sequence: (vdn_id, after, limit).
ReadChanges = Callable[[int, int, int], ChangePage]


@dataclass(eq=False)
class _Tenant:
    watchers: set[Watcher] = field(default_factory=set)
    #: The latest sequence the feed has read (None before its first read).
    sequence: int | None = None


class ChangeFeed:
    def __init__(
        self,
        read: ReadChanges,
        *,
        max_watchers: int,
        buffer: int,
        bookmark_seconds: float,
    ) -> None:
        self._read = read
        self._max_watchers = max_watchers
        self._buffer = buffer
        self.bookmark_seconds = bookmark_seconds
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._tenants: dict[int, _Tenant] = {}
        self._dirty: set[int] = set()
        self._watchers = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End every watch (`WatchInterrupted`) and refuse new ones."""
        with self._lock:
            self._stopped = True
            for tenant in self._tenants.values():
                for watcher in tenant.watchers:
                    watcher.stopping = True
                    watcher.wake.notify()
            self._work.notify()
        if self._thread.is_alive():
            self._thread.join(STOP_SECONDS)

    def changed(self, vdn_id: int) -> None:
        """A change of the tenant was committed (here or elsewhere)."""
        if vdn_id not in self._tenants:  # nobody watches: no lock on a change's path
            return
        with self._lock:
            if vdn_id in self._tenants:
                self._dirty.add(vdn_id)
                self._work.notify()

    def changed_all(self) -> None:
        """Any tenant may have changed (a signal may have been missed)."""
        with self._lock:
            self._dirty.update(self._tenants)
            self._work.notify()

    def watched(self) -> bool:
        """Whether anybody watches now."""
        return bool(self._tenants)

    def watch(self, vdn_id: int, after: int) -> Watcher:
        """A watcher of the tenant's changes after `after`; WatchersExhausted when the process
        has as many as it takes."""
        with self._lock:
            if self._stopped:
                raise ShuttingDown()
            if self._watchers >= self._max_watchers:
                raise WatchersExhausted(self._max_watchers)
            tenant = self._tenants.get(vdn_id)
            if tenant is None:
                tenant = self._tenants[vdn_id] = _Tenant()
                self._dirty.add(vdn_id)  # to learn its latest sequence
                self._work.notify()
            watcher = Watcher(self, tenant, vdn_id, after)
            tenant.watchers.add(watcher)
            self._watchers += 1
        CHANGE_WATCHERS.inc()
        return watcher

    def _forget(self, watcher: Watcher) -> None:
        with self._lock:
            tenant = self._tenants.get(watcher.vdn_id)
            if tenant is None or watcher not in tenant.watchers:
                return
            tenant.watchers.discard(watcher)
            if not tenant.watchers:
                del self._tenants[watcher.vdn_id]
            self._watchers -= 1
        CHANGE_WATCHERS.dec()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._work.wait_for(lambda: self._stopped or bool(self._dirty))
                if self._stopped:
                    return
                dirty, self._dirty = self._dirty, set()
            for vdn_id in dirty:
                try:
                    self._read_new(vdn_id)
                except Exception:
                    log.warning("the change feed cannot read the store", exc_info=True)
                    with self._lock:
                        self._dirty.add(vdn_id)
                        self._work.wait_for(lambda: self._stopped, RETRY_SECONDS)

    def _read_new(self, vdn_id: int) -> None:
        """Read the tenant's changes after the last one read, into its watchers' buffers."""
        tenant = self._tenants.get(vdn_id)
        if tenant is None:
            return
        if tenant.sequence is None:  # the first watcher reads its backlog itself
            latest = self._read(vdn_id, 0, 0).latest
            with self._lock:
                tenant.sequence = latest if tenant.sequence is None else tenant.sequence
                for watcher in tenant.watchers:  # those that read their backlog before
                    watcher.wake.notify()
            return
        while True:
            page = self._read(vdn_id, tenant.sequence, PAGE_SIZE)
            if not page.changes:
                return
            events = [WatchCampaignChangesResponse(change=change) for change in page.changes]
            with self._lock:
                tenant.sequence = events[-1].change.sequence
                for watcher in tenant.watchers:
                    watcher.take(events, self._buffer)
            if len(page.changes) < PAGE_SIZE:
                return


class Watcher:
    """One watch of a tenant's changes; its events are read in the thread that serves it."""

    def __init__(self, feed: ChangeFeed, tenant: _Tenant, vdn_id: int, after: int) -> None:
        self._feed = feed
        self._tenant = tenant
        self.vdn_id = vdn_id
        #: The last sequence sent.
        self.sequence = after
        self.wake = threading.Condition(feed._lock)
        self._buffer: deque[WatchCampaignChangesResponse] = deque()
        self._overflowed = False
        self.stopping = False
        self._cancelled = False

    def take(self, events: list[WatchCampaignChangesResponse], limit: int) -> None:
        """Buffer new changes (the feed's lock held); a full buffer ends the watch."""
        if self._overflowed:
            return
        if len(self._buffer) + len(events) > limit:
            self._overflowed = True
            self._buffer.clear()
        else:
            self._buffer.extend(events)
        self.wake.notify()

    def cancel(self) -> None:
        """The call ended (the client went away, or the events ended): a watch whose events
        were never read is forgotten too."""
        with self.wake:
            self._cancelled = True
            self.wake.notify()
        self._feed._forget(self)

    def events(self) -> Iterator[WatchCampaignChangesResponse]:
        """The backlog, a bookmark, then live changes, with a bookmark whenever idle for
        `bookmark_seconds`; ends by raising WatcherTooSlow or WatchInterrupted."""
        try:
            yield from self._catch_up(None)
            yield self._bookmark()
            while True:
                with self.wake:
                    news = self.wake.wait_for(self._news, self._feed.bookmark_seconds)
                    if self._cancelled:
                        return
                    if self.stopping:
                        raise WatchInterrupted(self.vdn_id, self.sequence)
                    if self._overflowed:
                        raise WatcherTooSlow(self.vdn_id, self.sequence)
                    taken = list(self._buffer)
                    self._buffer.clear()
                    known = self._tenant.sequence or 0
                if not news:
                    yield self._bookmark()
                    continue
                for event in taken:
                    sequence = event.change.sequence
                    if sequence > self.sequence + 1:  # a gap: read it
                        yield from self._catch_up(sequence - 1)
                    if sequence == self.sequence + 1:
                        self.sequence = sequence
                        yield event
                if known > self.sequence:  # the feed read changes this buffer missed
                    yield from self._catch_up(known)
        finally:
            self._feed._forget(self)

    def _news(self) -> bool:
        return (
            self._cancelled
            or self.stopping
            or self._overflowed
            or bool(self._buffer)
            or (self._tenant.sequence or 0) > self.sequence
        )

    def _catch_up(self, target: int | None) -> Iterator[WatchCampaignChangesResponse]:
        """The changes after the last one sent, read from the store: up to `target`, or all."""
        while target is None or self.sequence < target:
            page = self._feed._read(self.vdn_id, self.sequence, PAGE_SIZE)
            check_retained(self.vdn_id, self.sequence, page.oldest)
            for change in page.changes:
                self.sequence = change.sequence
                yield WatchCampaignChangesResponse(change=change)
            if len(page.changes) < PAGE_SIZE:
                return

    def _bookmark(self) -> WatchCampaignChangesResponse:
        return WatchCampaignChangesResponse(bookmark=ChangeBookmark(latest_sequence=self.sequence))
