"""What an idempotency key promises: for KEY_RETENTION, a retry of an add with the same key
and the same campaign is answered as the add was, and the same key with another campaign is
refused."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from isales_campaign.result_codes import ResultCode
from isales_campaign.service.errors import FieldProblem, IdempotencyKeyReused

if TYPE_CHECKING:
    from isales_campaign.service.db.store import StoredKey

#: How long an idempotency key answers retries of its add.
KEY_RETENTION = timedelta(hours=24)


def digest(config: bytes) -> bytes:
    """What a key remembers of the campaign its add asked for (its serialized configuration)."""
    return hashlib.sha256(config).digest()


def replayed(vdn_id: int, stored: StoredKey, asked: bytes) -> StoredKey:
    """The earlier add's answer for a retry asking for the campaign of digest `asked`;
    IdempotencyKeyReused when the earlier add asked for another one."""
    if stored.digest != asked:
        raise IdempotencyKeyReused(vdn_id)
    return stored


def may_retry_an_earlier_day(key: str, problems: Sequence[FieldProblem]) -> bool:
    """Whether a refused add may be the retry of an add made on an earlier day: it has a key
    and its only problem is a begin time before today, which was today when first sent."""
    return bool(key) and all(
        p.code == ResultCode.RESULT_CODE_START_TIME_BEFORE_TODAY for p in problems
    )
