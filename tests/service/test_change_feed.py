"""The change feed of one process (`service/change_feed.py`) on a history kept in memory: what
it hands its watchers when signals are missed, when the store fails, and when it stops."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest
from isales.campaign.v2.campaign_change_pb2 import CampaignChange
from isales.campaign.v2.campaign_service_pb2 import WatchCampaignChangesResponse

from isales_campaign.service import change_feed
from isales_campaign.service.change_feed import ChangeFeed, ChangePage
from isales_campaign.service.errors import WatchInterrupted

PROMPTLY = 10.0


class History:
    """One tenant's records; a read can be made to fail."""

    def __init__(self) -> None:
        self.changes: list[CampaignChange] = []
        self.failures = 0

    def commit(self) -> None:
        self.changes.append(CampaignChange(vdn_id=1, sequence=len(self.changes) + 1))

    def read(self, _vdn_id: int, after: int, limit: int) -> ChangePage:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database went away")
        page = [c for c in self.changes if c.sequence > after][:limit]
        return ChangePage(page, len(self.changes), 1)


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def feed(history: History) -> Iterator[ChangeFeed]:
    started = ChangeFeed(history.read, max_watchers=10, buffer=100, bookmark_seconds=60)
    started.start()
    yield started
    started.stop()


def _reading(feed: ChangeFeed) -> queue.Queue[WatchCampaignChangesResponse | Exception]:
    """The events of a watcher of tenant 1, read by a thread as they come."""
    events: queue.Queue[WatchCampaignChangesResponse | Exception] = queue.Queue()
    watcher = feed.watch(1, 0)

    def read() -> None:
        try:
            for event in watcher.events():
                events.put(event)
        except Exception as error:
            events.put(error)

    threading.Thread(target=read, daemon=True).start()
    return events


def _sequences(
    events: queue.Queue[WatchCampaignChangesResponse | Exception], count: int
) -> list[int]:
    found: list[int] = []
    while len(found) < count:
        event = events.get(timeout=PROMPTLY)
        assert isinstance(event, WatchCampaignChangesResponse), event
        if event.HasField("change"):
            found.append(event.change.sequence)
    return found


def test_a_change_whose_signal_was_missed_comes_with_the_next_one(
    feed: ChangeFeed, history: History
) -> None:
    history.commit()
    events = _reading(feed)
    assert _sequences(events, 1) == [1]
    history.commit()  # nobody says so
    history.commit()
    feed.changed(1)
    assert _sequences(events, 2) == [2, 3]


def test_a_read_that_fails_is_tried_again(
    feed: ChangeFeed, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_feed, "RETRY_SECONDS", 0.05)
    events = _reading(feed)
    assert events.get(timeout=PROMPTLY).bookmark.latest_sequence == 0  # type: ignore[union-attr]
    history.failures = 1
    history.commit()
    feed.changed(1)
    assert _sequences(events, 1) == [1]


def test_a_stopped_feed_ends_its_watches_naming_where_to_resume(
    feed: ChangeFeed, history: History
) -> None:
    history.commit()
    events = _reading(feed)
    assert _sequences(events, 1) == [1]
    feed.stop()
    ended = events.get(timeout=PROMPTLY)
    while isinstance(ended, WatchCampaignChangesResponse):  # its bookmark
        ended = events.get(timeout=PROMPTLY)
    assert isinstance(ended, WatchInterrupted)
    assert ended.metadata["resume_after_sequence"] == "1"
