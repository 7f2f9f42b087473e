"""The CEL subset the contract's rules are written in (`cel_subset`): what it translates to
Python and what that Python answers, what it refuses to translate (`Unsupported`) and which
values it leaves to protovalidate (`Unsure`), and its Python twins of the contract's RE2
patterns, which must agree with RE2 wherever they judge a value."""

from __future__ import annotations

from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from isales.campaign.v2 import campaign_pb2 as pb
from protovalidate import Validator

from isales_campaign.service.cel_subset import (
    HELPERS,
    PATTERNS,
    CelType,
    Unsupported,
    Unsure,
    translate,
)
from tests.examples import example_campaign, ivr_campaign

CAMPAIGN = pb.Campaign.DESCRIPTOR


def evaluate(expression: str, value: Any, cel_type: CelType = "string") -> bool:
    """The answer of the Python that `expression` translates to, `this` being `value`."""
    namespace = {**HELPERS, "v": value}
    # The source is translated from the test's own expressions.
    return bool(eval(translate(expression, ("v", cel_type)), namespace))  # noqa: S307


# -- what it translates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("size(this) <= 5", "abcde", True),
        ("size(this) <= 5", "abcdef", False),
        ("this.size() == 0 || this.startsWith('ab') && this.endsWith('z')", "abz", True),
        ("this.size() == 0 || this.startsWith('ab') && this.endsWith('z')", "", True),
        ("this.size() == 0 || this.startsWith('ab') && this.endsWith('z')", "az", False),
        ("this + '!' == 'hi!'", "hi", True),
        ("this in ['a', 'b']", "b", True),
        ("this in ['a', 'b']", "c", False),
        ("this == 'it\\'s \"so\"\\n'", 'it\'s "so"\n', True),
        ("this < 'b'", "abc", True),  # strings compare by code point
        ("this.matches('^[0-9]*$')", "0123", True),
        ("this.matches('^[0-9]*$')", "12a", False),
        ("this.isUri()", "https://10.10.10.10/xxx/xxx", True),
    ],
)
def test_string_rules_answer_as_cel_does(expression: str, value: str, expected: bool) -> None:
    assert evaluate(expression, value) is expected


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("this >= 1 && this <= 5", 5, True),
        ("this >= 1 && this <= 5", 6, False),
        ("!(this == 3)", 3, False),
        ("-this < 0", 4, True),
        ("int(this) - 1 == 4", 5, True),
        ("this in [2, 5, 6]", 6, True),
    ],
)
def test_int_rules_answer_as_cel_does(expression: str, value: int, expected: bool) -> None:
    assert evaluate(expression, value, "int") is expected


@pytest.mark.parametrize(
    ("expression", "skill_queue", "ivr"),
    [
        ("has(this.skill_param)", True, False),  # a message field
        ("has(this.max_alerting_time)", True, True),  # a field with presence
        ("has(this.caller_no)", True, True),  # a list: not empty
        ("has(this.description)", True, True),  # a string without presence: not empty
        ("this.device_type in [2, 5, 6]", True, False),  # enums are ints
        ("size(this.caller_no) == 2", True, True),
        ("this.caller_no.all(c, c.priority >= 3)", True, True),
        ("this.caller_no.exists(c, c.access_code == '88880066')", True, True),
        ("this.caller_no.filter(c, c.priority > 3).size() == 1", True, True),
        ("this.ivr_param.call_count == 3", False, True),
        (
            "this.schedule_param.workday_begin_time1 < this.schedule_param.workday_end_time1",
            True,
            True,
        ),
    ],
)
def test_message_rules_read_fields_as_their_descriptors_say(
    expression: str, skill_queue: bool, ivr: bool
) -> None:
    assert evaluate(expression, example_campaign(), CAMPAIGN) is skill_queue
    assert evaluate(expression, ivr_campaign(), CAMPAIGN) is ivr


def test_has_on_a_field_without_presence_is_its_default() -> None:
    empty = pb.Campaign()
    assert not evaluate("has(this.description)", empty, CAMPAIGN)
    empty.description = "x"
    assert evaluate("has(this.description)", empty, CAMPAIGN)


@pytest.mark.parametrize(
    ("expression", "value", "cel_type"),
    [
        ("this + 1 > 0", 2**63 - 1, "int"),  # CEL reports the overflow as an error
        ("this - 1 < 0", -(2**63), "int"),
        ("this.matches('^[\\\\p{L}\\\\p{N}_]*$')", "名前", "string"),  # a Unicode class
        ("this.isUri()", "https://[::1]:8080/", "string"),  # beyond the plain shape
        ("this.isUri()", "http://h:65536/", "string"),
    ],
)
def test_a_value_it_cannot_judge_exactly_is_left_to_protovalidate(
    expression: str, value: object, cel_type: CelType
) -> None:
    with pytest.raises(Unsure):
        evaluate(expression, value, cel_type)


