"""A fast "this message breaks no rule of the contract", compiled from the contract itself.

protovalidate evaluates each CEL rule on its own, at one to two microseconds even when the
rule is plainly met; a valid AddCampaignRequest has about a hundred of them and costs some
200 us. Nearly every request a service gets is valid, so `validation` first asks this
module, which compiles every rule of a message type, standard and CEL alike, into one
Python function per message type (when the service starts, from the descriptors and
their `buf.validate` options). The function answers True only when every rule holds. When it
cannot vouch for a message (a rule broken, or a value it does not judge exactly, see
`cel_subset`), protovalidate validates the message and its violations are the answer:
the answers are protovalidate's by construction, as long as this module never vouches
for a message protovalidate refuses, which tests/service/test_fast_validation.py checks
over generated messages. A rule this compiler does not understand leaves its message
type to protovalidate alone, so a new rule in the contract can make validation slower,
never wrong.
"""

from __future__ import annotations

import keyword
import logging
from collections.abc import Callable
from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from isales_campaign.service.cel_subset import (
    HELPERS,
    Unsupported,
    Unsure,
    field_type,
    translate,
)

log = logging.getLogger(__name__)

Check = Callable[[Message], bool]

_IGNORE_IF_ZERO = validate_pb2.IGNORE_IF_ZERO_VALUE
_IGNORE_ALWAYS = validate_pb2.IGNORE_ALWAYS
_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_LENGTHS = {"min_len": ">=", "max_len": "<=", "len": "=="}
_ITEM_COUNTS = {"min_items": ">=", "max_items": "<="}

#: Message full name -> its compiled check, or None when it has a rule this module does not
#: compile (then protovalidate alone validates it).
_checks: dict[str, Check | None] = {}


def vouches_for(message: Message) -> bool:
    """True only when `message` breaks no rule of the contract; False when it breaks one or
    when this module cannot tell."""
    name = message.DESCRIPTOR.full_name
    if name not in _checks:
        prepare(message.DESCRIPTOR)
    check = _checks[name]
    if check is None:
        return False
    try:
        return check(message)
    except Unsure:
        return False


def prepare(*descriptors: Descriptor | Any) -> None:
    """Compile the checks of these message types now, not on their first message."""
    for descriptor in descriptors:
        if descriptor.full_name not in _checks:
            _checks[descriptor.full_name] = _compile_check(descriptor)


def source(descriptor: Descriptor | Any) -> str:
    """The Python source compiled for `descriptor` and the message types it contains."""
    return _Compiler().module(descriptor)


def _compile_check(descriptor: Descriptor | Any) -> Check | None:
    try:
        code = source(descriptor)
    except Unsupported as reason:
        log.info("%s is validated by protovalidate alone: %s", descriptor.full_name, reason)
        return None
    namespace: dict[str, Any] = dict(HELPERS)
    # The source comes from the contract's own descriptors, never from a request.
    exec(compile(code, f"<rules of {descriptor.full_name}>", "exec"), namespace)  # noqa: S102
    check: Check = namespace[_function_name(descriptor)]
    return check


def _function_name(descriptor: Descriptor) -> str:
    return "check_" + descriptor.full_name.replace(".", "_")


