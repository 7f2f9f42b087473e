"""The vendor's auth-v2 AK/SK request signature (spec/API-NOTES.md, "Authentication").

Shared by both sides of the legacy REST API: the gateway verifies requests with it and the
client (and `isales sign`) signs them. Both halves are exposed: `signing_key` (from the
secret key and the header's prefix) and `signature` (needs only the signing key).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

__all__ = [
    "SCHEME",
    "AuthHeader",
    "AuthHeaderError",
    "authorization",
    "canonical_request",
    "format_timestamp",
    "norm",
    "parse_authorization",
    "parse_timestamp",
    "signature",
    "signing_key",
]

SCHEME = "auth-v2"

#: What `norm` leaves as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
#: Each byte as `norm` writes it: itself when unreserved, else %XX.
_ENCODED = [chr(b) if _UNRESERVED.fullmatch(chr(b)) else f"%{b:02X}" for b in range(256)]
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")


class AuthHeaderError(ValueError):
    """An Authorization header that is not a well-formed auth-v2 value."""


@dataclass(frozen=True, slots=True)
class AuthHeader:
    access_key: str
    timestamp: str
    #: As written in the header (the canonical request repeats it verbatim).
    signed_headers: str
    signature: str

    @property
    def prefix(self) -> str:
        return f"{SCHEME}/{self.access_key}/{self.timestamp}/{self.signed_headers}"

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(self.signed_headers.split(";"))


def norm(value: str | bytes) -> str:
    """Percent-encode every UTF-8 byte except A-Z a-z 0-9 - . _ ~ (upper-case hex), as
    `quote(value, safe="")` does, at half its cost: a whole body is encoded per request."""
    if isinstance(value, str):
        if _UNRESERVED.fullmatch(value):
            return value  # nothing to encode
        value = value.encode()
    return "".join(map(_ENCODED.__getitem__, value))


def format_timestamp(moment: datetime | None = None, *, millis: bool = False) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """`yyyy-MM-ddTHH:mm:ssZ` or `yyyy-MM-ddTHH:mm:ss.SSSZ`, UTC. Raises ValueError."""
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not an auth-v2 timestamp: {text!r}")
    # fromisoformat reads exactly this shape (without the Z), many times faster than strptime.
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def signing_key(secret_key: str, prefix: str) -> str:
    """lower-hex HMAC-SHA256(key = SK, message = prefix)."""
    return hmac.new(secret_key.encode(), prefix.encode(), hashlib.sha256).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query: str,
    signed_headers: str,
    headers: Mapping[str, str],
    body: bytes,
) -> bytes:
    r"""The text that is signed. `headers` maps lower-case names to values (signed ones at least).

    `METHOD\nPATH\n[QUERY\n]SIGNED_HEADERS\nCANONICAL_HEADERS\n` + norm(body): the line of
    canonical headers always ends with `\n`, also without a body (the vendor's demo client).
    `path` is the request path exactly as sent (still percent-encoded), `query` the raw query
    string without `?`. Query pairs are decoded like a form (`+` is a space) before `norm`.
    """
    lines = [method.upper(), path]
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        lines.append("&".join(sorted(f"{norm(k)}={norm(v)}" for k, v in pairs)))
    lines.append(signed_headers)
    names = signed_headers.split(";")
    lines.append("\n".join(sorted(f"{norm(n)}:{norm(headers[n].strip())}" for n in names)))
    lines.append(norm(body))  # empty for no body: the text still ends with the `\n` above
    return "\n".join(lines).encode()


def signature(key: str, canonical: bytes) -> str:
    """lower-hex HMAC-SHA256(key = signing key, message = canonical request)."""
    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def authorization(
    access_key: str,
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str],
    body: bytes = b"",
    signed: Iterable[str] = ("host",),
    timestamp: str | None = None,
) -> str:
    """The Authorization header value of a request; `headers` must hold every signed header."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signed_headers = ";".join(sorted({name.lower() for name in signed}))
    # Milliseconds by default: a request signed again a moment later is a new request, not
    # a retry of the first (the gateway answers a retry of an add with the first's campaign).
    moment = timestamp or format_timestamp(millis=True)
    prefix = f"{SCHEME}/{access_key}/{moment}/{signed_headers}"
    canonical = canonical_request(method, path, query, signed_headers, lowered, body)
    return f"{prefix}/{signature(signing_key(secret_key, prefix), canonical)}"


def parse_authorization(value: str) -> AuthHeader:
    """Split `auth-v2/{AK}/{timestamp}/{signedHeaders}/{signature}`. Raises AuthHeaderError."""
    head, sep, rest = value.strip().partition("/")
    if head != SCHEME or not sep:
        raise AuthHeaderError("not an auth-v2 header")
    # Split from the right: the access key is the only part that could hold a slash.
    parts = rest.rsplit("/", 3)
    if len(parts) != 4 or not parts[0]:
        raise AuthHeaderError("expected auth-v2/{AK}/{timestamp}/{signedHeaders}/{signature}")
    access_key, timestamp, signed_headers, sig = parts
    if not access_key.isprintable() or not access_key.isascii():
        raise AuthHeaderError("access key is not printable ASCII")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise AuthHeaderError("malformed timestamp")
    names = signed_headers.split(";")
    if not all(_HEADER_NAME.fullmatch(name) for name in names):
        raise AuthHeaderError("malformed signedHeaders")
    if len(set(names)) != len(names):
        raise AuthHeaderError("duplicate name in signedHeaders")
    if not _SIGNATURE.fullmatch(sig):
        raise AuthHeaderError("malformed signature")
    return AuthHeader(access_key, timestamp, signed_headers, sig)
