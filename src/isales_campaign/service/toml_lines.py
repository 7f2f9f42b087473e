"""The line on which each key of a TOML document is defined, which `tomllib` does not say.

`key_lines` reads the document's table headers (`[a.b]`, `[[a.b]]`) and key/value lines
(`a.b = ...`) and names each by its path in what `tomllib` parses, array-of-tables elements by
their index: `[[tenants]]` then `[[tenants.app_keys]]` are `("tenants", 0)` and
`("tenants", 0, "app_keys", 0)`, a `timezone = "UTC"` under the first is
`("tenants", 0, "timezone")`. Keys inside inline tables and arrays are not named: `line_of`
answers with the line of the nearest enclosing key that is. It expects a document that
`tomllib` accepted, and only locates: a line it cannot read is skipped, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: A key's path, as `tomllib` nests it: table keys and array-of-tables indices.
KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def key_lines(source: str) -> dict[KeyPath, int]:
    """Each key path of the document (headers and key/value lines) -> its first line, from 1."""
    found: dict[KeyPath, int] = {}
    arrays: dict[KeyPath, int] = {}  # array-of-tables path -> elements so far
    table: KeyPath = ()
    scanner = _ValueScanner()
    for number, line in enumerate(source.splitlines(), start=1):
        if scanner.open:  # inside a multi-line string or array
            scanner.feed(line)
            continue
        text = line.lstrip()
        if text.startswith("[["):
            parts, _ = _dotted_key(text, 2)
            if parts:
                array = _resolve(parts, arrays)
                arrays[array] = arrays.get(array, 0) + 1
                table = (*array, arrays[array] - 1)
                found.setdefault(array, number)
                found.setdefault(table, number)
        elif text.startswith("["):
            parts, _ = _dotted_key(text, 1)
            if parts:
                table = _resolve(parts, arrays, last=True)
                found.setdefault(table, number)
        elif text and not text.startswith("#"):
            parts, end = _dotted_key(text, 0)
            if parts and text[end:].lstrip().startswith("="):
                path: KeyPath = table
                for part in parts:
                    path = (*path, part)
                    found.setdefault(path, number)
                scanner.feed(text[end:].lstrip()[1:])
    return found


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of the nearest enclosing key that has one; None for neither."""
    for end in range(len(path), 0, -1):
        number = lines.get(path[:end])
        if number is not None:
            return number
    return None


def _resolve(parts: Sequence[str], arrays: Mapping[KeyPath, int], last: bool = False) -> KeyPath:
    """A header's path: each part that names an array of tables (the last one too, if `last`)
    stands for that array's latest element."""
    path: KeyPath = ()
    for i, part in enumerate(parts):
        path = (*path, part)
        if (last or i < len(parts) - 1) and path in arrays:
            path = (*path, arrays[path] - 1)
    return path


def _dotted_key(text: str, start: int) -> tuple[list[str], int]:
    """The parts of the dotted key at `text[start:]` and where it ends; no parts when there is
    none there."""
    parts: list[str] = []
    at = start
    while True:
        while at < len(text) and text[at] in " \t":
            at += 1
        if at < len(text) and text[at] in "\"'":
            quote = text[at]
            close = _closing_quote(text, at + 1, quote)
            if close < 0:
                return [], start
            raw = text[at + 1 : close]
            parts.append(_unescape(raw) if quote == '"' else raw)
            at = close + 1
        else:
            bare = _BARE.match(text, at)
            if bare is None:
                return [], start
            parts.append(bare.group())
            at = bare.end()
        while at < len(text) and text[at] in " \t":
            at += 1
        if at < len(text) and text[at] == ".":
            at += 1
            continue
        return parts, at


def _closing_quote(text: str, at: int, quote: str) -> int:
    while at < len(text):
        if quote == '"' and text[at] == "\\":
            at += 2
            continue
        if text[at] == quote:
            return at
        at += 1
    return -1


def _unescape(raw: str) -> str:
    def one(found: re.Match[str]) -> str:
        code = found.group(1)
        if code[0] in "uU":
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    return _BASIC_ESCAPE.sub(one, raw)


class _ValueScanner:
    """Follows values over lines: whether a multi-line string or an array (or, in TOML 1.1,
    inline table) is still open at the end of what it was fed."""

    def __init__(self) -> None:
        self._string: str | None = None  # the delimiter of an open multi-line string
        self._depth = 0

    @property
    def open(self) -> bool:
        return self._string is not None or self._depth > 0

    def feed(self, text: str) -> None:
        at = 0
        while at < len(text):
            if self._string is not None:
                close = text.find(self._string, at)
                while close > 0 and self._string == '"""' and _escaped(text, close):
                    close = text.find(self._string, close + 1)
                if close < 0:
                    return
                at = close + 3
                while at < len(text) and text[at] == self._string[0]:  # up to two more quotes
                    at += 1
                self._string = None
                continue
            char = text[at]
            if text.startswith(('"""', "'''"), at):
                self._string = text[at : at + 3]
                at += 3
            elif char in "\"'":
                close = _closing_quote(text, at + 1, char)
                at = len(text) if close < 0 else close + 1
            elif char == "#":
                return
            elif char in "[{":
                self._depth += 1
                at += 1
            elif char in "]}":
                self._depth = max(0, self._depth - 1)
                at += 1
            else:
                at += 1


def _escaped(text: str, at: int) -> bool:
    """Whether the character at `at` follows an odd number of backslashes."""
    count = 0
    while at - count - 1 >= 0 and text[at - count - 1] == "\\":
        count += 1
    return count % 2 == 1
