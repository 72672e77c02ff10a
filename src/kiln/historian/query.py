"""Read queries over the points table, and their results.

Every query names one series by id and a source-time range, so DuckDB's zone maps on `ts`
(and on `series_id`, which the writer clusters per commit) skip the row groups outside it.
Timestamps cross the boundary as integer microseconds (`epoch_us`, `make_timestamptz`) to avoid
building Python datetimes for every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kiln.core.errors import QueryTooLargeError
from kiln.core.values import TagValue
from kiln.historian import duck
from kiln.historian.maths.columns import STRING, decode
from kiln.historian.maths.timeline import Points

# OPC UA Part 4, 7.39.2: severity Good is the top two bits 00, i.e. a code below 0x40000000
# (the same test as kiln.core.quality.is_good, written so DuckDB can evaluate it per row).
_GOOD = "quality < 1073741824"

AggValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class RawResult:
    """Stored points of one tag, in source-time order; `truncated` if the limit cut it short."""

    path: str
    points: list[TagValue]
    truncated: bool


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates of one interval starting at `start_us` (a multiple of the interval)."""

    start_us: int
    values: dict[str, AggValue] = field(default_factory=dict)


def check_range(start_us: int, end_us: int) -> None:
    if end_us < start_us:
        raise ValueError(f"the range ends ({end_us}) before it starts ({start_us})")


_RAW_SQL = """
SELECT epoch_us(ts), value, text, quality, epoch_us(recv_ts)
FROM points
WHERE series_id = $sid AND ts >= make_timestamptz($start) AND ts < make_timestamptz($end)
ORDER BY ts
LIMIT $limit
"""


def raw(
    cur: duck.Connection,
    sid: int,
    path: str,
    kind: str,
    start_us: int,
    end_us: int,
    limit: int,
) -> RawResult:
    """Points of series `sid` with start <= ts < end, at most `limit` of them."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    check_range(start_us, end_us)
    rows = cur.execute(
        _RAW_SQL, {"sid": sid, "start": start_us, "end": end_us, "limit": limit + 1}
    ).fetchall()
    truncated = len(rows) > limit
    points = [
        TagValue(path, decode(kind, value, text), ts, quality, recv)
        for ts, value, text, quality, recv in rows[:limit]
    ]
    return RawResult(path, points, truncated)


# -- timelines: the points of a range and its neighbours, for interpolation and summaries ----

MAX_TIMELINE_POINTS = 5_000_000
# How far back (and ahead) to look for the point that starts (ends) the range's timeline,
# widening step by step: the neighbour is usually close, and an unbounded search would scan the
# series' whole history.
_NEIGHBOUR_WINDOWS_US = (3_600_000_000, 86_400_000_000, 30 * 86_400_000_000, None)

# One scan for every tag of a query: the range and a margin either side, in which the points
# that start and end each timeline almost always are (a tag reporting less often than the
# margin has its neighbours looked up alone, by `_neighbour`).
_MARGIN_US = 3_600_000_000
_TIMELINES_SQL = """
SELECT series_id AS sid, epoch_us(ts) AS ts, value, {text} quality FROM points
WHERE series_id >= $s0 AND series_id <= $s1 AND list_contains($sids, series_id)
  AND ts >= make_timestamptz($lo) AND ts < make_timestamptz($hi)
