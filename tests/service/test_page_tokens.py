"""Page tokens (`page_tokens`): on their own, they round-trip, and a token changed, cut short,
of another key, of another version or for other filters is refused with a reason a caller can
act on; then as ListCampaigns answers them over gRPC, on SQLite and on PostgreSQL.

The service runs on a clock the tests set by hand (the `clock` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime

import grpc
import pytest
from isales.campaign.v2 import campaign_pb2 as pb
from isales.campaign.v2 import campaign_service_pb2 as rpc
from isales.campaign.v2.campaign_service_pb2 import ListCampaignsRequest
from isales.campaign.v2.campaign_service_pb2_grpc import CampaignServiceStub

from isales_campaign.service.db.store import Position
from isales_campaign.service.errors import PageTokenRefused
from isales_campaign.service.page_tokens import PageTokens
from tests.conftest import ServerFactory
from tests.examples import ivr_campaign
from tests.service.helpers import PAUSED, TODAY, add, campaign, listed, refused

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


# -- as ListCampaigns answers them -------------------------------------------------------------


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_TOKENS = {
    "not base64": "%%%not a token%%%",
    "a lone character": "a",
    "bad padding": "abcde",
    "not UTF-8": _token(b"\xff\xfe\xfd\xfc"),
    "no separator": _token(b"just some text"),
    "no id": _token(b"2026-11-26T10:00:00|"),
    "id not a number": _token(b"2026-11-26T10:00:00|abc"),
    "not a time": _token(b"yesterday|7"),
}


@pytest.mark.parametrize("token", GARBAGE_TOKENS.values(), ids=GARBAGE_TOKENS.keys())
def test_a_page_token_not_given_by_the_service_is_refused(
    client: CampaignServiceStub, token: str
) -> None:
    add(client, campaign("listed"))
    failure = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, page_token=token))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "02000007"
    assert failure.codes_by_field() == {"page_token": {"02000007"}}


def test_a_forged_page_token_with_an_oversized_id_is_refused(client: CampaignServiceStub) -> None:
    add(client, campaign("listed"))
    token = _token(b"2026-11-26T10:00:00|" + b"9" * 30)
    failure = refused(client.ListCampaigns, rpc.ListCampaignsRequest(vdn_id=1, page_token=token))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.codes_by_field() == {"page_token": {"02000007"}}


def test_a_page_token_changed_or_cut_short_is_refused(client: CampaignServiceStub) -> None:
    for i in range(3):
        add(client, campaign(f"token {i}"))
    token = listed(client, page_size=1).next_page_token
    assert listed(client, page_size=1, page_token=token).campaigns  # as given, it pages on
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for changed in (flipped, token[:-1], token[:-4], token + "AAAA"):
        request = rpc.ListCampaignsRequest(vdn_id=1, page_token=changed)
        failure = refused(client.ListCampaigns, request)
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.codes_by_field() == {"page_token": {"02000007"}}
        assert "is not a next_page_token of this service" in failure.message


def test_a_page_token_goes_with_the_filters_of_its_first_page(client: CampaignServiceStub) -> None:
    """AIP-158: the page size and the skip may change from page to page, a filter may not."""
    ids = [add(client, campaign(f"filtered {i}")) for i in range(4)]
    add(client, ivr_campaign("filtered ivr", today=TODAY))
    predicted = pb.DEVICE_TYPE_PREDICTED
    first = listed(client, page_size=1, device_type=predicted, name_contains="filtered")
    token = first.next_page_token
    resized = listed(
        client, page_size=2, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert [r.id for r in resized.campaigns] == ids[::-1][1:3]
    skipping = listed(
        client, skip=1, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert [r.id for r in skipping.campaigns] == ids[::-1][2:]
    for other in (
        {"device_type": predicted},
        {"device_type": predicted, "name_contains": "filtered 1"},
        {"device_type": pb.DEVICE_TYPE_AUTOMATIC_IVR, "name_contains": "filtered"},
        {"device_type": predicted, "name_contains": "filtered", "status": PAUSED},
        {"device_type": predicted, "name_contains": "filtered", "archived": True},
    ):
        request = rpc.ListCampaignsRequest(vdn_id=1, page_token=token, **other)
        failure = refused(client.ListCampaigns, request)
        assert failure.codes_by_field() == {"page_token": {"02000007"}}, other
        assert "was given for other filters" in failure.message
    theirs = rpc.ListCampaignsRequest(
        vdn_id=2, device_type=predicted, name_contains="filtered", page_token=token
    )
    assert refused(client.ListCampaigns, theirs).codes_by_field() == {"page_token": {"02000007"}}


def test_a_page_token_continues_on_another_replica(
    database_url: str,
    make_server: ServerFactory,
    channel_to: Callable[[int], grpc.Channel],
    client: CampaignServiceStub,
) -> None:
    """Replicas share the key that signs page tokens (it is in the database)."""
    ids = [add(client, campaign(f"replicated {i}")) for i in range(3)]
    token = listed(client, page_size=2).next_page_token
    other = CampaignServiceStub(channel_to(make_server(database_url, seed=False).port))
    after = other.ListCampaigns(
        rpc.ListCampaignsRequest(vdn_id=1, page_size=2, page_token=token), timeout=10
    )
    assert [r.id for r in after.campaigns] == [ids[0]]
