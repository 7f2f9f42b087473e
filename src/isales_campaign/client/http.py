"""A small stdlib HTTP client for the legacy REST API, signing every request with auth-v2."""

from __future__ import annotations

import http.client
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from isales_campaign.client import auth_v2

CONTENT_TYPE = "application/json;charset=UTF-8"
ADD_CAMPAIGN_PATH = "/rest/isales/v2/openapi/campaigns/{vdn_id}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points, and the Host header a client sends for it."""

    scheme: str
    host: str
    port: int | None
    #: `host[:port]`, the port only when it is not the scheme's default.
    host_header: str
    path: str
    query: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        default = 443 if parts.scheme == "https" else 80
        host = parts.netloc.rpartition("@")[2]
        if parts.port == default:
            host = host.rsplit(":", 1)[0]
        return cls(parts.scheme, parts.hostname, parts.port, host, parts.path or "/", parts.query)


def sign_request(
    access_key: str,
    secret_key: str,
    *,
    method: str,
    url: str,
    body: bytes = b"",
    content_type: str = CONTENT_TYPE,
    signed: Iterable[str] = ("host",),
    timestamp: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> str:
    """The Authorization value for `method url` with `body`, as curl or http.client send it.

    Host, Content-Type and Content-Length are derived; other headers to sign go in
    `extra_headers`.
    """
    target = Target.parse(url)
    headers = {
        "host": target.host_header,
        "content-type": content_type,
        "content-length": str(len(body)),
        **{name.lower(): value for name, value in (extra_headers or {}).items()},
    }
    return auth_v2.authorization(
        access_key,
        secret_key,
        method=method,
        path=target.path,
        query=target.query,
        headers=headers,
        body=body,
        signed=signed,
        timestamp=timestamp,
    )


@dataclass(frozen=True, slots=True)
class LegacyResponse:
    status: int
    headers: Mapping[str, str]
    #: The decoded envelope (`resultCode`, `resultDesc`, ...).
    body: dict[str, Any]

    @property
    def result_code(self) -> str:
        return str(self.body.get("resultCode", ""))


class LegacyClient:
    """`LegacyClient(base_url, ak, sk).add_campaign(1, {...})`; one connection per call."""

    def __init__(
        self,
        base_url: str,
        access_key: str,
        secret_key: str,
        *,
        timeout: float = 30.0,
        signed: Iterable[str] = ("host",),
    ) -> None:
        self._base = base_url.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self._timeout = timeout
        self._signed = tuple(signed)

    def add_campaign(self, vdn_id: int, campaign: Mapping[str, Any] | bytes) -> LegacyResponse:
        """POST the campaign (a dict, or the JSON body as bytes) and return the envelope."""
        body = campaign if isinstance(campaign, bytes) else orjson.dumps(campaign)
        url = self._base + ADD_CAMPAIGN_PATH.format(vdn_id=vdn_id)
        return self.request("POST", url, body)

    def request(self, method: str, url: str, body: bytes) -> LegacyResponse:
        target = Target.parse(url)
        authorization = sign_request(
            self._access_key,
            self._secret_key,
            method=method,
            url=url,
            body=body,
            signed=self._signed,
        )
        headers = {
            "Host": target.host_header,
            "Content-Type": CONTENT_TYPE,
            "Content-Length": str(len(body)),
            "Authorization": authorization,
            "Accept": "application/json",
        }
        connection_class = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(target.host, target.port, timeout=self._timeout)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            response_headers = {name.lower(): value for name, value in response.getheaders()}
        finally:
            connection.close()
        try:
            decoded = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):  # not the envelope, e.g. a proxy's error page
            decoded = {"resultDesc": raw.decode(errors="replace")}
        return LegacyResponse(response.status, response_headers, decoded)
