"""uvicorn's h11 protocol with a deadline for receiving a request's headers.

uvicorn's keep-alive timeout restarts with every byte received, so a client that trickles
a request (or sends nothing after connecting) could hold a connection, and a file
descriptor, for good. Here a connection must deliver a request's complete headers within
the deadline after it opens and after each response; otherwise it is closed. (The body has
its own deadline, in the pipeline.)
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("isales_campaign.gateway")


class HeaderDeadlineProtocol(H11Protocol):
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
        super().data_received(data)
        if self._request_started():
            self._clear_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._request_started():
            self._await_request()  # the next request of a kept-alive connection

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
    return type("BoundedH11Protocol", (HeaderDeadlineProtocol,), {"header_seconds": seconds})
