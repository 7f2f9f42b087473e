"""The subset of CEL the contract's rules are written in, translated to Python source.

`fast_validation` compiles every rule of the contract into plain Python with this
module. The translation is typed by the messages' descriptors (so `has()` knows a
field's presence and `size()` what it measures) and conservative: an expression
outside the subset raises `Unsupported` when it is compiled, and a value the
translation cannot judge exactly (text outside ASCII for the patterns with Unicode
classes, a URL beyond the plain shape, an integer overflow) raises `Unsure` when it
is evaluated. Either way the caller falls back to protovalidate, whose answers
stay the only answers the service gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor


class Unsupported(Exception):
    """An expression this subset does not translate."""


class Unsure(Exception):
    """A value the translation cannot judge exactly; protovalidate must."""


# --- the patterns of `matches()`, each with a Python twin ------------------------------------

#: RE2's `\s` is [\t\n\f\r ]; with \x{0B} and \p{Z} (a space, within ASCII) it is this set.
_BLANK = "\t\n\f\r \x0b"
_DESCRIPTION_FORBIDDEN = frozenset("\"[]=;<>'&|\\")


def _ascii(value: str) -> str:
    """`value`, when it is ASCII; Unicode classes are only judged by protovalidate."""
    if not value.isascii():
        raise Unsure
    return value


def _full(pattern: str) -> Callable[[str], bool]:
    """A twin of an anchored RE2 pattern of ASCII literals and classes.

    `fullmatch` because Python's `$` also matches before a final newline, RE2's does not.
    """
    compiled = re.compile(pattern)
    return lambda value: compiled.fullmatch(value) is not None


#: `[\p{L}\p{N}_]*` within ASCII.
_WORD = _full(r"[A-Za-z0-9_]*")

PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::([1-9][0-9]{0,4}))?(?:/[A-Za-z0-9._~/-]*)?")


def _plain_url(value: str) -> bool:
    """True for a URL of the plain shape (scheme, host name or IPv4, port, path), which both
    the pattern and `isUri()` accept; anything else is for protovalidate to judge."""
    match = PLAIN_URL.fullmatch(value)
    if match is None or (match.group(1) is not None and int(match.group(1)) > 65535):
        raise Unsure
    return True


#: The RE2 patterns of the contract (as `matches()` receives them) -> a Python twin.
PATTERNS: dict[str, Callable[[str], bool]] = {
    r"[^\s\x{0B}\x{85}\p{Z}]": lambda v: _ascii(v).strip(_BLANK) != "",
    r"^[^\x00-\x1f\x7f-\x{9f}\p{Cf}\p{Zl}\p{Zp}]*$": lambda v: _ascii(v).isprintable(),
    '^[^"' + r"\[\]=;<>'&|\\\x00-\x1f\x7f-\x{9f}\p{Cf}\p{Zl}\p{Zp}]*$": lambda v: (
        _ascii(v).isprintable() and _DESCRIPTION_FORBIDDEN.isdisjoint(v)
    ),
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$": _full(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
    ),
    r"^[0-9]*$": _full(r"[0-9]*"),
    r"^[0-9]{0,18}$": _full(r"[0-9]{0,18}"),
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$": _full(r"([01][0-9]|2[0-3]):[0-5][0-9]"),
    r"^[\p{L}\p{N}_]*$": lambda v: _WORD(_ascii(v)),
    r"^[A-Za-z0-9._:-]{0,64}$": _full(r"[A-Za-z0-9._:-]{0,64}"),
    (
        r"^https?://([^/?#@\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^/?#@:\s\[\]]+)"
        r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
        r"([/?#].*)?$"
    ): _plain_url,
}

_INT64 = (-(2**63), 2**63 - 1)


def _int64(value: int) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise Unsure  # CEL reports an overflow as an error
    return value


#: What the generated code may call, besides builtins.
HELPERS: dict[str, Any] = {
    "_int64": _int64,
    "_is_uri": _plain_url,
    **{f"_pattern{index}": twin for index, twin in enumerate(PATTERNS.values())},
}
_PATTERN_NAMES = {pattern: f"_pattern{index}" for index, pattern in enumerate(PATTERNS)}


# --- tokens and syntax -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<int>[0-9]+)|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-()\[\],.]))"
)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {text[position : position + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        yield kind, match.group(kind)
        position = match.end()


def _string_literal(token: str) -> str:
    out: list[str] = []
    body = iter(token[1:-1])
    for char in body:
        if char == "\\":
            escaped = next(body)
            if escaped not in _ESCAPES:
                raise Unsupported(f"escape \\{escaped}")
            out.append(_ESCAPES[escaped])
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Node:
    kind: str  # "int", "str", "bool", "name", "select", "call", "list", "unary", "binary"
    value: Any = None  # literal, name, operator or function
    args: tuple[Node, ...] = ()


class _Parser:
    """Precedence climbing over CEL's operators (no ternary, maps or floats)."""

    _LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"))

    def __init__(self, text: str) -> None:
        self.tokens = list(_tokens(text))
        self.index = 0

    def parse(self) -> Node:
        node = self._binary(0)
        if self.index != len(self.tokens):
            raise Unsupported(f"unexpected {self.tokens[self.index][1]!r}")
        return node

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise Unsupported("unexpected end")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise Unsupported(f"expected {expected!r}, found {token[1]!r}")
        self.index += 1
        return token

    def _binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek() in self._LEVELS[level]:
            operator = self._take()[1]
            node = Node("binary", operator, (node, self._binary(level + 1)))
        return node

    def _unary(self) -> Node:
        if self._peek() in ("!", "-"):
            operator = self._take()[1]
            return Node("unary", operator, (self._unary(),))
        return self._member()

    def _member(self) -> Node:
        node = self._primary()
        while self._peek() == ".":
            self._take(".")
            name = self._take()[1]
            if self._peek() == "(":
                node = Node("call", name, (node, *self._arguments("(", ")")))
            else:
                node = Node("select", name, (node,))
        return node

    def _arguments(self, opening: str, closing: str) -> tuple[Node, ...]:
        self._take(opening)
        args: list[Node] = []
        while self._peek() != closing:
            args.append(self._binary(0))
            if self._peek() == ",":
                self._take(",")
        self._take(closing)
        return tuple(args)

    def _primary(self) -> Node:
        kind, text = self._take()
        if kind == "int":
            return Node("int", int(text))
        if kind == "str":
            return Node("str", _string_literal(text))
        if text == "(":
            node = self._binary(0)
            self._take(")")
            return node
        if text == "[":
            self.index -= 1
            return Node("list", None, self._arguments("[", "]"))
        if kind == "name":
            if text in ("true", "false"):
                return Node("bool", text == "true")
            if self._peek() == "(":
                return Node("call", text, (Node("none"), *self._arguments("(", ")")))
            return Node("name", text)
        raise Unsupported(f"unexpected {text!r}")


