"""Where each key of a TOML document is: the lines `service.toml_lines` finds, for what
`tomllib` parses."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from isales_campaign.service.toml_lines import KeyPath, key_lines, line_of

DOCUMENT = '''\
# a comment, and a blank line

title = "a [[fake]] header in a string"
[[tenants]]
vdn_id = 1
notes = """
[[tenants]]
vdn_id = 2
"""
[[tenants.app_keys]]
access_key = "a"
secret_key = 'b # not a comment'
[[tenants.app_keys]]
  access_key = "c"   # indented, with a comment
[[tenants]]
vdn_id = 3
queues = [
  { id = 1, name = "x" },
  [2, 3],
]
"quoted key" = 1
site."dotted.key" = 2
[ tenants . extra ]
limit = 4
[[tenants.skill_queues]]
id = 5
literal = \'\'\'
a = 1
\'\'\'
last = "\\"[[x]]\\""
'''


def test_each_key_is_found_on_its_line() -> None:
    tomllib.loads(DOCUMENT)  # a valid document
    lines = key_lines(DOCUMENT)
    expected: dict[KeyPath, int] = {
        ("title",): 3,
        ("tenants",): 4,
        ("tenants", 0): 4,
        ("tenants", 0, "vdn_id"): 5,
        ("tenants", 0, "notes"): 6,
        ("tenants", 0, "app_keys"): 10,
        ("tenants", 0, "app_keys", 0): 10,
        ("tenants", 0, "app_keys", 0, "access_key"): 11,
        ("tenants", 0, "app_keys", 0, "secret_key"): 12,
        ("tenants", 0, "app_keys", 1): 13,
        ("tenants", 0, "app_keys", 1, "access_key"): 14,
        ("tenants", 1): 15,
        ("tenants", 1, "vdn_id"): 16,
        ("tenants", 1, "queues"): 17,
        ("tenants", 1, "quoted key"): 21,
        ("tenants", 1, "site"): 22,
        ("tenants", 1, "site", "dotted.key"): 22,
        ("tenants", 1, "extra"): 23,
        ("tenants", 1, "extra", "limit"): 24,
        ("tenants", 1, "skill_queues"): 25,
        ("tenants", 1, "skill_queues", 0): 25,
        ("tenants", 1, "skill_queues", 0, "id"): 26,
        ("tenants", 1, "skill_queues", 0, "literal"): 27,
        ("tenants", 1, "skill_queues", 0, "last"): 30,
    }
    assert lines == expected


def test_every_key_tomllib_parses_outside_inline_values_has_a_line() -> None:
    def paths(value: Any, at: KeyPath) -> list[KeyPath]:
        if isinstance(value, dict):
            return [
                p for key, item in value.items() for p in [(*at, key), *paths(item, (*at, key))]
            ]
        if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
            return [p for i, item in enumerate(value) for p in [(*at, i), *paths(item, (*at, i))]]
        return []

    lines = key_lines(DOCUMENT)
    inline = ("tenants", 1, "queues")  # an array of inline tables and arrays
    parsed = [
        p for p in paths(tomllib.loads(DOCUMENT), ()) if len(p) <= len(inline) or p[:3] != inline
    ]
    assert sorted(parsed, key=str) == sorted(lines, key=str)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("tenants", 1, "queues", 0, "name"), 17),  # inside an inline value: its key's line
        (("tenants", 0, "app_keys", 1, "secret_key"), 13),  # absent: its table's line
        (("tenants", 7), 4),  # no such element: the array's first line
        (("nowhere",), None),
    ],
)
def test_a_path_without_a_line_of_its_own_has_the_nearest_enclosing_one(
    path: KeyPath, line: int | None
) -> None:
    assert line_of(key_lines(DOCUMENT), path) == line


def test_escapes_in_quoted_keys_are_read_as_tomllib_reads_them() -> None:
    source = '[[t]]\n"a\\u0062\\"c" = 1\n\'d\\e\' = 2\n'
    assert set(tomllib.loads(source)["t"][0]) == {'ab"c', "d\\e"}
    assert key_lines(source) == {("t",): 1, ("t", 0): 1, ("t", 0, 'ab"c'): 2, ("t", 0, "d\\e"): 3}
