"""The database's failures as the commands that look after it say them: `DatabaseFailed`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from isales_campaign.service.errors import DatabaseFailed


@contextmanager
def said_in_one_line() -> Iterator[None]:
    """Turn a failure of the database into DatabaseFailed with the driver's reason: its first
    line only (SQLAlchemy's message goes on with the statement and its parameters, which may
    hold a secret key)."""
    try:
        yield
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise DatabaseFailed(reason) from None
