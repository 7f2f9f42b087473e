"""The token that gateways present to the service on its internal calls.

auth-v2 access keys and signing keys let their holder sign requests as a tenant, so
the service hands them out only to callers that present `ISALES_INTERNAL_TOKEN`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

#: gRPC metadata key of the token, sent as `Bearer <token>`.
METADATA_KEY = "authorization"
#: gRPC metadata key of the auth-v2 access key a gateway verified, passed on with its calls:
#: the service records it as who made a change, and believes it only from a caller that
#: presents the token.
ACCESS_KEY_METADATA_KEY = "x-isales-access-key"


def bearer(token: str) -> tuple[str, str]:
    """The metadata entry that presents `token`."""
    return (METADATA_KEY, f"Bearer {token}")


def presents(metadata: Iterable[tuple[str, str | bytes]], token: str) -> bool:
    """Whether the metadata carries `token`, exactly once; compared in constant time."""
    if not token:
        return False
    presented = [value for key, value in metadata if key == METADATA_KEY]
    if len(presented) != 1 or not isinstance(presented[0], str):
        return False
    return hmac.compare_digest(presented[0].encode(), f"Bearer {token}".encode())
