"""How a server hears of the changes other processes commit, for its change feed.

- PostgreSQL: every recorded change notifies channel `CHANNEL` with its tenant's VDN (a
  trigger, migration 0007), delivered at commit; the server LISTENs on a connection of its
  own. Nothing is read while nothing changes.
- SQLite: the server reads the file's data version (`PRAGMA data_version`, which changes when
  another connection commits) every `POLL_SECONDS` while anybody watches: a read of a shared
  memory page, not of the file.

Either may miss a change (the listening connection broke; SQLite does not say which tenant
changed): the feed is then told that any tenant may have changed, and reads them all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)

#: The PostgreSQL channel of recorded changes; the payload is the tenant's VDN.
CHANNEL = "isales_campaign_changes"
#: Seconds between two reads of SQLite's data version while anybody watches.
POLL_SECONDS = 0.2
#: Seconds between two attempts to listen again after the connection broke.
RECONNECT_SECONDS = 1.0
#: Seconds the listener waits for a notice before it looks whether it should stop.
LISTEN_SECONDS = 0.25


class ChangeSignals:
    def __init__(
        self,
        engine: Engine,
        *,
        changed: Callable[[int], None],
        changed_any: Callable[[], None],
        watched: Callable[[], bool],
    ) -> None:
        """`changed(vdn_id)`: a tenant changed; `changed_any()`: any may have;
        `watched()`: whether anybody watches (SQLite polls only then)."""
        self._engine = engine
        self._changed = changed
        self._changed_any = changed_any
        self._watched = watched
        self._stop = threading.Event()
        run = self._listen if engine.dialect.name == "postgresql" else self._poll
        self._thread = threading.Thread(target=run, name="change-signals", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(RECONNECT_SECONDS + POLL_SECONDS)

    def _listen(self) -> None:
        broken = False
        while not self._stop.is_set():
            try:
                connection = self._connect()
                try:
                    connection.execute(f"LISTEN {CHANNEL}")
                    if broken:  # changes may have been committed while nobody listened
                        log.info("listening for changes again")
                        self._changed_any()
                        broken = False
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=LISTEN_SECONDS):
                            self._changed(int(notice.payload))
                finally:
                    connection.close()
            except Exception:
                if not broken:
                    log.warning("cannot listen for changes; retrying", exc_info=True)
                    broken = True
                self._stop.wait(RECONNECT_SECONDS)

    def _poll(self) -> None:
        version: object = None
        connection = None
        while not self._stop.wait(POLL_SECONDS):
            if not self._watched():
                version = None
                continue
            try:
                if connection is None:
                    connection = self._connect()
                seen = connection.execute("PRAGMA data_version").fetchone()
            except Exception:
                log.warning("cannot read the database's data version", exc_info=True)
                _closed(connection)
                connection = None
                continue
            if seen != version:  # or the first read: changes before it were not seen
                self._changed_any()
            version = seen
        _closed(connection)

    def _connect(self) -> Any:
        """A DBAPI connection of its own, outside the pool."""
        proxied = self._engine.raw_connection()
        proxied.detach()
        connection = proxied.dbapi_connection
        assert connection is not None
        if self._engine.dialect.name == "postgresql":
            connection.autocommit = True  # LISTEN takes effect at once
        return connection


def _closed(connection: Any) -> None:
    if connection is not None:
        try:
            connection.close()
        except Exception:
            log.debug("closing a connection failed", exc_info=True)
