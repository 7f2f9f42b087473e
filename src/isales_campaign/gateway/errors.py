"""The gateway's exceptions: a request that fails, and what fails inside reading one.

`LegacyError` is an answer other than success (its kind is one of `answers`); the others are
raised by the code that reads a request and turned into a `LegacyError` by its caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # answers builds LegacyErrors: it imports this module, not the reverse
    from isales_campaign.gateway.answers import Kind

#: How every authentication failure's description begins; the reason follows.
FAILURE_DESC = "authentication failed"


class LegacyError(Exception):
    """An answer other than success, raised and answered by the handlers `app` registers:
    its kind (the HTTP status and the headers it goes with), its legacy code (the kind's,
    unless the refusal carries its own) and its description. Build one with the functions
    of `answers`."""

    def __init__(
        self,
        kind: Kind,
        desc: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(desc)
        self.kind = kind
        resolved = code or kind.code
        assert resolved is not None, f"a {kind.name} answer needs a legacy code"
        self.code: str = resolved
        self.desc = desc
        #: Headers of this answer beyond those of its kind (a 405's Allow).
        self.headers = dict(headers or {})


class AuthFailure(Exception):
    """The request is not authentic. `reason` says why, for the client and the log, as AWS
    SigV4 does; `detail` is for the client only (the canonical request the gateway computed,
    which a client can diff against its own). Neither ever holds a secret."""

    def __init__(self, reason: str, access_key: str = "", detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.access_key = access_key
        self.detail = detail

    def describe(self) -> str:
        """The answer's description."""
        return f"{FAILURE_DESC}: {self.reason}" + (f"; {self.detail}" if self.detail else "")


class BodyTooLarge(Exception):
    """The request body passes the size limit."""


class DuplicateKey(ValueError):
    """A JSON object names one key twice."""


# -- errors of operating the gateway (the CLI says them in one line) ----------------------


class ListenError(Exception):
    """The gateway cannot listen on its address (ISALES_HTTP_LISTEN)."""
