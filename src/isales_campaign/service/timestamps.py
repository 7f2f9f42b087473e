"""Stored times as protobuf Timestamps."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1)


def set_time(timestamp: Timestamp, moment: datetime) -> None:
    """Set a Timestamp to a stored (naive UTC) time: `FromDatetime` without its time-zone
    work, which a list page of 100 would pay 200 times."""
    since = moment - _EPOCH
    timestamp.seconds = since.days * 86_400 + since.seconds
    timestamp.nanos = since.microseconds * 1000
