"""Page tokens on their own: they round-trip, and a token changed, cut short, of another key,
of another version or for other filters is refused with a reason a caller can act on."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import pytest
from isales.campaign.v2.campaign_service_pb2 import ListCampaignsRequest
from sqlalchemy import delete

from isales_campaign.service.db.engine import create_database_engine
from isales_campaign.service.db.migrate import migrate_to
from isales_campaign.service.db.schema import service_secrets
from isales_campaign.service.db.store import PAGE_TOKEN_KEY_NAME, CampaignStore, Position
from isales_campaign.service.errors import PageTokenRefused
from isales_campaign.service.page_tokens import PageTokens

KEY = b"k" * 32
WHERE = Position(datetime(2026, 11, 26, 9, 0, 0, 123456), 42)
FILTERS = ListCampaignsRequest(vdn_id=1, name_contains="a", page_size=10)


def test_a_token_round_trips_whatever_the_page_size_and_skip() -> None:
    token = PageTokens(KEY).issue(WHERE, FILTERS)
    again = ListCampaignsRequest(vdn_id=1, name_contains="a", page_size=50, skip=3)
    assert PageTokens(KEY).read(token, again) == WHERE


def test_a_token_of_another_key_or_version_is_not_the_services() -> None:
    token = PageTokens(KEY).issue(WHERE, FILTERS)
    with pytest.raises(PageTokenRefused, match="not a next_page_token of this service"):
        PageTokens(b"x" * 32).read(token, FILTERS)
    # Version 2 of the same body, properly signed: a format this service does not read.
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body = b"\x02" + raw[1:25]
    mac = hmac.digest(KEY, body, hashlib.sha256)[:16]
    other_version = base64.urlsafe_b64encode(body + mac).decode().rstrip("=")
    with pytest.raises(PageTokenRefused, match="not a next_page_token of this service"):
        PageTokens(KEY).read(other_version, FILTERS)


def test_a_token_for_other_filters_says_so() -> None:
    token = PageTokens(KEY).issue(WHERE, FILTERS)
    with pytest.raises(PageTokenRefused, match="was given for other filters"):
        PageTokens(KEY).read(token, ListCampaignsRequest(vdn_id=1, name_contains="b"))


def test_a_database_without_the_key_says_to_migrate(sqlite_url: str) -> None:
    engine = create_database_engine(sqlite_url, pool_size=1)
    try:
        migrate_to(engine)
        store = CampaignStore(engine)
        assert len(store.secret(PAGE_TOKEN_KEY_NAME)) == 32
        with engine.begin() as connection:
            connection.execute(delete(service_secrets))
        with pytest.raises(LookupError, match="run isales migrate"):
            store.secret(PAGE_TOKEN_KEY_NAME)
        store.close()
    finally:
        engine.dispose()
