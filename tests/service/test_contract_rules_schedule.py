"""The contract's rules of a campaign's schedule (its workday and holiday segments), each
provoked over gRPC against a real server.

Each case breaks one rule of the documented example and expects the legacy
code at the offending field's path, in a `BadRequest` of an INVALID_ARGUMENT.
"""

from __future__ import annotations

from tests.service.helpers import (
    COMBINATION,
    EMPTY,
    FORMAT,
    LENGTH,
    PAIR,
    SCH,
    VALUE,
    C,
    Mutation,
    all_of,
    clear_field,
    rule_enforcement_test,
    set_field,
)

# (id, mutation, path of the expected violation, its legacy code)
CASES: list[tuple[str, Mutation, str, str]] = [
    # 02000001 empty parameter, including the conditional ones
    ("scheduleParam missing", clear_field("schedule_param"), C + "schedule_param", EMPTY),
    (
        "no workday segment",
        all_of(
            set_field("schedule_param.workday_begin_time1", ""),
            set_field("schedule_param.workday_end_time1", ""),
        ),
        SCH + "workday_begin_time1",
        EMPTY,
    ),
    # 02000005 length out of range (fixed-length formats)
    (
        "segment time 9:00",
        set_field("schedule_param.workday_begin_time1", "9:00"),
        SCH + "workday_begin_time1",
        LENGTH,
    ),
    # 02000007 incorrect value
    (
        "segment end before begin",
        set_field("schedule_param.workday_end_time1", "00:00"),
        SCH + "workday_end_time1",
        VALUE,
    ),
    # 02000008 conversion errors
    (
        "segment begin 99:99",
        set_field("schedule_param.workday_begin_time1", "99:99"),
        SCH + "workday_begin_time1",
        FORMAT,
    ),
    (
        "segment end 12:60",
        set_field("schedule_param.workday_end_time1", "12:60"),
        SCH + "workday_end_time1",
        FORMAT,
    ),
    (
        "segment time 25:00",
        set_field("schedule_param.holiday_end_time1", "25:00"),
        SCH + "holiday_end_time1",
        FORMAT,
    ),
    # 02000009 incorrect combination
    (
        "workday segments overlap",
        all_of(
            set_field("schedule_param.workday_begin_time2", "12:00"),
            set_field("schedule_param.workday_end_time2", "13:00"),
        ),
        SCH + "workday_begin_time2",
        COMBINATION,
    ),
    (
        "holiday segments overlap",
        all_of(
            set_field("schedule_param.holiday_begin_time3", "16:00"),
            set_field("schedule_param.holiday_end_time3", "18:00"),
        ),
        SCH + "holiday_begin_time3",
        COMBINATION,
    ),
    # 02000010 segment begin and end together
    (
        "workday begin without end",
        set_field("schedule_param.workday_begin_time2", "12:00"),
        SCH + "workday_end_time2",
        PAIR,
    ),
    (
        "holiday end without begin",
        set_field("schedule_param.holiday_end_time3", "20:00"),
        SCH + "holiday_begin_time3",
        PAIR,
    ),
]

#: Cases whose change necessarily breaks a second rule too: none of these.
ALSO_BROKEN: dict[str, dict[str, set[str]]] = {}


test_rule_is_enforced = rule_enforcement_test(CASES, ALSO_BROKEN)
