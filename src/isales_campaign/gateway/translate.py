"""Legacy JSON body -> `Campaign`, walking the message descriptors.

The mapping is mechanical (lowerCamel JSON key = snake_case proto field, enums keep the
vendor's numbers) except where the contract's `legacy_json` options say otherwise (read in
`legacy_json`):

* fields marked `legacy_json_string` (`retryPolicy.resultRetry`, `.policyJson`, `.busiPolicy`)
  travel as JSON *strings*, possibly single-quoted as in the vendor's own example; inside them
  integers may be written as strings.
* fields sharing a `legacy_key` are alternatives of one value: `policyJson[i].policy` holds
  `common_policy` (an object) or `result_policy` (a list, or a single object), chosen by its
  shape and `type`.

At the top level types are strict, but for an integer written as a string of decimal digits
(`"priority": "4"`), which a Jackson-based backend like the vendor's takes. A key twice in one
object is refused (which of the two
would count is anyone's guess). Every problem is collected; nothing is validated beyond JSON
types and conversions (the service owns the contract rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from isales.campaign.v2 import campaign_pb2

from isales_campaign.gateway.errors import DuplicateKey
from isales_campaign.gateway.legacy_json import is_json_string, legacy_key
from isales_campaign.gateway.problems import Problem
from isales_campaign.result_codes import ResultCode

__all__ = [
    "INT32_MAX",
    "integer_of_text",
    "json_object",
    "loads",
    "parse_embedded_json",
    "translate_campaign",
]

_WRONG_TYPE = ResultCode.RESULT_CODE_WRONG_TYPE
_INVALID_VALUE = ResultCode.RESULT_CODE_INVALID_VALUE
_CONVERSION = ResultCode.RESULT_CODE_CONVERSION_ERROR

_INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INT_TEXT = re.compile(r"\s*-?[0-9]+\s*")
_DECIMAL = re.compile(r"-?[0-9]+")


# Field kinds: plain ints, not an Enum, because the walk compares them for every key.
_INT, _STRING, _MESSAGE, _MESSAGES, _STRINGS, _EMBEDDED_LIST, _POLICY = range(7)


@dataclass(slots=True)
class _Field:
    name: str
    kind: int
    plan: dict[str, _Field] = field(default_factory=dict)
    #: For POLICY: the plans of common_policy and result_policy.
    alt: dict[str, _Field] = field(default_factory=dict)


_plans: dict[str, dict[str, _Field]] = {}


def _plan(descriptor: Descriptor) -> dict[str, _Field]:
    """JSON key -> how to read it, for one message type (built once)."""
    cached = _plans.get(descriptor.full_name)
    if cached is not None:
        return cached
    plan: dict[str, _Field] = {}
    _plans[descriptor.full_name] = plan
    for fd in descriptor.fields:
        repeated = fd.is_repeated
        key = legacy_key(fd)
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            assert fd.message_type is not None
            kind = _MESSAGES if repeated else _MESSAGE
            if is_json_string(fd):
                kind = _EMBEDDED_LIST
            spec = _Field(fd.name, kind, _plan(fd.message_type))
            shared = plan.get(key)
            if shared is not None:
                # Two fields under one key: an object (common) or a list (result) of them.
                single, many = (shared, spec) if shared.kind == _MESSAGE else (spec, shared)
                spec = _Field("", _POLICY, alt={"common": single, "result": many})
            plan[key] = spec
        elif fd.type == FieldDescriptor.TYPE_STRING:
            kind = _STRINGS if repeated else _STRING
            plan[key] = _Field(fd.name, kind)
        elif fd.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM) and not repeated:
            plan[key] = _Field(fd.name, _INT)
        else:  # the contract has no other field types; fail loudly if it grows one
            raise TypeError(f"unsupported field {descriptor.full_name}.{fd.name}")
    return plan


_CAMPAIGN_PLAN = _plan(campaign_pb2.Campaign.DESCRIPTOR)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def loads(text: str | bytes) -> Any:
    """Strict JSON: UTF-8, no NaN or Infinity, no key twice in an object. Raises ValueError
    (DuplicateKey for a repeated key) or RecursionError (nesting too deep)."""
    return _DECODER.decode(text.decode() if isinstance(text, bytes) else text)


def json_object(body: bytes) -> dict[str, Any] | list[Problem]:
    """A request body's JSON object (a UTF-8 byte order mark is allowed), or the problem."""
    try:
        document = loads(body.removeprefix(b"\xef\xbb\xbf"))
    except DuplicateKey as error:
        return [Problem("", _WRONG_TYPE, f"the body is ambiguous: {error}")]
    except (ValueError, RecursionError) as error:
        return [Problem("", _WRONG_TYPE, f"the body is not valid JSON ({error})")]
    if type(document) is not dict:
        return [Problem("", _WRONG_TYPE, "the body must be a JSON object")]
    return document


