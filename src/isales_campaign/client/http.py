"""A small stdlib HTTP client for the legacy REST API, signing every request with auth-v2."""

from __future__ import annotations

import http.client
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from isales_campaign.legacy import auth_v2, paths
from isales_campaign.legacy.wire import CONTENT_TYPE, IDEMPOTENCY_KEY_HEADER, VALIDATE_ONLY

#: The query of `?validateOnly=true` (add and modify check the campaign without storing it).
_VALIDATE_ONLY_QUERY = {VALIDATE_ONLY: "true"}


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
    """`LegacyClient(base_url, ak, sk).add_campaign(1, {...})`; one connection per call.

    One method per operation of the vendor's API, and of the gateway's extension (a campaign's
    change history); each returns the answer as a `LegacyResponse` (the HTTP status and the
    decoded envelope), whatever its result code.
    """

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

    def add_campaign(
        self,
        vdn_id: int,
        campaign: Mapping[str, Any] | bytes,
        *,
        validate_only: bool = False,
        idempotency_key: str | None = None,
    ) -> LegacyResponse:
        """POST the campaign (a dict, or the JSON body as bytes) and return the envelope."""
        url = self._url(
            paths.path(paths.ADD, vdn_id), _VALIDATE_ONLY_QUERY if validate_only else {}
        )
        headers = {IDEMPOTENCY_KEY_HEADER: idempotency_key} if idempotency_key is not None else None
        return self.request("POST", url, _json(campaign), headers)

    def get_campaign(self, vdn_id: int, campaign_id: int) -> LegacyResponse:
        """GET one campaign; the envelope's `returnObject` holds it."""
        return self.request("GET", self._url(paths.path(paths.ONE, vdn_id, campaign_id)))

    def list_campaigns(self, vdn_id: int, **params: str | int) -> LegacyResponse:
        """GET a page of campaigns; `params` are the query parameters (`name`, `status`,
        `deviceType`, `beginTime`, `endTime`, `curPage`, `rowsPerPage`, `ccId`)."""
        return self.request("GET", self._url(paths.path(paths.LIST, vdn_id), params))

    def update_campaign(
        self,
        vdn_id: int,
        campaign_id: int,
        campaign: Mapping[str, Any] | bytes,
        *,
        validate_only: bool = False,
    ) -> LegacyResponse:
        """PUT the campaign's full replacement (modify V2)."""
        url = self._url(
            paths.path(paths.MODIFY, vdn_id, campaign_id),
            _VALIDATE_ONLY_QUERY if validate_only else {},
        )
        return self.request("PUT", url, _json(campaign))

    def pause_campaign(self, vdn_id: int, campaign_id: int) -> LegacyResponse:
        """PUT .../pause (suspend), no body."""
        return self.request("PUT", self._url(paths.path(paths.PAUSE, vdn_id, campaign_id)))

    def resume_campaign(self, vdn_id: int, campaign_id: int) -> LegacyResponse:
        """PUT .../resume, no body."""
        return self.request("PUT", self._url(paths.path(paths.RESUME, vdn_id, campaign_id)))

    def delete_campaign(
        self, vdn_id: int, campaign_id: int, *, archive: bool | None = None
    ) -> LegacyResponse:
        """DELETE the campaign; `archive` sends `{"archiveHistory": 1}` (True) or `0` (False),
        None sends no body (the vendor's default: delete)."""
        body = b"" if archive is None else orjson.dumps({"archiveHistory": int(archive)})
        return self.request("DELETE", self._url(paths.path(paths.ONE, vdn_id, campaign_id)), body)

    def list_campaign_changes(
        self, vdn_id: int, campaign_id: int, **params: str | int
    ) -> LegacyResponse:
        """GET a page of the campaign's change history (the gateway's extension); `params`
        are the query parameters (`afterSequence`, `rowsPerPage`)."""
        url = self._url(paths.path(paths.CHANGES, vdn_id, campaign_id), params)
        return self.request("GET", url)

    def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> LegacyResponse:
        """Send one signed request; `headers` are extra headers (e.g. Idempotency-Key).

        The path and query are signed as sent. Content-Type and Content-Length are sent with a
        body, and without one only when they are signed (as `application/json` and `0`, the
        values signed), so that what is signed is always what is sent.
        """
        target = Target.parse(url)
        signed = {name.lower() for name in self._signed}
        sent = {"Host": target.host_header, "Accept": "application/json"}
        if body or "content-type" in signed:
            sent["Content-Type"] = CONTENT_TYPE
        if body or "content-length" in signed:
            sent["Content-Length"] = str(len(body))
        for name, value in (headers or {}).items():
            for same in [known for known in sent if known.lower() == name.lower()]:
                del sent[same]
            sent[name] = value
        sent["Authorization"] = auth_v2.authorization(
            self._access_key,
            self._secret_key,
            method=method,
            path=target.path,
            query=target.query,
            headers=sent,
            body=body,
            signed=self._signed,
        )
        connection_class = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(target.host, target.port, timeout=self._timeout)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            # No body is None, not b"": http.client adds no Content-Length of its own to a GET.
            connection.request(method, path, body=body or None, headers=sent)
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

    def _url(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        """The base URL, `path`, and the query percent-encoded (`%20` for a space)."""
        encoded = urlencode(query, quote_via=quote) if query else ""
        return self._base + path + (f"?{encoded}" if encoded else "")


def _json(campaign: Mapping[str, Any] | bytes) -> bytes:
    return campaign if isinstance(campaign, bytes) else orjson.dumps(campaign)
