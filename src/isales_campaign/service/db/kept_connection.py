"""A pooled SQLite connection that its one user keeps between uses.

SQLite's writes of a process take turns, and so do its reads (see `store`): each turn can
use the same connection. Kept, it pays the pool's checkout and checkin once, not per call
(about a twentieth of an add), and its page cache stays warm: a connection keeps its cached
pages across its own transactions, and only another connection's write makes it drop them.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.pool import PoolProxiedConnection

from isales_campaign.service.db.prepared import Prepared, checkout


class KeptConnection:
    """One connection of `engine`'s pool for a user that takes turns (holds a lock) around
    `take` ... `keep` or `drop`. `cache_kib`: the size of its SQLite page cache (None: SQLite's
    default, 2 MiB)."""

    def __init__(self, engine: Engine, *, cache_kib: int | None = None) -> None:
        self._engine = engine
        self._setup = (
            None
            if cache_kib is None
            else Prepared(text(f"PRAGMA cache_size = -{int(cache_kib)}"), engine.dialect)
        )
        self._connection: PoolProxiedConnection | None = None

    def take(self) -> PoolProxiedConnection:
        """The kept connection, or a new one from the pool."""
        connection, self._connection = self._connection, None
        if connection is None:
            connection = checkout(self._engine)
            try:
                if self._setup is not None:
                    self._setup.execute(connection, {}).close()
            except BaseException:
                connection.close()
                raise
        return connection

    def keep(self, connection: PoolProxiedConnection) -> None:
        """Keep it for the next turn: its transaction has ended. One that broke goes."""
        if connection.is_valid:
            self._connection = connection
        else:
            connection.close()  # the pool drops an invalidated connection

    def drop(self, connection: PoolProxiedConnection) -> None:
        """Close it for good: a use failed, and it may hold a transaction or a broken state
        that the next turn must not inherit. The pool opens another when asked."""
        if connection.is_valid:
            connection.invalidate()
        connection.close()

    def close(self) -> None:
        """Give the kept connection back (when the store closes)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
