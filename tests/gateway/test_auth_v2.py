"""The auth-v2 algorithm of spec/API-NOTES.md, checked against a hand-built vector."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from isales_campaign.client import auth_v2
from isales_campaign.client.http import Target, sign_request


def test_norm_keeps_only_unreserved_characters() -> None:
    assert auth_v2.norm("Az09-._~") == "Az09-._~"
    assert auth_v2.norm("a b/c:d'é") == "a%20b%2Fc%3Ad%27%C3%A9"
    assert auth_v2.norm(b"\xff{") == "%FF%7B"


def test_known_vector() -> None:
    """Every step written out by hand, independently of `canonical_request`."""
    ak, sk, ts = "ak", "sk", "2024-05-06T07:08:09Z"
    body = b'{"a": 1}'
    prefix = f"auth-v2/{ak}/{ts}/content-type;host"
    canonical = (
        "POST\n/rest/isales/v2/openapi/campaigns/1\n"
        "a=x%20y&b=%2B\n"
        "content-type;host\n"
        "content-type:application%2Fjson\nhost:h%3A8080\n"
        "%7B%22a%22%3A%201%7D"
    )
    key = hmac.new(sk.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    expected = hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    header = auth_v2.authorization(
        ak,
        sk,
        method="post",
        path="/rest/isales/v2/openapi/campaigns/1",
        query="b=%2B&a=x+y",
        headers={"Host": "h:8080", "Content-Type": "application/json"},
        body=body,
        signed=["host", "content-type"],
        timestamp=ts,
    )
    assert header == f"{prefix}/{expected}"


def test_no_query_and_no_body_lines() -> None:
    canonical = auth_v2.canonical_request("GET", "/p", "", "host", {"host": "h"}, b"")
    assert canonical == b"GET\n/p\nhost\nhost:h"


def test_timestamps() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert auth_v2.format_timestamp(moment) == "2024-05-06T07:08:09Z"
    assert auth_v2.format_timestamp(moment, millis=True) == "2024-05-06T07:08:09.123Z"
    assert auth_v2.parse_timestamp("2024-05-06T07:08:09.123Z") == moment.replace(microsecond=123000)
    for bad in ["2024-05-06 07:08:09Z", "2024-05-06T07:08:09", "2024-05-06T07:08:09.1Z"]:
        with pytest.raises(ValueError, match="timestamp"):
            auth_v2.parse_timestamp(bad)


def test_parse_authorization() -> None:
    sig = "0" * 64
    header = auth_v2.parse_authorization(f" auth-v2/a/k/2024-05-06T07:08:09Z/host/{sig} ")
    assert header.access_key == "a/k"
    assert header.prefix == "auth-v2/a/k/2024-05-06T07:08:09Z/host"
    with pytest.raises(auth_v2.AuthHeaderError):
        auth_v2.parse_authorization(f"auth-v2/ak/2024-05-06T07:08:09Z/host/{'A' * 64}")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("http://example.com:80/x", "example.com"),
        ("https://u:p@example.com:443/x", "example.com"),
        ("https://[::1]:8443/x", "[::1]:8443"),
    ],
)
def test_host_header_of_a_url(url: str, host: str) -> None:
    assert Target.parse(url).host_header == host


def test_sign_request_signs_what_curl_sends() -> None:
    header = sign_request(
        "ak",
        "sk",
        method="POST",
        url="http://h:1/p?q=1",
        body=b"{}",
        timestamp="2024-05-06T07:08:09Z",
    )
    prefix = "auth-v2/ak/2024-05-06T07:08:09Z/host"
    key = auth_v2.signing_key("sk", prefix)
    canonical = b"POST\n/p\nq=1\nhost\nhost:h%3A1\n%7B%7D"
    assert header == f"{prefix}/{auth_v2.signature(key, canonical)}"