def translate_campaign(body: bytes) -> campaign_pb2.Campaign | list[Problem]:
    """The campaign of a legacy request body (add or modify), or every problem that
    prevents it."""
    document = json_object(body)
    if isinstance(document, list):
        return document
    problems: list[Problem] = []
    campaign = _message(document, _CAMPAIGN_PLAN, "", False, problems)
    if problems:
        return problems
    try:
        return campaign_pb2.Campaign(**campaign)
    except (ValueError, TypeError) as error:  # not expected: every value was checked above
        return [Problem("", _CONVERSION, f"the body cannot be converted ({error})")]


def parse_embedded_json(text: str) -> Any:
    """Decode a JSON-in-a-string value, accepting single-quoted strings. Raises ValueError."""
    if "'" not in text:
        return loads(text)
    if '"' not in text and "\\" not in text:
        # Without double quotes or escapes, every ' delimits a string: a plain swap is exact.
        return loads(text.replace("'", '"'))
    try:
        return loads(text)  # valid JSON whose strings merely contain apostrophes
    except DuplicateKey:
        raise
    except ValueError:
        return loads(_requote(text))


def _requote(text: str) -> str:
    """Rewrite single-quoted strings as double-quoted ones, leaving double-quoted ones alone."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif char == "'":
            j = i + 1
            out.append('"')
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    out.append("'" if text[j + 1] == "'" else text[j : j + 2])
                    j += 2
                    continue
                out.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' if j < n else "")  # an unterminated string stays invalid
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _message(
    obj: dict[str, Any], plan: dict[str, _Field], path: str, lenient: bool, problems: list[Problem]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        spec = plan.get(key)
        if spec is None or value is None:  # unknown keys are ignored, null is "not given"
            continue
        kind = spec.kind
        # Fast paths first: the common, valid scalar needs no path string.
        if kind == _INT and type(value) is int and _INT32_MIN <= value <= INT32_MAX:
            out[spec.name] = value
            continue
        if kind == _STRING and type(value) is str:
            out[spec.name] = value
            continue
        where = f"{path}.{key}" if path else key
        if kind == _INT:
            number = _int(value, where, lenient, problems)
            if number is not None:
                out[spec.name] = number
        elif kind == _STRING:
            problems.append(Problem(where, _WRONG_TYPE, "must be a string"))
        elif kind == _MESSAGE:
            if type(value) is dict:
                out[spec.name] = _message(value, spec.plan, where, lenient, problems)
            else:
                problems.append(Problem(where, _WRONG_TYPE, "must be an object"))
        elif kind == _MESSAGES:
            items = _objects(value, where, problems)
            out[spec.name] = [
                _message(item, spec.plan, f"{where}[{i}]", lenient, problems) for i, item in items
            ]
        elif kind == _STRINGS:
            out[spec.name] = _strings(value, where, problems)
        elif kind == _EMBEDDED_LIST:
            decoded = _embedded(value, where, problems)
            if decoded is not None:
                items = _objects(decoded, where, problems, single_ok=True)
                out[spec.name] = [
                    _message(item, spec.plan, f"{where}[{i}]", True, problems) for i, item in items
                ]
        else:
            _policy(obj, value, spec, where, out, problems)
    return out


def _int(value: Any, where: str, lenient: bool, problems: list[Problem]) -> int | None:
    if type(value) is int:  # `type is`, not isinstance: a JSON true is not an integer
        if _INT32_MIN <= value <= INT32_MAX:
            return value
        problems.append(Problem(where, _INVALID_VALUE, "is outside the 32-bit integer range"))
        return None
    if type(value) is str and (lenient or _DECIMAL.fullmatch(value)):
        # The vendor's examples write integers as strings inside the embedded JSON; at the top
        # level a string of decimal digits is taken as a Jackson-based backend (the vendor's)
        # takes it, and nothing looser (blanks, signs other than `-`, fractions).
        try:
            return integer_of_text(value)
        except OverflowError:
            problems.append(Problem(where, _INVALID_VALUE, "is outside the 32-bit integer range"))
        except ValueError:
            problems.append(Problem(where, _CONVERSION, "is not an integer"))
        return None
    problems.append(Problem(where, _WRONG_TYPE, "must be an integer"))
    return None


def integer_of_text(text: str, bits: int = 32) -> int:
    """The signed integer of `bits` bits a decimal text holds (blanks around it allowed).
    ValueError when it holds no integer, OverflowError when the integer does not fit."""
    if not _INT_TEXT.fullmatch(text):
        raise ValueError(f"not an integer: {text!r}")
    bound = 2 ** (bits - 1)
    digits = text.strip().lstrip("-")
    # The length first: int() of thousands of digits is slow, and refused beyond 4,300.
    if len(digits) > len(str(bound)) or not -bound <= int(text) < bound:
        raise OverflowError(f"outside the {bits}-bit integer range: {text!r}")
    return int(text)


def _objects(
    value: Any, where: str, problems: list[Problem], *, single_ok: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, object) pairs of an array of objects; other items are reported, in order."""
    if single_ok and type(value) is dict:
        yield 0, value
        return
    if type(value) is not list:
        expected = "an array of objects" + (" (or one object)" if single_ok else "")
        problems.append(Problem(where, _WRONG_TYPE, f"must be {expected}"))
        return
    for i, item in enumerate(value):
        if type(item) is dict:
            yield i, item
        else:
            problems.append(Problem(f"{where}[{i}]", _WRONG_TYPE, "must be an object"))


