"""The auth-v2 algorithm of spec/API-NOTES.md, checked against a hand-built vector."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isales_campaign.client.http import LegacyClient, Target, sign_request
from isales_campaign.legacy import auth_v2


def test_norm_keeps_only_unreserved_characters() -> None:
    assert auth_v2.norm("Az09-._~") == "Az09-._~"
    assert auth_v2.norm("a b/c:d'é") == "a%20b%2Fc%3Ad%27%C3%A9"
    assert auth_v2.norm(b"\xff{") == "%FF%7B"


@given(st.text(alphabet=st.sampled_from("Az09-._~ /%\n\u00e9\u200b")) | st.text())
def test_norm_is_rfc3986_percent_encoding(value: str) -> None:
    assert auth_v2.norm(value) == quote(value, safe="")


@given(st.binary())
def test_norm_of_bytes_is_rfc3986_percent_encoding(value: bytes) -> None:
    assert auth_v2.norm(value) == quote(value, safe="")


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
    """Without a body the text still ends with the `\\n` after the canonical headers."""
    canonical = auth_v2.canonical_request("GET", "/p", "", "host", {"host": "h"}, b"")
    assert canonical == b"GET\n/p\nhost\nhost:h\n"


SIGNED_ALL = "content-length;content-type;host"


@pytest.mark.parametrize(
    ("method", "path", "query", "signed_headers", "body", "expected"),
    [
        pytest.param(
            "GET",
            "/rest/isales/v1/openapi/campaigns/1/7",
            "",
            "host",
            b"",
            b"GET\n/rest/isales/v1/openapi/campaigns/1/7\nhost\nhost:h%3A8080\n",
            id="get-without-body-or-query",
        ),
        pytest.param(
            "GET",
            "/rest/isales/v1/openapi/campaigns/1",
            "name=a%20b&status=2&curPage=",
            "host",
            b"",
            b"GET\n/rest/isales/v1/openapi/campaigns/1\n"
            b"curPage=&name=a%20b&status=2\n"
            b"host\nhost:h%3A8080\n",
            id="get-with-query",
        ),
        pytest.param(
            "GET",
            "/rest/isales/v1/openapi/campaigns/1",
            "name=a+b&status=2&curPage",
            "host",
            b"",
            b"GET\n/rest/isales/v1/openapi/campaigns/1\n"
            b"curPage=&name=a%20b&status=2\n"
            b"host\nhost:h%3A8080\n",
            id="get-with-form-encoded-query",
        ),
        pytest.param(
            "PUT",
            "/rest/isales/v1/openapi/campaigns/1/7/pause",
            "",
            SIGNED_ALL,
            b"",
            b"PUT\n/rest/isales/v1/openapi/campaigns/1/7/pause\n"
            b"content-length;content-type;host\n"
            b"content-length:0\n"
            b"content-type:application%2Fjson%3Bcharset%3DUTF-8\n"
            b"host:h%3A8080\n",
            id="put-without-body",
        ),
        pytest.param(
            "POST",
            "/rest/isales/v2/openapi/campaigns/1",
            "",
            SIGNED_ALL,
            b'{"a": 1}',
            b"POST\n/rest/isales/v2/openapi/campaigns/1\n"
            b"content-length;content-type;host\n"
            b"content-length:8\n"
            b"content-type:application%2Fjson%3Bcharset%3DUTF-8\n"
            b"host:h%3A8080\n"
            b"%7B%22a%22%3A%201%7D",
            id="post-with-body",
        ),
    ],
)
def test_canonical_bytes(
    method: str, path: str, query: str, signed_headers: str, body: bytes, expected: bytes
) -> None:
    r"""`METHOD\nPATH\n[QUERY\n]SIGNED_HEADERS\nCANONICAL_HEADERS\n` + norm(body)."""
    headers = {
        "host": "h:8080",
        "content-length": str(len(body)),
        "content-type": "application/json;charset=UTF-8",
    }
    canonical = auth_v2.canonical_request(method, path, query, signed_headers, headers, body)
    assert canonical == expected


def test_timestamps() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert auth_v2.format_timestamp(moment) == "2024-05-06T07:08:09Z"
    assert auth_v2.format_timestamp(moment, millis=True) == "2024-05-06T07:08:09.123Z"
    assert auth_v2.parse_timestamp("2024-05-06T07:08:09.123Z") == moment.replace(microsecond=123000)
    assert auth_v2.parse_timestamp("2024-05-06T07:08:09Z") == moment.replace(microsecond=0)
    bad_shapes = [
        "2024-05-06 07:08:09Z",
        "2024-05-06T07:08:09",
        "2024-05-06T07:08:09.1Z",
        "\u0662024-05-06T07:08:09Z",  # a digit, but not an ASCII one
    ]
    for bad in bad_shapes:
        with pytest.raises(ValueError, match="timestamp"):
            auth_v2.parse_timestamp(bad)
    for impossible in ["2024-13-06T07:08:09Z", "2024-02-30T07:08:09Z", "2024-05-06T24:00:00Z"]:
        with pytest.raises(ValueError, match=r"must be in|out of range"):
            auth_v2.parse_timestamp(impossible)


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


def test_sign_request_without_a_body_signs_the_query() -> None:
    header = sign_request(
        "ak",
        "sk",
        method="GET",
        url="http://h:1/rest/isales/v1/openapi/campaigns/1?name=a%20b&status=2&curPage=",
        timestamp="2024-05-06T07:08:09Z",
    )
    prefix = "auth-v2/ak/2024-05-06T07:08:09Z/host"
    key = auth_v2.signing_key("sk", prefix)
    canonical = (
        b"GET\n/rest/isales/v1/openapi/campaigns/1\n"
        b"curPage=&name=a%20b&status=2\nhost\nhost:h%3A1\n"
    )
    assert header == f"{prefix}/{auth_v2.signature(key, canonical)}"


@dataclass(frozen=True, slots=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Received]]]:
    """A loopback HTTP server that records each request and answers the success envelope."""
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            received.append(Received(self.command, self.path, headers, self.rfile.read(length)))
            answer = b'{"resultCode":"0200000","resultDesc":""}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = _record

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


CALLS: list[tuple[Callable[[LegacyClient], object], str, str, bytes]] = [
    (lambda c: c.get_campaign(1, 7), "GET", "/rest/isales/v1/openapi/campaigns/1/7", b""),
    (
        lambda c: c.list_campaigns(1, name="a b", status=2, curPage=""),
        "GET",
        "/rest/isales/v1/openapi/campaigns/1?name=a%20b&status=2&curPage=",
        b"",
    ),
    (
        lambda c: c.add_campaign(1, b"{}", validate_only=True, idempotency_key="k-1"),
        "POST",
        "/rest/isales/v2/openapi/campaigns/1?validateOnly=true",
        b"{}",
    ),
    (
        lambda c: c.update_campaign(1, 7, {"name": "x"}),
        "PUT",
        "/rest/isales/v2/openapi/campaigns/1/7",
        b'{"name":"x"}',
    ),
    (lambda c: c.pause_campaign(1, 7), "PUT", "/rest/isales/v1/openapi/campaigns/1/7/pause", b""),
    (
        lambda c: c.resume_campaign(1, 7),
        "PUT",
        "/rest/isales/v1/openapi/campaigns/1/7/resume",
        b"",
    ),
    (lambda c: c.delete_campaign(1, 7), "DELETE", "/rest/isales/v1/openapi/campaigns/1/7", b""),
    (
        lambda c: c.delete_campaign(1, 7, archive=True),
        "DELETE",
        "/rest/isales/v1/openapi/campaigns/1/7",
        b'{"archiveHistory":1}',
    ),
]


@pytest.mark.parametrize("signed", ["host", "content-length;content-type;host"])
@pytest.mark.parametrize(("call", "method", "target", "body"), CALLS)
def test_client_signs_what_it_sends(
    recorder: tuple[str, list[Received]],
    signed: str,
    call: Callable[[LegacyClient], object],
    method: str,
    target: str,
    body: bytes,
) -> None:
    """Each operation's request verifies over what the server received, as the gateway does."""
    url, received = recorder
    client = LegacyClient(url, "ak", "sk", signed=signed.split(";"))
    call(client)
    [request] = received
    assert (request.method, request.target, request.body) == (method, target, body)
    if body or "content-type" in signed:
        assert request.headers["content-type"] == "application/json;charset=UTF-8"
    else:
        assert "content-type" not in request.headers
    if method == "GET" and signed == "host":
        assert "content-length" not in request.headers
    header = auth_v2.parse_authorization(request.headers["authorization"])
    assert header.signed_headers == signed
    parts = urlsplit(request.target)
    canonical = auth_v2.canonical_request(
        method, parts.path, parts.query, header.signed_headers, request.headers, request.body
    )
    key = auth_v2.signing_key("sk", header.prefix)
    assert header.signature == auth_v2.signature(key, canonical)
    if method == "POST":
        assert request.headers["idempotency-key"] == "k-1"