def parse(text: str) -> Node:
    return _Parser(text).parse()


# --- translation to Python -------------------------------------------------------------------

#: The CEL type of a value: "int", "string", "bool", a message Descriptor, or ("list", type).
CelType = Any

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int",
    FieldDescriptor.TYPE_INT64: "int",
    FieldDescriptor.TYPE_SINT32: "int",
    FieldDescriptor.TYPE_SINT64: "int",
    FieldDescriptor.TYPE_ENUM: "int",  # CEL sees enum values as int
}


def field_type(field: FieldDescriptor) -> CelType:
    """The CEL type of `field`'s value."""
    message = field.message_type
    if message is not None:
        if message.GetOptions().map_entry:
            raise Unsupported("map fields")
        single: CelType = message
    elif field.type in _SCALARS:
        single = _SCALARS[field.type]
    else:
        raise Unsupported(f"field type {field.type}")
    return ("list", single) if field.is_repeated else single


@dataclass
class _Scope:
    """Variables in scope: CEL name -> (Python expression, CEL type)."""

    names: dict[str, tuple[str, CelType]]
    counter: list[int]
    #: Fields of `this` already read into local variables: field name -> variable.
    fields: dict[str, str]

    def bind(self, name: str, cel_type: CelType) -> tuple[_Scope, str]:
        self.counter[0] += 1
        python = f"_v{self.counter[0]}"
        names = {**self.names, name: (python, cel_type)}
        return _Scope(names, self.counter, self.fields), python


def translate(text: str, this: tuple[str, CelType], fields: dict[str, str] | None = None) -> str:
    """Python source of the boolean CEL expression `text`, where `this` is bound to the
    Python expression and CEL type given, and `fields` names the local variables that
    already hold fields of `this`."""
    scope = _Scope({"this": this}, [0], fields or {})
    code, cel_type = _translate(parse(text), scope)
    if cel_type != "bool":
        raise Unsupported("a rule must be a boolean expression")
    return code


def _field(message: CelType, name: str) -> FieldDescriptor:
    if not isinstance(message, Descriptor) or name not in message.fields_by_name:
        raise Unsupported(f"no field {name!r}")
    return message.fields_by_name[name]


