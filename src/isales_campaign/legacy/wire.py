"""The names on the wire of the vendor's API besides its paths: the one media type of its
bodies, the header and the query parameter that this project adds to it."""

from __future__ import annotations

#: The Content-Type of every body, both ways.
CONTENT_TYPE = "application/json;charset=UTF-8"
#: The header that makes an add safe to retry with a new signature.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: The query parameter that asks an add or modify to check every rule and change nothing.
VALIDATE_ONLY = "validateOnly"
