"""uvicorn's httptools protocol with a deadline and a size limit for a request's headers.

uvicorn's keep-alive timeout restarts with every byte received, so a client that trickles
a request (or sends nothing after connecting) could hold a connection, and a file
descriptor, for good. Here a connection must deliver a request's complete headers within
the deadline after it opens and after each response; otherwise it is closed. (The body has
its own deadline, in the pipeline.) A request line and headers larger than the limit are
refused (`answers.HEADERS_TOO_LARGE`) without being read further (uvicorn with httptools
bounds neither).

A request the parser refuses (llhttp is strict: for one, Content-Length together with
Transfer-Encoding, two framings a proxy in front might read differently; or CONNECT) is
answered as malformed (`answers.MALFORMED_REQUEST`) in the legacy envelope, not uvicorn's
plain text, and logged at INFO only. Both refusals are counted in the gateway's metrics, as
requests of no operation.
"""

from __future__ import annotations

import asyncio
import logging

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from isales_campaign.gateway import answers
from isales_campaign.gateway.context import count_request
from isales_campaign.gateway.errors import LegacyError
from isales_campaign.metrics import NO_OPERATION

log = logging.getLogger("isales_campaign.gateway")

#: Seconds a refused connection is still read, and what comes dropped, before it is closed.
LINGER_SECONDS = 2.0


class BoundedHttpProtocol(HttpToolsProtocol):
    #: Seconds a connection has to deliver a request's headers; set by `bounded_protocol`.
    header_seconds: float = 10.0
    #: Largest request line and headers, in bytes; set by `bounded_protocol`.
    max_header_bytes: int = 32 * 1024
    _deadline: asyncio.TimerHandle | None = None
    #: Whether the current request's line and headers are still arriving, and their bytes.
    _in_head: bool = True
    _head_bytes: int = 0
    #: Whether the connection was refused and is only read (and dropped) until it closes.
    _lingering: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but bounded and quiet. The parser is fed no more of a request's head than
        # the limit (it would hold all of it in memory). A client's malformed request or
        # unknown method (CONNECT) is its mistake, and an upgrade (h2c, websocket) is answered
        # as the plain request it also is; uvicorn logs each at WARNING.
        if self._lingering:
            return  # the request was refused and answered: dropped unread
        self._unset_keepalive_if_required()
        if self._in_head:
            room = self.max_header_bytes - self._head_bytes
            self._head_bytes += min(len(data), room)
            if len(data) > room:
                if not self._feed(data[:room]):
                    return
                if self._in_head:
                    self._refuse_large_head()
                    return
                data = data[room:]
        if self._feed(data) and self._request_started():
            self._clear_deadline()

    def _feed(self, data: bytes) -> bool:
        """Parse `data`; False when the request was refused (and the connection closed)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            log.info("malformed HTTP request refused", extra={"error": str(error)})
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade:
            log.debug("upgrade not supported: answered as a plain request")
        return True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._request_started():
            self._await_request()  # the next request of a kept-alive connection

    def send_400_response(self, msg: str) -> None:
        self._refuse(answers.malformed_request(msg))

    def _refuse_large_head(self) -> None:
        log.info("request with too large headers refused", extra={"limit": self.max_header_bytes})
        self._refuse(answers.headers_too_large(self.max_header_bytes))

    def _refuse(self, error: LegacyError) -> None:
        self.transport.write(answers.http_message(error))
        # Never an ASGI request: counted here, without a duration.
        count_request(NO_OPERATION, error.kind.status, error.code, None)
        # Closing now would reset a connection the client is still sending on, and a reset
        # may destroy the answer before the client reads it: send the end of the stream, read
        # and drop what still comes for a while, then close (nginx's lingering close).
        self._lingering = True
        self._clear_deadline()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _request_started(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _await_request(self) -> None:
        self._in_head = True
        self._head_bytes = 0
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


def bounded_protocol(header_seconds: float, max_header_bytes: int) -> type[BoundedHttpProtocol]:
    """The protocol class for uvicorn's `http` setting, with these bounds."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpProtocol,),
        {"header_seconds": header_seconds, "max_header_bytes": max_header_bytes},
    )