def _translate(node: Node, scope: _Scope) -> tuple[str, CelType]:
    kind = node.kind
    if kind == "int":
        return repr(node.value), "int"
    if kind == "str":
        return repr(node.value), "string"
    if kind == "bool":
        return repr(node.value), "bool"
    if kind == "name":
        if node.value not in scope.names:
            raise Unsupported(f"unknown name {node.value!r}")
        return scope.names[node.value]
    if kind == "select":
        owner, owner_type = _translate(node.args[0], scope)
        field = _field(owner_type, node.value)
        if node.args[0] == Node("name", "this") and field.name in scope.fields:
            return scope.fields[field.name], field_type(field)
        return f"{owner}.{field.name}", field_type(field)
    if kind == "list":
        items = [_translate(item, scope) for item in node.args]
        types = {t for _, t in items}
        if len(types) != 1:
            raise Unsupported("lists must hold one type")
        return "(" + "".join(f"{code}, " for code, _ in items) + ")", ("list", types.pop())
    if kind == "unary":
        code, cel_type = _translate(node.args[0], scope)
        if node.value == "!" and cel_type == "bool":
            return f"(not {code})", "bool"
        if node.value == "-" and cel_type == "int":
            return f"_int64(-{code})", "int"
        raise Unsupported(f"{node.value} on {cel_type}")
    if kind == "binary":
        return _binary(node, scope)
    if kind == "call":
        return _call(node, scope)
    raise Unsupported(kind)


def _binary(node: Node, scope: _Scope) -> tuple[str, CelType]:
    (left, left_type), (right, right_type) = (_translate(arg, scope) for arg in node.args)
    operator = node.value
    if operator in ("||", "&&"):
        if left_type != "bool" or right_type != "bool":
            raise Unsupported(f"{operator} on non-booleans")
        return f"({left} {'or' if operator == '||' else 'and'} {right})", "bool"
    if operator == "in":
        if right_type != ("list", left_type):
            raise Unsupported("in: element and list types differ")
        return f"({left} in {right})", "bool"
    if left_type != right_type or not isinstance(left_type, str):
        raise Unsupported(f"{operator} on {left_type} and {right_type}")
    if operator == "+" and left_type == "string":
        return f"({left} + {right})", "string"
    if operator in ("+", "-"):
        if left_type != "int":
            raise Unsupported(f"{operator} on {left_type}")
        return f"_int64({left} {operator} {right})", "int"
    # Strings compare by code point in both languages (RE2/CEL compare UTF-8 bytes).
    return f"({left} {operator} {right})", "bool"


def _call(node: Node, scope: _Scope) -> tuple[str, CelType]:
    target, *args = node.args
    function = node.value
    if target.kind == "none":  # a global function
        if function == "has" and len(args) == 1 and args[0].kind == "select":
            return _has(args[0], scope), "bool"
        if function in ("size", "int") and len(args) == 1:
            code, cel_type = _translate(args[0], scope)
            if function == "int" and cel_type == "int":
                return f"int({code})", "int"
            if function == "size" and (cel_type == "string" or _is_list(cel_type)):
                return f"len({code})", "int"
        raise Unsupported(f"function {function}")
    code, cel_type = _translate(target, scope)
    if function == "size" and not args and (cel_type == "string" or _is_list(cel_type)):
        return f"len({code})", "int"
    if function == "matches" and cel_type == "string" and len(args) == 1 and args[0].kind == "str":
        helper = _PATTERN_NAMES.get(args[0].value)
        if helper is None:
            raise Unsupported(f"pattern {args[0].value!r} has no twin")
        return f"{helper}({code})", "bool"
    if function in _STRING_TESTS and cel_type == "string" and len(args) == 1:
        argument, argument_type = _translate(args[0], scope)
        if argument_type == "string":
            return f"{code}.{_STRING_TESTS[function]}({argument})", "bool"
    if function == "isUri" and cel_type == "string" and not args:
        return f"_is_uri({code})", "bool"
    if function in ("exists", "all", "filter") and _is_list(cel_type) and len(args) == 2:
        variable, body = args
        if variable.kind != "name":
            raise Unsupported(f"{function} needs a variable")
        inner, python = scope.bind(variable.value, cel_type[1])
        condition, condition_type = _translate(body, inner)
        if condition_type != "bool":
            raise Unsupported(f"{function} needs a condition")
        if function == "filter":
            return f"[{python} for {python} in {code} if {condition}]", cel_type
        return f"{'any' if function == 'exists' else 'all'}({condition} for {python} in {code})", (
            "bool"
        )
    raise Unsupported(f"method {function} on {cel_type}")


_STRING_TESTS = {"startsWith": "startswith", "endsWith": "endswith"}


def _has(select: Node, scope: _Scope) -> str:
    owner, owner_type = _translate(select.args[0], scope)
    field = _field(owner_type, select.value)
    if field.is_repeated:
        return f"(len({owner}.{field.name}) > 0)"
    if field.has_presence:
        return f"{owner}.HasField({field.name!r})"
    return f"({owner}.{field.name} != {field.default_value!r})"


def _is_list(cel_type: CelType) -> bool:
    return isinstance(cel_type, tuple) and cel_type[0] == "list"
