"""Bucket edges for aggregates: fixed intervals, or calendar ones in a time zone.

`"15min"` buckets start at local midnight of the first day and follow each other every 15
minutes of real time, so a DST change neither doubles nor drops a bucket. `"1d"`, `"1w"`,
`"1mo"` and `"1y"` follow the wall clock of the zone: a day in Europe/Berlin starts at local
midnight and lasts 23 or 25 hours across a DST change, as operators expect of a daily report
(PI and Ignition do the same). Weeks start on Monday (ISO 8601).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kiln.core.errors import QueryTooLargeError

# The most buckets one query may ask for: the store's hard bound, and the default of the API's
# `limits.max_buckets` (which may only lower it). A bucket is a handful of numbers per aggregate,
# so this many stay within the size of the largest raw read (`limits.raw_max`).
MAX_BUCKETS = 100_000

_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000}
_CALENDAR = ("d", "w", "mo", "y")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(us|ms|s|min|mo|m|h|d|w|y)\s*$")


@dataclass(frozen=True, slots=True)
class Interval:
    """A bucket length: `count` of `unit`. Calendar units (d, w, mo, y) follow the wall clock."""

    count: int
    unit: str

    @property
    def calendar(self) -> bool:
        return self.unit in _CALENDAR

    @property
    def fixed_us(self) -> int:
        """The length in microseconds of a fixed interval (ValueError for calendar ones)."""
        if self.calendar:
            raise ValueError(f"{self} is a calendar interval: its length varies")
        return self.count * _US[self.unit]

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_interval(text: str | int) -> Interval:
    """`"15min"` (or `"15m"`), `"1h"`, `"1d"`, `"1mo"`...; a bare integer is microseconds."""
    if isinstance(text, int):
        if text < 1:
            raise ValueError(f"an interval must be at least 1 microsecond, got {text}")
        return Interval(text, "us")
    match = _INTERVAL.match(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"{text!r} is not an interval: use a positive count and a unit, one of "
            "us, ms, s, min, h, d, w, mo, y (e.g. 15min, 1h, 1d, 1mo)"
        )
    unit = "min" if match.group(2) == "m" else match.group(2)
    return Interval(int(match.group(1)), unit)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone: use an IANA name such as UTC or Europe/Berlin"
        ) from None


def bucket_edges(
    start_us: int, end_us: int, interval: Interval, tz: str = "UTC", *, max_buckets: int
) -> np.ndarray:
    """Edges e_0 <= start < e_1 < ... < e_n >= end of the buckets covering [start, end).

    Bucket k is [e_k, e_(k+1)). Raises QueryTooLargeError, with an interval that would fit,
    when more than `max_buckets` buckets are needed.
    """
    if end_us <= start_us:
        raise ValueError(f"the range ends ({end_us}) at or before it starts ({start_us})")
    tzinfo = zone(tz)
    if not interval.calendar:
        step = interval.fixed_us
        first = _aligned_start(start_us, step, tzinfo)
        n = -(-(end_us - first) // step)
        _check_count(n, max_buckets, end_us - start_us)
        return first + step * np.arange(n + 1, dtype=np.int64)
    edges = [_local_floor(start_us, interval, tzinfo)]
    while edges[-1] < end_us:
        if len(edges) > max_buckets:
            _check_count(len(edges), max_buckets, end_us - start_us)
        edges.append(_local_next(edges[-1], interval, tzinfo))
    return np.asarray(edges, dtype=np.int64)


def _aligned_start(start_us: int, step: int, tzinfo: ZoneInfo) -> int:
    # Fixed intervals count from local midnight of the start's day (for UTC, from midnight
    # UTC, i.e. aligned to the epoch), so 15-minute buckets in Asia/Kolkata start at :00.
    midnight = _local_floor(start_us, Interval(1, "d"), tzinfo)
    return midnight + (start_us - midnight) // step * step


def _local_floor(t_us: int, interval: Interval, tzinfo: ZoneInfo) -> int:
    local = _to_local(t_us, tzinfo)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval.unit == "w":
        day -= timedelta(days=day.weekday())
    elif interval.unit == "mo":
        day = day.replace(day=1)
    elif interval.unit == "y":
        day = day.replace(month=1, day=1)
    return _from_local(day, tzinfo)


def _local_next(edge_us: int, interval: Interval, tzinfo: ZoneInfo) -> int:
    local = _to_local(edge_us, tzinfo).replace(tzinfo=None)
    n = interval.count
    if interval.unit == "d":
        nxt = local + timedelta(days=n)
    elif interval.unit == "w":
        nxt = local + timedelta(weeks=n)
    elif interval.unit == "mo":
        months = local.year * 12 + local.month - 1 + n
        nxt = local.replace(year=months // 12, month=months % 12 + 1)
    else:
        nxt = local.replace(year=local.year + n)
    return _from_local(nxt.replace(tzinfo=tzinfo), tzinfo)


def _to_local(t_us: int, tzinfo: ZoneInfo) -> datetime:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t_us)).astimezone(tzinfo)


def _from_local(local: datetime, tzinfo: ZoneInfo) -> int:
    # A wall time that does not exist (skipped by a DST change) resolves forward, one that
    # exists twice to its first occurrence (fold=0), as zoneinfo does.
    aware = local.replace(tzinfo=tzinfo, fold=0)
    delta = aware.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _check_count(n: int, max_buckets: int, span_us: int) -> None:
    if n <= max_buckets:
        return
    raise QueryTooLargeError(
        f"{n} buckets requested; the limit is {max_buckets}: use an interval of at least "
        f"{suggest_interval(span_us, max_buckets)} or a shorter range"
    )


def suggest_interval(span_us: int, max_count: int) -> str:
    """The shortest round interval that cuts `span_us` into at most `max_count` pieces."""
    for text in (
        "1s", "5s", "10s", "30s", "1min", "5min", "10min", "15min", "30min",
        "1h", "2h", "6h", "12h", "1d", "7d", "30d", "365d",
    ):  # fmt: skip
        if span_us <= parse_interval(text).fixed_us * max_count:
            return text
    return f"{-(-span_us // max_count)}us"
