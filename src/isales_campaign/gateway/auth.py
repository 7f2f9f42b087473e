"""auth-v2 verification, in the gateway: the access key's secret comes from the service
(over the internal channel, kept for a short while), the signature is checked here."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import Headers

from isales_campaign.gateway.backend import Backend
from isales_campaign.gateway.errors import AuthFailure
from isales_campaign.legacy import auth_v2


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the signature covers, as it arrived."""

    method: str
    raw_path: bytes
    query: bytes
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Caller:
    access_key: str
    vdn_id: int
    #: The request's verified signature: 64 hex digits that only this request has.
    signature: str


async def authenticate(
    request: SignedRequest,
    backend: Backend,
    *,
    max_skew_seconds: int,
    request_id: str,
    now: datetime | None = None,
) -> Caller:
    """The verified caller. Raises AuthFailure, or grpc.RpcError when the service fails."""
    value = request.headers.get("authorization")
    if not value:
        raise AuthFailure("no Authorization header")
    try:
        header = auth_v2.parse_authorization(value)
    except auth_v2.AuthHeaderError as error:
        raise AuthFailure(f"garbled Authorization header: {error}") from None
    ak = header.access_key
    try:
        moment = auth_v2.parse_timestamp(header.timestamp)
    except ValueError:
        reason = "the timestamp is not yyyy-MM-ddTHH:mm:ssZ (or ...ss.SSSZ), UTC"
        raise AuthFailure(reason, ak) from None
    clock = now or datetime.now(UTC)
    skew = abs((clock - moment).total_seconds())
    if skew > max_skew_seconds:
        raise AuthFailure(
            f"the timestamp is {skew:.0f} s away from the gateway's clock "
            f"({auth_v2.format_timestamp(clock)}; at most {max_skew_seconds} s are accepted)",
            ak,
        )
    names = header.header_names
    if "host" not in names:
        raise AuthFailure("host must be among the signed headers", ak)
    signed: dict[str, str] = {}
    for name in names:
        values = request.headers.getlist(name)
        if not values:
            raise AuthFailure(f"the signed header {name} is not in the request", ak)
        signed[name] = ",".join(values)
    try:
        path = request.raw_path.decode()
        query = request.query.decode()
    except UnicodeDecodeError:
        raise AuthFailure("the request target is not UTF-8", ak) from None
    key = await backend.access_key(ak, request_id)
    if key is None:
        raise AuthFailure("unknown access key", ak)
    signing_key = auth_v2.signing_key(key.secret_key, header.prefix)
    # The query on its own line, or, as the vendor's demo client signs a query it carries in
    # the URI (its post and put can send no other), on the path's line as sent: either way the
    # signature covers the same path and query.
    forms = [(path, query), (f"{path}?{query}", "")] if query else [(path, query)]
    shown = ""
    for signed_path, signed_query in forms:  # the second only when the first does not match
        canonical = auth_v2.canonical_request(
            request.method, signed_path, signed_query, header.signed_headers, signed, request.body
        )
        expected = auth_v2.signature(signing_key, canonical)
        if hmac.compare_digest(expected, header.signature):
            return Caller(ak, key.vdn_id, expected)
        shown = shown or _shown(canonical)
    raise AuthFailure("the signature does not match", ak, shown)


def _shown(canonical: bytes) -> str:
    """The canonical request the gateway signed, its last line (the normalized body, up to three
    times the body's size) shown by its length and SHA-256."""
    head, _, body = canonical.rpartition(b"\n")
    digest = hashlib.sha256(body).hexdigest()
    return (
        f"the gateway's canonical request is {head.decode()!r} followed by a newline and the "
        f"normalized body ({len(body)} bytes, SHA-256 {digest})"
    )
