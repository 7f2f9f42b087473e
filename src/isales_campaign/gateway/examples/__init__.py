"""The interface page's example request and response of add, verbatim (dates in the past): the
OpenAPI document shows them, and the tests start from them."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson


def example(name: str) -> dict[str, Any]:
    """`add-campaign-request` or `add-campaign-response`, decoded."""
    document: dict[str, Any] = orjson.loads(
        files(__package__).joinpath(f"{name}.json").read_bytes()
    )
    return document
