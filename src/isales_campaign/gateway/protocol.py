"""uvicorn's httptools protocol with a deadline for receiving a request's headers.

uvicorn's keep-alive timeout restarts with every byte received, so a client that trickles
a request (or sends nothing after connecting) could hold a connection, and a file
descriptor, for good. Here a connection must deliver a request's complete headers within
the deadline after it opens and after each response; otherwise it is closed. (The body has
its own deadline, in the pipeline.)

A request the parser refuses (llhttp is strict: for one, Content-Length together with
Transfer-Encoding, two framings a proxy in front might read differently; or CONNECT) is
answered 400 in the legacy envelope, not uvicorn's plain text, and logged at INFO only.
"""

from __future__ import annotations

import asyncio
import logging

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from isales_campaign.gateway import envelope
from isales_campaign.legacy.wire import CONTENT_TYPE

log = logging.getLogger("isales_campaign.gateway")


class HeaderDeadlineProtocol(HttpToolsProtocol):
    #: Seconds a connection has to deliver a request's headers; set by `with_header_deadline`.
    header_seconds: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but quiet: a client's malformed request or unknown method (CONNECT) is
        # its mistake, and an upgrade (h2c, websocket) is answered as the plain request it also
        # is; uvicorn logs each at WARNING, and suggests installing a WebSocket library.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            log.info("malformed HTTP request refused", extra={"error": str(error)})
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            log.debug("upgrade not supported: answered as a plain request")
        if self._request_started():
            self._clear_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._request_started():
            self._await_request()  # the next request of a kept-alive connection

    def send_400_response(self, msg: str) -> None:
        body = envelope.render(envelope.PARAMETER_ERROR, f"malformed HTTP request: {msg}")
        head = (
            "HTTP/1.1 400 Bad Request\r\n"
            f"content-type: {CONTENT_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

    def _request_started(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _await_request(self) -> None:
        self._clear_deadline()
        self._deadline = self.loop.call_later(self.header_seconds, self._too_slow)

    def _clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection that sent no complete request in time")
            self.transport.close()


def with_header_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http` setting, with this deadline."""
    return type("BoundedHttpToolsProtocol", (HeaderDeadlineProtocol,), {"header_seconds": seconds})