class _Compiler:
    """One function per message type, reached from the root through message fields."""

    def __init__(self) -> None:
        self.functions: dict[str, list[str]] = {}

    def module(self, root: Descriptor) -> str:
        self._message(root)
        return "\n\n".join("\n".join(lines) for lines in self.functions.values()) + "\n"

    def _message(self, descriptor: Descriptor) -> None:
        if descriptor.full_name in self.functions:
            return
        lines = [f"def {_function_name(descriptor)}(m):"]
        self.functions[descriptor.full_name] = lines  # before the fields: types may recurse
        # Every field is read once, into a local variable (attribute reads cost the most).
        local = {field.name: f"f_{field.name}" for field in descriptor.fields}
        for field in descriptor.fields:
            if keyword.iskeyword(field.name):
                raise Unsupported(f"field name {field.name}")
            lines.append(f"    {local[field.name]} = m.{field.name}")
        for field in descriptor.fields:
            lines += ["    " + line for line in self._field(field, local[field.name])]
        for oneof in descriptor.oneofs:
            _only(oneof.GetOptions().Extensions[validate_pb2.oneof])
        options = descriptor.GetOptions().Extensions[validate_pb2.message]
        _only(options, "cel")
        for rule in options.cel:
            rule_code = translate(rule.expression, ("m", descriptor), local)
            lines.append(f"    if not {rule_code}: return False")
        lines.append("    return True")

    def _field(self, field: FieldDescriptor, value: str) -> list[str]:
        """Statements that return False when a rule of `field` (read into `value`) fails."""
        rules = field.GetOptions().Extensions[validate_pb2.field]
        _only(rules, "required", "ignore", "cel", "string", "int32", "int64", "enum", "repeated")
        if rules.ignore == _IGNORE_ALWAYS:
            return []
        if rules.ignore not in (validate_pb2.IGNORE_UNSPECIFIED, _IGNORE_IF_ZERO):
            raise Unsupported(f"ignore {rules.ignore}")
        if rules.ignore == _IGNORE_IF_ZERO and (field.has_presence or rules.required):
            raise Unsupported("ignore if zero on a field with presence or required")
        cel_type = field_type(field)
        if field.is_repeated:
            return self._repeated(field, rules, value, cel_type)
        checks = self._value_checks(field, rules, value, cel_type)
        if field.message_type is not None:
            self._message(field.message_type)
            checks.append(f"{_function_name(field.message_type)}({value})")
        present = f"m.HasField({field.name!r})" if field.has_presence else None
        if present is None and (rules.required or rules.ignore == _IGNORE_IF_ZERO):
            present = f"{value} != {field.default_value!r}"
        lines: list[str] = []
        if present is None:
            lines += [f"if not {check}: return False" for check in checks]
            return lines
        if rules.required:
            lines.append(f"if not {present}: return False")
        elif checks:
            lines.append(f"if {present}:")
        else:
            return []
        indent = "" if rules.required else "    "
        lines += [f"{indent}if not {check}: return False" for check in checks]
        return lines

    def _repeated(self, field: FieldDescriptor, rules: Any, value: str, cel_type: Any) -> list[str]:
        if rules.ignore == _IGNORE_IF_ZERO:
            raise Unsupported("ignore on a repeated field")
        if rules.WhichOneof("type") not in (None, "repeated"):
            raise Unsupported(f"{rules.WhichOneof('type')} rules on a list")
        _only(rules.repeated, *_ITEM_COUNTS, "items")
        lines = [f"if not {value}: return False"] if rules.required else []
        counts = _limits(rules, "repeated", _ITEM_COUNTS)
        checks = [f"len({value}) {op} {limit}" for op, limit in counts]
        checks += [translate(rule.expression, (value, cel_type)) for rule in rules.cel]
        lines += [f"if not {check}: return False" for check in checks]
        item_checks = []
        if rules.HasField("repeated") and rules.repeated.HasField("items"):
            items = rules.repeated.items
            _only(items, "string", "int32", "int64", "enum", "cel")
            item_checks = self._value_checks(field, items, "i", cel_type[1])
        if field.message_type is not None:
            self._message(field.message_type)
            item_checks.append(f"{_function_name(field.message_type)}(i)")
        if item_checks:
            lines.append(f"for i in {value}:")
            lines += [f"    if not {check}: return False" for check in item_checks]
        return lines

    def _value_checks(
        self, field: FieldDescriptor, rules: Any, value: str, cel_type: Any
    ) -> list[str]:
        """Conditions on one value of `field` (not a list): type rules, then CEL rules."""
        kind = rules.WhichOneof("type")
        checks: list[str] = []
        if kind == "string":
            _only(rules.string, *_LENGTHS)
            checks += [f"len({value}) {op} {n}" for op, n in _limits(rules, "string", _LENGTHS)]
        elif kind in ("int32", "int64"):
            _only(getattr(rules, kind), *_COMPARISONS)
            checks += [f"{value} {op} {n}" for op, n in _limits(rules, kind, _COMPARISONS)]
        elif kind == "enum":
            _only(rules.enum, "defined_only")
            if rules.enum.defined_only:
                enum = field.enum_type
                assert enum is not None  # an enum field has its type
                defined = tuple(sorted({v.number for v in enum.values}))
                checks.append(f"{value} in {defined!r}")
        elif kind is not None:
            raise Unsupported(f"{kind} rules")
        checks += [translate(rule.expression, (value, cel_type)) for rule in rules.cel]
        return checks


def _limits(rules: Any, kind: str, names: dict[str, str]) -> list[tuple[str, int]]:
    if not rules.HasField(kind):
        return []
    typed = getattr(rules, kind)
    return [(names[f.name], value) for f, value in typed.ListFields() if f.name in names]


def _only(rules: Any, *allowed: str) -> None:
    for field, _ in rules.ListFields():
        if field.name not in allowed:
            raise Unsupported(f"rule {field.name}")
