"""Page tokens of ListCampaigns: opaque, signed, and bound to the filters they were given for
(AIP-158). A token changed or cut short is not one of the service's; one sent with other
filters than its first page's is refused rather than paging a list it was not made for.

A token holds where its page ended (the creation time and id of the last campaign), a
fingerprint of the filters, and an HMAC of both under a key every replica shares (made by the
migrations, kept in the database), so that any replica continues any other's list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from datetime import datetime, timedelta

from isales.campaign.v2.campaign_service_pb2 import ListCampaignsRequest

from isales_campaign.service.db.store import Position
from isales_campaign.service.errors import PageTokenRefused

#: version, microseconds since the epoch, campaign id, filters' fingerprint.
_BODY = struct.Struct(">Bq Q 8s")
_VERSION = 1
_MAC_BYTES = 16
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


class PageTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, position: Position, request: ListCampaignsRequest) -> str:
        """The token of the page after `position`, for the filters of `request`."""
        moment = (position.created_at - _EPOCH) // _MICROSECOND
        body = _BODY.pack(_VERSION, moment, position.id, _fingerprint(request))
        return base64.urlsafe_b64encode(body + self._mac(body)).decode().rstrip("=")

    def read(self, token: str, request: ListCampaignsRequest) -> Position:
        """Where the list goes on; PageTokenRefused for a token of another list or none."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:  # binascii.Error
            raw = b""
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        if len(raw) != _BODY.size + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise PageTokenRefused("is not a next_page_token of this service")
        version, moment, campaign_id, fingerprint = _BODY.unpack(body)
        if version != _VERSION:
            raise PageTokenRefused("is not a next_page_token of this service")
        if fingerprint != _fingerprint(request):
            raise PageTokenRefused(
                "was given for other filters: send the first page's filters with it, or start "
                "again without a token"
            )
        return Position(_EPOCH + moment * _MICROSECOND, campaign_id)

    def _mac(self, body: bytes) -> bytes:
        return hmac.digest(self._key, body, hashlib.sha256)[:_MAC_BYTES]


def _fingerprint(request: ListCampaignsRequest) -> bytes:
    """What a token is bound to: every field of the request but the token, the page size and
    the skip (counted from the token's position), which may change from page to page."""
    filters = ListCampaignsRequest()
    filters.CopyFrom(request)
    for per_page in ("page_token", "page_size", "skip"):
        filters.ClearField(per_page)
    return hashlib.sha256(filters.SerializeToString(deterministic=True)).digest()[:8]
