"""Routing on the path as sent: a percent-encoded delimiter is data, never a separator.

Starlette routes on the decoded path, so `.../campaigns/1%2F9` would be served as campaign 9
of VDN 1 (and signed as another path than the one served). A path whose escapes decode to a
delimiter (RFC 3986's reserved characters), a backslash or a percent sign names nothing the
vendor's API has: it is not found, before any route sees it.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from isales_campaign.gateway import answers

_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_DELIMITERS = frozenset(b":/?#[]@!$&'()*+,;=\\%")


def has_encoded_delimiter(raw_path: bytes) -> bool:
    return any(int(code, 16) in _DELIMITERS for code in _ESCAPE.findall(raw_path))


class RefuseEncodedDelimiters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or b""
        if scope["type"] != "http" or b"%" not in raw_path or not has_encoded_delimiter(raw_path):
            await self.app(scope, receive, send)
            return
        response = answers.response(Request(scope), answers.not_found())
        await response(scope, receive, send)
