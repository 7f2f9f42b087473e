"""The contract's rules of a campaign's call policy (its call type, choice and turns), each
provoked over gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

from isales.campaign.v2 import campaign_pb2 as pb

from tests.service.helpers import (
    CHARS,
    EMPTY,
    TOO_LONG,
    TOO_MANY,
    VALUE,
    C,
    Mutation,
    rule_enforcement_test,
    set_field,
    turns,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    (
        "chooseType missing for round",
        lambda c: c.call_policy.ClearField("choose_type"),
        C + "call_policy.choose_type",
        EMPTY,
    ),
    (
        "turns missing for round",
        lambda c: c.call_policy.ClearField("turns"),
        C + "call_policy.turns",
        EMPTY,
    ),
    (
        "turnType missing by category",
        turns(0, pb.Turn(turn_order=1)),
        C + "call_policy.turns",
        EMPTY,
    ),
    (
        "turnOrder missing by sequence",
        turns(1, pb.Turn(turn_type="SI")),
        C + "call_policy.turns",
        EMPTY,
    ),
    # 02000002 invalid characters
    (
        "turnType special characters",
        turns(0, pb.Turn(turn_type="S I")),
        C + "call_policy.turns[0].turn_type",
        CHARS,
    ),
    # 02000003 too long
    (
        "turnType 21 characters",
        turns(0, pb.Turn(turn_type="T" * 21)),
        C + "call_policy.turns[0].turn_type",
        TOO_LONG,
    ),
    # 02000007 incorrect value
    (
        "turnOrder 11",
        turns(1, pb.Turn(turn_order=11)),
        C + "call_policy.turns[0].turn_order",
        VALUE,
    ),
    ("callType 2", set_field("call_policy.call_type", 2), C + "call_policy.call_type", VALUE),
    ("chooseType 2", set_field("call_policy.choose_type", 2), C + "call_policy.choose_type", VALUE),
    # 02000011 too many items
    (
        "11 turns",
        turns(0, *[pb.Turn(turn_type=f"T{i}") for i in range(11)]),
        C + "call_policy.turns",
        TOO_MANY,
    ),
]

#: Cases whose change necessarily breaks a second rule too: none of these.
ALSO_BROKEN: dict[str, dict[str, set[str]]] = {}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)
