"""The contract's list-size limits, checked before anything else looks at the items.

protovalidate checks every item of a list even when the list is over its
`repeated.max_items`, so a request of 100,000 tiny items would cost seconds of
CPU and an answer of megabytes. Here over-long lists are found first (a length
per list, no item visited) and cut to their limit in a copy, which is then
validated as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.errors import FieldProblem


@dataclass(frozen=True, slots=True)
class _Limits:
    #: (field name, maximum number of items or None, whether items are messages).
    lists: tuple[tuple[str, int | None, bool], ...]
    #: Singular message fields whose messages contain limited lists.
    nested: tuple[str, ...]


def over_long_lists(message: Message, *, cut: bool = False) -> list[FieldProblem]:
    """A problem for every list longer than its limit; with `cut`, shorten it to the limit."""
    return list(_walk(message, "", cut))


def _walk(message: Message, prefix: str, cut: bool) -> Iterator[FieldProblem]:
    limits = _limits(message.DESCRIPTOR)
    for name, maximum, of_messages in limits.lists:
        items = getattr(message, name)
        if maximum is not None and len(items) > maximum:
            yield FieldProblem(
                f"{prefix}{name}",
                ResultCode.RESULT_CODE_TOO_MANY_ITEMS,
                f"must contain no more than {maximum} item(s)",
            )
            if not cut:
                continue
            del items[maximum:]
        if of_messages:
            for index, item in enumerate(items):
                yield from _walk(item, f"{prefix}{name}[{index}].", cut)
    for name in limits.nested:
        if message.HasField(name):
            yield from _walk(getattr(message, name), f"{prefix}{name}.", cut)


@cache
def _limits(descriptor: Descriptor) -> _Limits:
    lists: list[tuple[str, int | None, bool]] = []
    nested: list[str] = []
    for field in descriptor.fields:
        walkable = field.message_type is not None and _has_limits(field.message_type)
        if _is_repeated(field):
            maximum = _max_items(field)
            if maximum is not None or walkable:
                lists.append((field.name, maximum, walkable))
        elif walkable:
            nested.append(field.name)
    return _Limits(tuple(lists), tuple(nested))


def _has_limits(descriptor: Descriptor) -> bool:
    # Only the contract's own messages, which nest without cycles, are walked.
    if not descriptor.full_name.startswith("isales."):
        return False
    limits = _limits(descriptor)
    return bool(limits.lists or limits.nested)


def _is_repeated(field: FieldDescriptor) -> bool:
    if not field.is_repeated:
        return False
    return field.message_type is None or not field.message_type.GetOptions().map_entry


def _max_items(field: FieldDescriptor) -> int | None:
    rules = field.GetOptions().Extensions[validate_pb2.field]
    if rules.HasField("repeated") and rules.repeated.HasField("max_items"):
        return int(rules.repeated.max_items)
    return None