def _strings(value: Any, where: str, problems: list[Problem]) -> list[str]:
    if type(value) is not list:
        problems.append(Problem(where, _WRONG_TYPE, "must be an array of strings"))
        return []
    good: list[str] = []
    for i, item in enumerate(value):
        if type(item) is str:
            good.append(item)
        else:
            problems.append(Problem(f"{where}[{i}]", _WRONG_TYPE, "must be a string"))
    return good


def _embedded(value: Any, where: str, problems: list[Problem]) -> Any:
    """The decoded content of a JSON-in-a-string field; None when absent or broken."""
    if type(value) is not str:
        problems.append(Problem(where, _WRONG_TYPE, "must be a string holding JSON"))
        return None
    if not value.strip():  # legacy clients send "" for an unused policy
        return None
    try:
        return parse_embedded_json(value)
    except DuplicateKey as error:
        problems.append(Problem(where, _WRONG_TYPE, f"is ambiguous: {error}"))
        return None
    except (ValueError, RecursionError):
        problems.append(Problem(where, _CONVERSION, "is not valid JSON"))
        return None


def _policy(
    obj: dict[str, Any],
    value: Any,
    spec: _Field,
    where: str,
    out: dict[str, Any],
    problems: list[Problem],
) -> None:
    """`policyJson[i].policy`: result policies (type 1 or a list) or a common policy."""
    if type(value) is str:  # the vendor types `policy` as String: it may be JSON once more
        value = _embedded(value, where, problems)
        if value is None:
            return
    declared = obj.get("type")
    result_type = (type(declared) is int and declared == 1) or (
        type(declared) is str and declared.strip() == "1"
    )
    if type(value) is list or (type(value) is dict and result_type):
        result = spec.alt["result"]
        items = _objects(value, where, problems, single_ok=True)
        prefix = where if type(value) is dict else None
        out[result.name] = [
            _message(item, result.plan, prefix or f"{where}[{i}]", True, problems)
            for i, item in items
        ]
    elif type(value) is dict:
        common = spec.alt["common"]
        out[common.name] = _message(value, common.plan, where, True, problems)
    else:
        problems.append(Problem(where, _WRONG_TYPE, "must be an object or an array of objects"))
