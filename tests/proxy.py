"""A TCP proxy that can stop forwarding: a database that freezes, that receives a request and
never answers it (a frozen server, a network partition), or that stops."""

from __future__ import annotations

import contextlib
import socket
import threading


class FreezableProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._requests = threading.Event()
        self._replies = threading.Event()
        self._requests.set()
        self._replies.set()
        #: Once a request holding these bytes has been forwarded, replies stop.
        self._hold_replies_after: bytes | None = None
        self._sockets: list[socket.socket] = []
        self._refusing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """Nothing passes in either direction; connections stay open."""
        self._requests.clear()
        self._replies.clear()

    def hold_replies_after(self, marker: bytes) -> None:
        """Forward the next request containing `marker`, then no reply."""
        self._hold_replies_after = marker

    def stop(self) -> None:
        """As a stopped server: open connections are closed, new ones refused."""
        self._refusing = True
        for connection in self._sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._sockets.clear()

    def thaw(self) -> None:
        """Forward again (and accept again after `stop`)."""
        self._refusing = False
        self._hold_replies_after = None
        self._requests.set()
        self._replies.set()

    def close(self) -> None:
        self.thaw()
        self._listener.close()
        for connection in self._sockets:
            connection.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        gate = self._requests if requests else self._replies
        try:
            while data := source.recv(65536):
                gate.wait()
                marker = self._hold_replies_after
                if requests and marker is not None and marker in data:
                    self._replies.clear()  # before the request goes: its reply must not pass
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
