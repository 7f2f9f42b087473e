"""How the contract's messages travel in the vendor's legacy JSON, read from the contract.

The mapping is mechanical (the key is the lowerCamelCase of the field name, enums keep the
vendor's numbers) except where a field carries a `legacy_json.proto` option:

* `legacy_json_string`: a repeated message field sent as a JSON *string* holding the array;
* `legacy_key`: another key; fields sharing one are alternatives of one value (`policy`).

Requests are read by `translate`, answers written by `render_*` below, the OpenAPI document
and error paths use `legacy_key`: each reads these options here, nowhere else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from isales.campaign.v2 import legacy_json_pb2
from isales.campaign.v2.campaign_pb2 import CallerNo, Campaign

__all__ = [
    "caller_numbers",
    "is_json_string",
    "legacy_key",
    "lower_camel",
    "renamed_fields",
    "render_campaign",
    "render_message",
]


def lower_camel(snake: str) -> str:
    """`max_alerting_time` -> `maxAlertingTime`."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# `FieldDescriptor | Any`: the protobuf stubs type a message's fields as upb's own class.
# Cached: descriptors live as long as the process, and answers read every field's options.
@cache
def legacy_key(field: FieldDescriptor | Any) -> str:
    """The key of a field in the legacy JSON."""
    declared: str = field.GetOptions().Extensions[legacy_json_pb2.legacy_key]
    return declared or lower_camel(field.name)


@cache
def is_json_string(field: FieldDescriptor | Any) -> bool:
    """Whether the legacy JSON sends this repeated message field as a JSON string."""
    return bool(field.GetOptions().Extensions[legacy_json_pb2.legacy_json_string])


@cache
def renamed_fields() -> dict[str, str]:
    """Proto field name -> legacy key, for the fields whose key is not the mechanical one."""
    renamed: dict[str, str] = {}

    def walk(descriptor: Any, seen: set[str]) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if legacy_key(field) != lower_camel(field.name):
                renamed[field.name] = legacy_key(field)
            if field.message_type is not None:
                walk(field.message_type, seen)

    walk(Campaign.DESCRIPTOR, set())
    return renamed


def render_message(message: Message) -> dict[str, Any]:
    """A message as the legacy JSON writes it: every field, unset ones as null."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        key = legacy_key(field)
        if field.is_repeated:
            items = getattr(message, field.name)
            if field.message_type is None:
                value: Any = list(items)
            else:
                value = [render_message(item) for item in items]
            if is_json_string(field):
                value = orjson.dumps(value).decode() if value else None
            elif key in out and not value:
                continue  # the other alternative of this key is the one set
        elif field.has_presence and not message.HasField(field.name):
            if key in out:
                continue
            value = None
        elif field.message_type is not None:
            value = render_message(getattr(message, field.name))
        else:
            value = getattr(message, field.name)
            if value == "":
                value = None
        out[key] = value
    return out


def caller_numbers(numbers: list[CallerNo]) -> str:
    """The query answers' `callerNo`: access codes by priority (then as given), joined by
    commas."""
    ordered = sorted(enumerate(numbers), key=lambda item: (item[1].priority, item[0]))
    return ",".join(number.access_code for _, number in ordered)


def render_campaign(campaign: Campaign) -> dict[str, Any]:
    """A stored campaign in the query answers' form: add V2's JSON, except that `callerNo`
    is a string."""
    rendered = render_message(campaign)
    rendered["callerNo"] = caller_numbers(list(campaign.caller_no))
    return rendered
