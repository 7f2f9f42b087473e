"""The change history: what the record of a change says of it."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.message import Message

from isales_campaign.service.errors import HistoryPruned


def check_retained(vdn_id: int, after: int, oldest: int) -> None:
    """A reader that has seen up to `after` can go on only while the changes after it are
    all retained (`oldest`: the oldest retained sequence; when none is, the next one). A
    reader that has seen nothing (0) starts from the oldest retained change."""
    if after and after + 1 < oldest:
        raise HistoryPruned(vdn_id, after, oldest)


def retention_cutoff(now: datetime, retention_days: int) -> datetime | None:
    """The change time before which records are pruned, or None to keep them all: a
    retention of 0 days, or one that reaches back past the calendar's first day."""
    if retention_days <= 0:
        return None
    try:
        return now - timedelta(days=retention_days)
    except OverflowError:
        return None


def changed_fields(before: Message, after: Message, prefix: str = "") -> list[str]:
    """The paths of the fields whose values differ between two messages of one type (a
    sub-message's own fields where both have it; a list as a whole), in field order."""
    paths: list[str] = []
    for field in after.DESCRIPTOR.fields:
        name = field.name
        repeated = field.is_repeated
        if field.message_type is not None and not repeated:
            present = (before.HasField(name), after.HasField(name))
            if present == (True, True):
                inner_before, inner_after = getattr(before, name), getattr(after, name)
                # Equal sub-messages compare in C: a modification walks only what it changed
                # (a campaign walked whole cost 60 us).
                if inner_before != inner_after:
                    paths += changed_fields(inner_before, inner_after, f"{prefix}{name}.")
            elif present[0] != present[1]:
                paths.append(prefix + name)
            continue
        presence = field.has_presence and not repeated
        if (presence and before.HasField(name) != after.HasField(name)) or getattr(
            before, name
        ) != getattr(after, name):
            paths.append(prefix + name)
    return paths