# -- what it refuses to translate -------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "this.lowerAscii() == 'a'",
        "this.matches('^[a-z]+$')",
        "this > 1.5",
        "this ? 1 : 2",
        "size(this) == '5'",
    ],
)
def test_expressions_beyond_the_subset_are_refused(expression: str) -> None:
    with pytest.raises(Unsupported):
        translate(expression, ("v", "string"))


@pytest.mark.parametrize(
    ("expression", "cel_type"),
    [
        ("that == 'a'", "string"),  # an unknown name
        ("this.nickname == 'a'", CAMPAIGN),  # an unknown field
        ("size(this)", "string"),  # not a boolean
        ("this == 1", "string"),  # types that differ
        ("this in [1, 'a']", "int"),  # a list of two types
        ("this == '\\x41'", "string"),  # an escape it does not read
        ("this.exists(c, c == 'a')", "string"),  # a macro on a string
        ("this.all(c, c)", ("list", "string")),  # a macro without a condition
        ("this == 'a' )", "string"),  # unbalanced
        ("this == ", "string"),  # cut short
        ("this == 'a' # b", "string"),  # not CEL
        ("has(this)", "string"),  # has() of a variable
        ("this.caller_no[0].priority == 3", CAMPAIGN),  # an index
    ],
)
def test_what_it_does_not_know_is_unsupported(expression: str, cel_type: CelType) -> None:
    with pytest.raises(Unsupported):
        translate(expression, ("v", cel_type))


# -- the Python twins of the RE2 patterns -----------------------------------------------------


def _cel_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pattern_message() -> Any:
    """A message type with one string field per pattern, whose only rule is that pattern."""
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/service/cel_subset_patterns.proto",
        package="tests.cel_subset",
        syntax="proto3",
        dependency=["buf/validate/validate.proto"],
    )
    message = file.message_type.add(name="Patterns")
    for index, pattern in enumerate(PATTERNS):
        field = message.field.add(
            name=f"p{index}",
            number=index + 1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        rule = field.options.Extensions[validate_pb2.field].cel.add()
        rule.id = f"p{index}"
        rule.expression = f"this.matches({_cel_string(pattern)})"
    descriptor_pool.Default().Add(file)
    found = descriptor_pool.Default().FindMessageTypeByName("tests.cel_subset.Patterns")
    return message_factory.GetMessageClass(found)


PATTERN_MESSAGE = _pattern_message()
RE2 = Validator()
SAMPLES = [
    "", " ", "\t", "\x0b", "\n", "a", "A_1", "a b", "a\n", "a\x00", "a\x1f", "a\x7f", "~",
    '"', "[", "]", "=", ";", "<", ">", "'", "&", "|", "\\", "long0825",
    "0", "123", "12a", "0" * 18, "0" * 19, "a.b:c-d_e", "x" * 64, "x" * 65,
    "2026-11-26 10:00:00", "2026-11-26 10:00:00\n", "2026-1-26 10:00:00", "2026-11-26T10:00:00",
    "00:00", "09:30", "23:59", "24:00", "9:00", "12:60", "12:00\n",
    "https://10.10.10.10/xxx/xxx/xxx", "http://example.com:8080/a", "http://h:65535",
    "http://h:0", "https://a.b/x?y=1", "https://user@h/", "https://[::1]/", "ftp://h/",
    "http://", "https://a b/", "https://-/", "http://h:65536",
    "名前", "é", "\u3000", "a\u200b", "a\u2028", "\x85", "\xa0", "٣",
]  # fmt: skip


def re2_matches(index: int, value: str) -> bool:
    """Whether RE2 (protovalidate's `matches`) matches pattern `index` on `value`."""
    violations = RE2.collect_violations(PATTERN_MESSAGE(**{f"p{index}": value}))
    return all(violation.proto.rule_id != f"p{index}" for violation in violations)


def twin_matches(index: int, value: str) -> bool | None:
    """The twin's answer, or None where it leaves the value to protovalidate."""
    try:
        return bool(list(PATTERNS.values())[index](value))
    except Unsure:
        return None


@pytest.mark.parametrize("index", range(len(PATTERNS)), ids=lambda i: f"pattern {i}")
def test_each_twin_agrees_with_re2_on_the_samples(index: int) -> None:
    judged = {value: twin_matches(index, value) for value in SAMPLES}
    for value, answer in judged.items():
        if answer is not None:
            assert answer == re2_matches(index, value), (list(PATTERNS)[index], value)
    # Every twin judges some of the samples (the URL's twin only those that match).
    assert set(judged.values()) - {None}


@settings(max_examples=200, deadline=None)
@given(value=st.text(st.characters(codec="ascii"), max_size=30) | st.text(max_size=10))
@pytest.mark.parametrize("index", range(len(PATTERNS)), ids=lambda i: f"pattern {i}")
def test_each_twin_agrees_with_re2_on_any_text(index: int, value: str) -> None:
    answer = twin_matches(index, value)
    if answer is not None:
        assert answer == re2_matches(index, value)
