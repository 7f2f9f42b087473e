"""Contract validation: protovalidate rules of the .proto, reported with legacy codes, on
texts kept in NFC.

The one table that maps protovalidate's rule ids to legacy result codes lives
here. Custom CEL rules name their category and the offending field in their id
(`<category>[.<path>][-<detail>]`, see campaign.proto). A message that
`fast_validation` vouches for skips protovalidate: most requests are valid, and
for them protovalidate's answer is no violation at all.
"""

from __future__ import annotations

import logging
import unicodedata

from google.protobuf.message import Message
from isales.campaign.v2.campaign_pb2 import Campaign
from protovalidate import EvaluationError, Validator, Violation

from isales_campaign.result_codes import ResultCode
from isales_campaign.service import fast_validation
from isales_campaign.service.errors import FieldProblem, InvalidArgument
from isales_campaign.service.list_limits import over_long_lists

_STANDARD_RULES: dict[str, ResultCode.ValueType] = {
    "required": ResultCode.RESULT_CODE_EMPTY_PARAMETER,
    "repeated.min_items": ResultCode.RESULT_CODE_EMPTY_PARAMETER,
    "string.pattern": ResultCode.RESULT_CODE_INVALID_CHARACTERS,
    "string.max_len": ResultCode.RESULT_CODE_TOO_LONG,
    "string.min_len": ResultCode.RESULT_CODE_TOO_SHORT,
    "string.len": ResultCode.RESULT_CODE_LENGTH_OUT_OF_RANGE,
    "repeated.max_items": ResultCode.RESULT_CODE_TOO_MANY_ITEMS,
    "enum.defined_only": ResultCode.RESULT_CODE_INVALID_VALUE,
}

#: Rule families whose every rule is about the value (ranges, `in`, ...).
_VALUE_RULE_PREFIXES = ("int32.", "int64.", "uint32.", "uint64.", "enum.")

_CEL_CATEGORIES: dict[str, ResultCode.ValueType] = {
    "missing": ResultCode.RESULT_CODE_EMPTY_PARAMETER,
    "chars": ResultCode.RESULT_CODE_INVALID_CHARACTERS,
    "length": ResultCode.RESULT_CODE_LENGTH_OUT_OF_RANGE,
    "value": ResultCode.RESULT_CODE_INVALID_VALUE,
    "format": ResultCode.RESULT_CODE_CONVERSION_ERROR,
    "combination": ResultCode.RESULT_CODE_INVALID_COMBINATION,
    "pair": ResultCode.RESULT_CODE_INCOMPLETE_TIME_PAIR,
    "count": ResultCode.RESULT_CODE_TOO_MANY_ITEMS,
}

_validator = Validator()

log = logging.getLogger(__name__)


def nfc(text: str) -> str:
    """Unicode NFC, so that one text typed two ways (a composed "é" and "e" + U+0301) is
    one text."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def normalize_text(campaign: Campaign) -> None:
    """Names and descriptions are kept in NFC. (Only a change is written: writing a field
    would make an absent campaign present.)"""
    name, description = nfc(campaign.name), nfc(campaign.description)
    if name != campaign.name:
        campaign.name = name
    if description != campaign.description:
        campaign.description = description


def contract_problems(message: Message) -> list[FieldProblem]:
    """Every violation of the rules declared in the contract, in field order."""
    # A message vouched for has no list over its limit either (the fast path checks a
    # list's length before its items).
    if fast_validation.vouches_for(message):
        return []
    if over_long_lists(message):
        # Validate the items that fit within the limits, in a copy cut to them
        # (cutting also finds over-long lists inside the items that are kept).
        cut = type(message)()
        cut.CopyFrom(message)
        return over_long_lists(cut, cut=True) + _validate(cut)
    return _validate(message)


def prepare(*message_types: type[Message]) -> None:
    """Compile the fast checks of these request types before their first call."""
    fast_validation.prepare(*(message_type.DESCRIPTOR for message_type in message_types))


def require_valid(message: Message) -> None:
    """InvalidArgument with every violation of the contract's rules, if there is one."""
    problems = contract_problems(message)
    if problems:
        raise InvalidArgument(problems)


def _validate(message: Message) -> list[FieldProblem]:
    try:
        violations = _validator.collect_violations(message)
    except EvaluationError as error:
        # A rule that fails at run time (an input no rule anticipated) is the
        # request's problem, never a server error.
        log.warning("contract rule failed to evaluate: %s", type(error).__name__)
        return [FieldProblem("", ResultCode.RESULT_CODE_PARAMETER_ERROR, "could not be validated")]
    return [_to_problem(v) for v in violations]


def _to_problem(violation: Violation) -> FieldProblem:
    proto = violation.proto
    path = _render_path(proto.field.elements) if proto.field is not None else ""
    rule_id = proto.rule_id
    code = _STANDARD_RULES.get(rule_id)
    if code is None and rule_id.startswith(_VALUE_RULE_PREFIXES):
        code = ResultCode.RESULT_CODE_INVALID_VALUE
    if code is None:
        category, _, relative = rule_id.partition("-")[0].partition(".")
        code = _CEL_CATEGORIES.get(category, ResultCode.RESULT_CODE_PARAMETER_ERROR)
        if relative:
            path = f"{path}.{relative}" if path else relative
    message = proto.message or "is invalid"
    if rule_id == "required":
        message = "is mandatory"
    return FieldProblem(path=path, code=code, message=message)


def _render_path(elements: object) -> str:
    parts: list[str] = []
    for element in elements:  # type: ignore[attr-defined]
        subscript = element.subscript
        index = f"[{subscript.value}]" if subscript is not None else ""
        parts.append(f"{element.field_name}{index}")
    return ".".join(parts)
