"""Conversions between datetimes and protobuf Timestamps/Durations, always in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from provender.kernel.errors import InvalidArgument

# The times a Timestamp can hold (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z), as protobuf defines them.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799
# The longest Duration protobuf defines: 10,000 years.
MAX_DURATION_SECONDS = 315_576_000_000


def to_timestamp(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def checked_timestamp(field: str, ts: Timestamp) -> datetime:
    """A caller's Timestamp as a datetime; InvalidArgument naming the field when it is outside what a Timestamp
    can hold."""
    if not (MIN_SECONDS <= ts.seconds <= MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000):
        raise InvalidArgument(
            field, f"{ts.seconds}s {ts.nanos}ns", "a time between 0001-01-01 and 9999-12-31 (UTC)"
        )
    return from_timestamp(ts)


def to_duration(td: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(td)
    return d