LIMIT $limit
"""
_BEFORE_SQL = """
SELECT epoch_us(ts), value, text, quality FROM points
WHERE series_id = $sid AND ts < make_timestamptz($t) AND ts >= make_timestamptz($bound)
ORDER BY ts DESC LIMIT 1
"""
_AFTER_SQL = """
SELECT epoch_us(ts), value, text, quality FROM points
WHERE series_id = $sid AND ts >= make_timestamptz($t) AND ts < make_timestamptz($bound)
ORDER BY ts LIMIT 1
"""
_FAR = 2**62  # beyond any timestamp: the unbounded last window


def _neighbour(
    cur: duck.Connection, sid: int, t_us: int, *, before: bool
) -> tuple[int, float | None, str | None, int] | None:
    for window in _NEIGHBOUR_WINDOWS_US:
        if before:
            bound = -_FAR if window is None else t_us - window
            row = cur.execute(_BEFORE_SQL, {"sid": sid, "t": t_us, "bound": bound}).fetchone()
        else:
            bound = _FAR if window is None else t_us + window
            row = cur.execute(_AFTER_SQL, {"sid": sid, "t": t_us, "bound": bound}).fetchone()
        if row is not None:
            return (int(row[0]), row[1], row[2], int(row[3]))
    return None


def neighbour_points(cur: duck.Connection, sid: int, t_us: int, *, before: bool) -> Points:
    """The last point of a numeric series before `t_us` (or the first at or after it), as
    Points of none or one."""
    found = _neighbour(cur, sid, t_us, before=before)
    if found is None:
        return Points(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, bool))
    value = np.nan if found[1] is None else float(found[1])
    return Points(np.array([found[0]], np.int64), np.array([value]),
                  np.array([_is_good(found, value)]))  # fmt: skip


# A series' oldest and newest stored timestamps, when the caller knows them: a neighbour
# outside them does not exist and is not searched for.
StoredSpan = Callable[[int], tuple[int, int] | None]


def timelines(
    cur: duck.Connection,
    series: Sequence[tuple[int, str]],
    start_us: int,
    end_us: int,
    *,
    max_points: int = MAX_TIMELINE_POINTS,
    span: StoredSpan | None = None,
) -> list[Points]:
    """The points of [start, end) of each series (id, kind), with the last one before and the
    first one at or after `end`, as `timeline.Points` (see there for what they mean); one scan
    for all of them."""
    if not series:
        return []
    sids = sorted({sid for sid, _ in series})
    lo, hi = start_us - _MARGIN_US, end_us + _MARGIN_US
    # The text column only when a string tag needs it. No ORDER BY: sorting in SQL cost more
    # than the scan; `_by_series` orders the rows in NumPy (see there).
    text = "text," if any(kind == STRING for _, kind in series) else ""
    got = cur.execute(
        _TIMELINES_SQL.format(text=text),
        {"s0": sids[0], "s1": sids[-1], "sids": sids, "lo": lo, "hi": hi,
         "limit": max_points + 1},
    ).fetchnumpy()  # fmt: skip
    if len(got["ts"]) > max_points:
        raise QueryTooLargeError(
            f"the range holds more than {max_points} points of these tags: use a shorter "
            "range or fewer tags"
        )
    got = _by_series(got)
    all_sid = np.asarray(got["sid"], dtype=np.int64)
    all_ts = np.asarray(got["ts"], dtype=np.int64)
    all_quality = np.asarray(got["quality"], dtype=np.int64)
    return [
        _one(
            cur,
            sid,
            kind,
            got,
            all_sid,
            all_ts,
            all_quality,
            start_us,
            end_us,
            lo,
            hi,
            span(sid) if span is not None else None,
        )
        for sid, kind in series
    ]


def _by_series(got: dict[str, Any]) -> dict[str, Any]:
    """The fetched columns ordered by (series, ts). A table scan returns each series' rows in
    commit order, which is time order for appended data, so a stable sort by series (a radix
    sort of integers) is almost always enough; late points need the full two-key sort."""
    sid = np.asarray(got["sid"], dtype=np.int64)
    ts = np.asarray(got["ts"], dtype=np.int64)
    if len(sid) < 2:
        return got
    order = np.argsort(sid, kind="stable")
    s, t = sid[order], ts[order]
    if np.any((s[1:] == s[:-1]) & (t[1:] <= t[:-1])):
        order = np.lexsort((ts, sid))
    if np.array_equal(order, np.arange(len(order))):
        return got
    return {name: col[order] for name, col in got.items()}


def _one(
    cur: duck.Connection,
    sid: int,
    kind: str,
    got: dict[str, Any],
    all_sid: NDArray[np.int64],
    all_ts: NDArray[np.int64],
    all_quality: NDArray[np.int64],
    start_us: int,
    end_us: int,
    lo: int,
    hi: int,
    stored: tuple[int, int] | None,
) -> Points:
    a, b = np.searchsorted(all_sid, [sid, sid + 1])
    ts = all_ts[a:b]
    first = int(np.searchsorted(ts, start_us))  # the first point of the range
    stop = int(np.searchsorted(ts, end_us))  # the first point at or after its end
    # Keep the range, plus the point before it and the one after, when the margin has them.
    i0, i1 = a + max(first - 1, 0), a + min(stop + 1, b - a)
    ts = all_ts[i0:i1]
    quality = all_quality[i0:i1]
    if kind == STRING:
        values = np.asarray(np.ma.filled(got["text"][i0:i1], None), dtype=object)
        present = np.asarray([v is not None for v in values], dtype=bool)
    else:
        raw = got["value"][i0:i1]
        values = np.asarray(np.ma.filled(raw.astype(np.float64), np.nan), np.float64)
        present = ~np.isnan(values)
    good = present & (quality < _GOOD_BELOW)
    oldest, newest = stored if stored is not None else (-_FAR, _FAR)
    if first == 0 and oldest < lo:  # nothing in the margin before the range: look further
        before = _neighbour(cur, sid, lo, before=True)
        if before is not None:
            value = before[2] if kind == STRING else (np.nan if before[1] is None else before[1])
            ts, values, good = _join(before, value, ts, values, good, first=True)
    if stop == b - a and newest >= hi:  # nothing in the margin after it: look further ahead
        after = _neighbour(cur, sid, hi, before=False)
        if after is not None:
            value = after[2] if kind == STRING else (np.nan if after[1] is None else after[1])
            ts, values, good = _join(after, value, ts, values, good, first=False)
    return Points(ts, values, good)


_GOOD_BELOW = 1 << 30  # OPC UA Part 4, 7.39.2: severity Good (see _GOOD above)


def _is_good(point: tuple[int, float | None, str | None, int], value: object) -> bool:
    return point[3] < _GOOD_BELOW and value is not None and value == value  # NaN: no value


def _join(
    point: tuple[int, float | None, str | None, int],
    value: object,
    ts: NDArray[Any],
    values: NDArray[Any],
    good: NDArray[Any],
    *,
    first: bool,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The columns with one neighbouring point added before (`first`) or after them."""
    one = (np.array([point[0]]), np.array([value], dtype=values.dtype), [_is_good(point, value)])
    cols = (ts, values, good)
    joined = [np.concatenate([a, b] if first else [b, a]) for a, b in zip(one, cols, strict=True)]
    return joined[0].astype(np.int64), joined[1], joined[2].astype(bool)
