"""Rollups: per-bucket summaries of a tag from which longer buckets' aggregates follow exactly.

A rollup row summarizes the points of one tag inside one bucket of a fixed grid (say one
minute): the event statistics of its Good points (count, sum, the sum of squared deviations
from their mean, min, max, first, last), its first and last point of any quality (`head` and
`tail`), and the integral and valid time of the timeline between them (`area`, `good_us`).

A row depends only on the points inside its bucket, never on its neighbours, which is what
makes rollups cheap to keep up: a bucket is recomputed when a point in it changes, and an
append is folded into its bucket's row by `combine`. What happens *between* two rows (from one
row's tail to the next row's head) is a plain segment of the tag's timeline, so `merge`
rebuilds it from the heads and tails at query time, with the same rules as `timeline`.

So any query whose bucket edges lie on the grid gets the same answer from rollups as from the
raw points (up to floating-point summation order): time-weighted averages, totals and percent
good, as well as the event aggregates. Per-state durations and transitions of discrete tags
and all aggregates of string tags are answered from raw points.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from kiln.historian.maths import aggregates, timeline
from kiln.historian.maths.aggregates import Column
from kiln.historian.maths.calendar import parse_interval
from kiln.historian.maths.timeline import Array, Points

# The aggregates rollup rows can answer: all but the discrete ones, which need every change of
# value (see the module docstring for the rest).
ANSWERABLE = frozenset(aggregates.EVENT + aggregates.TIME_WEIGHTED)


@dataclass(frozen=True, slots=True)
class Rows:
    """Rollup rows of one tag in bucket order (one per non-empty bucket); all columns align."""

    bucket: Array  # int64: bucket start, µs
    count: Array  # int64: Good points
    sum: Array  # float64: their sum
    m2: Array  # float64: the sum of their squared deviations from their mean
    min: Array  # float64, NaN without Good points (likewise max, first, last)
    max: Array
    first: Array
    last: Array
    head_ts: Array  # int64: the first point of any quality
    head_value: Array  # float64, NaN for a point without a value
    head_good: Array  # bool
    tail_ts: Array  # the last point of any quality
    tail_value: Array
    tail_good: Array
    area: Array  # float64: integral of the value over valid time from head to tail, value x µs
    good_us: Array  # int64: valid time from head to tail

    def __len__(self) -> int:
        return len(self.bucket)

    def take(self, index: Array) -> Rows:
        """The rows at `index` (an integer or boolean array)."""
        return Rows(*(getattr(self, name)[index] for name in FIELDS))

    def put(self, index: Array, rows: Rows) -> Rows:
        """These rows with those at `index` replaced by `rows`."""
        out = []
        for name in FIELDS:
            col = getattr(self, name).copy()
            col[index] = getattr(rows, name)
            out.append(col)
        return Rows(*out)


FIELDS = tuple(f.name for f in fields(Rows))
_INT = ("bucket", "count", "head_ts", "tail_ts", "good_us")
_BOOL = ("head_good", "tail_good")


def check_widths(widths_us: Sequence[int]) -> None:
    """Rollup tier widths (µs, ascending) nest: each at least a second and dividing the next,
    so a wider tier is built from whole rows of the narrower one. ValueError saying why not."""
    if any(w < 1_000_000 for w in widths_us):
        raise ValueError("a rollup width must be at least one second")
    for narrow, wide in itertools.pairwise(widths_us):
        if wide % narrow:
            raise ValueError(
                f"each rollup width must divide the next: {wide // 1_000_000} s is not a "
                f"multiple of {narrow // 1_000_000} s (try 1min, 1h, 1d)"
            )


def parse_widths(texts: Sequence[str]) -> list[int]:
    """Tier widths like "1min", "1h", "1d" (a day of 24 hours, UTC) as microseconds, checked
    to nest; ValueError saying what is wrong. Pure, so reading a plant file needs no store."""
    widths = []
    for text in texts:
        interval = parse_interval(text)
        if interval.unit in ("mo", "y"):
            raise ValueError(f"a rollup tier needs a fixed width, not {text!r}: use s, min, h or d")
        days = {"d": 1, "w": 7}.get(interval.unit)
        widths.append(interval.count * days * 86_400_000_000 if days else interval.fixed_us)
    out = sorted(set(widths))
    check_widths(out)
    return out


def empty() -> Rows:
    return Rows(
        *(
            np.empty(0, np.int64 if name in _INT else bool if name in _BOOL else np.float64)
            for name in FIELDS
        )
    )


def concat(parts: Sequence[Rows]) -> Rows:
    """Rows of consecutive ranges, in order, as one."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    return Rows(*(np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS))


def from_columns(cols: dict[str, Array]) -> Rows:
    """Rows from columns named like `Rows`' fields (a fetched table), typed as `Rows` has them."""
    out = []
    for name in FIELDS:
        col = cols[name]
        if name in _INT:
            out.append(np.asarray(col, dtype=np.int64))
        elif name in _BOOL:
            out.append(np.asarray(col, dtype=bool))
        else:
            out.append(np.asarray(np.ma.filled(col, np.nan), dtype=np.float64))
    return Rows(*out)


def build(points: Points, width_us: int, *, step: bool) -> Rows:
    """The rollup rows of `points` (numeric, in time order) on the grid of `width_us`."""
    return build_many(points, np.zeros(len(points), np.int64), width_us, step=step)[1]


def build_many(
    points: Points, series: Array, width_us: int, *, step: bool | Array
) -> tuple[Array, Rows]:
    """The rollup rows of many series at once: `points` sorted by (`series`, time), `step`
    per point or for all; returns each row's series and the rows, in (series, bucket) order."""
    if width_us < 1:
        raise ValueError(f"a rollup width must be at least 1 µs, got {width_us}")
    if not points.numeric:
        raise ValueError("rollups summarize numeric tags only")
    n = len(points)
    if n == 0:
        return np.empty(0, np.int64), empty()
    ts, values, good = points.ts, points.values, points.good
    bucket = ts - ts % width_us  # Python-style modulo: floors before 1970 too
    new = np.r_[True, (bucket[1:] != bucket[:-1]) | (series[1:] != series[:-1])]
    starts = np.flatnonzero(new)
    groups = len(starts)
    ends = np.r_[starts[1:], n] - 1
    group = np.cumsum(new) - 1

    # The timeline between consecutive points of the same bucket (and so of the same series).
    inner = good[:-1] & ~new[1:]
    ramp = good[:-1] & good[1:]
    if isinstance(step, bool):
        ramp &= not step
    else:
        ramp &= ~np.asarray(step, bool)[:-1]
    duration = np.diff(ts)[inner]
    mean = np.where(ramp[inner], (values[:-1][inner] + values[1:][inner]) * 0.5,
                    values[:-1][inner])  # fmt: skip
    at = group[:-1][inner]
    area = _sums(at, mean * duration, groups)
    good_us = np.bincount(at, weights=duration, minlength=groups).astype(np.int64)

    # Event statistics of the Good points.
    g, v = group[good], values[good]
    count = np.bincount(g, minlength=groups).astype(np.int64)
    total = _sums(g, v, groups)
    filled = count > 0
    avg = np.divide(total, count, out=np.zeros(groups), where=filled)
    m2 = _sums(g, (v - avg[g]) ** 2, groups)
    lo, hi, first, last = (np.full(groups, np.nan) for _ in range(4))
    if filled.any():
        at_first = np.searchsorted(g, np.arange(groups))[filled]
        lo[filled] = np.minimum.reduceat(v, at_first)
        hi[filled] = np.maximum.reduceat(v, at_first)
        first[filled] = v[at_first]
        last[filled] = v[at_first + count[filled] - 1]
    return series[starts], Rows(
        bucket=bucket[starts],
        count=count,
        sum=total,
        m2=m2,
        min=lo,
        max=hi,
        first=first,
        last=last,
        head_ts=ts[starts],
        head_value=values[starts],
        head_good=good[starts],
        tail_ts=ts[ends],
        tail_value=values[ends],
        tail_good=good[ends],
        area=area,
        good_us=good_us,
    )


def combine(older: Rows, newer: Rows, *, step: bool | Array) -> Rows:
    """Row by row, the summary of `older`'s points followed by `newer`'s (the same buckets;
    every point of `newer` after every point of `older`): how an append joins its bucket."""
    n = older.count + newer.count
    mean_old = np.divide(older.sum, older.count, out=np.zeros(len(n)), where=older.count > 0)
    mean_new = np.divide(newer.sum, newer.count, out=np.zeros(len(n)), where=newer.count > 0)
    delta = mean_new - mean_old
    # Chan et al.'s pairwise update: exact in the mean, stable in the squared deviations.
    weight = np.divide(older.count * newer.count, n, out=np.zeros(len(n)), where=n > 0)
    m2 = older.m2 + newer.m2 + delta * delta * weight
    area, good_us = _gap(older.tail_ts, older.tail_value, older.tail_good,
                         newer.head_ts, newer.head_value, newer.head_good, step=step)  # fmt: skip
    has_old, has_new = older.count > 0, newer.count > 0
    return Rows(
        bucket=older.bucket,
        count=n,
        sum=older.sum + newer.sum,
        m2=m2,
        min=np.fmin(older.min, newer.min),
        max=np.fmax(older.max, newer.max),
        first=np.where(has_old, older.first, newer.first),
        last=np.where(has_new, newer.last, older.last),
        head_ts=older.head_ts,
        head_value=older.head_value,
        head_good=older.head_good,
        tail_ts=newer.tail_ts,
        tail_value=newer.tail_value,
        tail_good=newer.tail_good,
        area=older.area + newer.area + area,
        good_us=older.good_us + newer.good_us + good_us,
    )


def _sums(at: Array, weights: Array, n: int) -> Array:
    """Sums of `weights` per group, as float64 even when there is nothing to sum (NumPy's
    bincount of no weights is an integer array, which would truncate what is added to it)."""
    return np.bincount(at, weights=weights, minlength=n).astype(np.float64, copy=False)


def _gap(
    t0: Array, v0: Array, good0: Array, t1: Array, v1: Array, good1: Array, *, step: bool | Array
) -> tuple[Array, Array]:
    """Integral and valid time of the timeline segments from (t0, v0) to (t1, v1)."""
    duration = np.where(good0, t1 - t0, 0)
    ramp = good0 & good1 & ~np.asarray(step, bool)
    mean = np.where(ramp, (v0 + v1) * 0.5, v0)
    return np.where(good0, mean * duration, 0.0), duration.astype(np.int64)


def merge(
    rows: Rows,
    before: Points,
    after: Points,
    edges: Array,
    names: Sequence[str],
    *,
    step: bool,
    data_end_us: int | None = None,
    total_unit: str = "s",
) -> dict[str, Column]:
    """The aggregates `names` per bucket of `edges` (each edge on the rows' grid) from the rows
    inside [edges[0], edges[-1]), the last point before the range (`before`, at most one) and
    the first after it (`after`); the same answers as `aggregates.aggregate` over the points.

    No row may have a point after `data_end_us`: such a range is summarized from raw points.
    """
    unknown = set(names) - ANSWERABLE
    if unknown:
        raise ValueError(f"rollups cannot answer {', '.join(sorted(unknown))}")
    if data_end_us is not None and len(rows) and int(rows.tail_ts[-1]) > data_end_us:
        raise ValueError("a rollup row holds points after the end of the known data")
    buckets = len(edges) - 1
    at = np.searchsorted(edges, rows.bucket, side="right") - 1
    out: dict[str, Column] = {}
    wanted = set(names)
    if wanted & set(aggregates.EVENT):
        out.update(_event(rows, at, buckets, wanted))
    if wanted & set(aggregates.TIME_WEIGHTED):
        area, good_us = _time_weighted(rows, at, before, after, edges, step, data_end_us)
        if "percent_good" in wanted:
            out["percent_good"] = (good_us / np.diff(edges) * 100.0).tolist()
        if "twa" in wanted:
            out["twa"] = [
                float(a / g) if g > 0 else None for a, g in zip(area, good_us, strict=True)
            ]
        if "total" in wanted:
            per = aggregates.TOTAL_UNITS_S[total_unit] * 1e6
            out["total"] = [
                float(a / per) if g > 0 else None for a, g in zip(area, good_us, strict=True)
            ]
    return {name: out[name] for name in names}


def _time_weighted(
    rows: Rows,
    at: Array,
    before: Points,
    after: Points,
    edges: Array,
    step: bool,
    data_end_us: int | None,
) -> tuple[Array, Array]:
    """Integral and valid time per bucket: the rows' own, plus the timeline between them."""
    buckets = len(edges) - 1
    # The skeleton of the timeline: the point before, each row's head and tail, the point after.
    two = rows.tail_ts != rows.head_ts
    n = len(before) + len(rows) + int(np.count_nonzero(two)) + len(after)
    width = 1 + two.astype(np.int64)  # skeleton points per row
    head_at = len(before) + np.cumsum(width) - width
    tail_at = head_at[two] + 1
    ts = np.empty(n, np.int64)
    values = np.empty(n, np.float64)
    good = np.empty(n, bool)
    inner = np.zeros(n, bool)  # the segment from a row's head to its tail: in the row already
    for col, b, h, t, a in (
        (ts, before.ts, rows.head_ts, rows.tail_ts, after.ts),
        (values, before.values, rows.head_value, rows.tail_value, after.values),
        (good, before.good, rows.head_good, rows.tail_good, after.good),
    ):
        col[: len(before)] = b
        col[head_at] = h
        col[tail_at] = t[two]
        col[n - len(after) :] = a
    inner[head_at[two]] = True
    skeleton = Points(ts, values, good)
    p = timeline.pieces(skeleton, edges, step=step, data_end_us=data_end_us)
    between = ~inner[p.seg]
    duration = p.duration[between]
    mean = (p.value_left[between] + p.value_right[between]) * 0.5
    area = _sums(p.bucket[between], mean * duration, buckets) + _sums(at, rows.area, buckets)
    good_us = _sums(p.bucket[between], duration, buckets) + _sums(at, rows.good_us, buckets)
    return area, good_us


def _event(rows: Rows, at: Array, buckets: int, wanted: set[str]) -> dict[str, Column]:
    has = rows.count > 0
    rows, at = rows.take(has), at[has]
    if not len(rows):
        none: Column = [None] * buckets
        zeros: Column = [0] * buckets
        return {
            name: (zeros if name == "count" else none) for name in wanted & set(aggregates.EVENT)
        }
    count = np.bincount(at, weights=rows.count, minlength=buckets).astype(np.int64)
    filled = count > 0
    out: dict[str, Column] = {}
    if "count" in wanted:
        out["count"] = count.tolist()
    first_row = np.searchsorted(at, np.arange(buckets))
    last_row = np.searchsorted(at, np.arange(buckets), side="right") - 1
    if "first" in wanted:
        out["first"] = aggregates.floats(rows.first[np.minimum(first_row, len(rows) - 1)], filled)
    if "last" in wanted:
        out["last"] = aggregates.floats(rows.last[last_row], filled)
    if wanted & {"min", "max", "range"}:
        lo = np.full(buckets, np.nan)
        hi = np.full(buckets, np.nan)
        if filled.any():
            lo[filled] = np.minimum.reduceat(rows.min, first_row[filled])
            hi[filled] = np.maximum.reduceat(rows.max, first_row[filled])
        if "min" in wanted:
            out["min"] = aggregates.floats(lo, filled)
        if "max" in wanted:
            out["max"] = aggregates.floats(hi, filled)
        if "range" in wanted:
            out["range"] = aggregates.floats(hi - lo, filled)
    if wanted & {"avg", "stddev"}:
        sums = np.bincount(at, weights=rows.sum, minlength=buckets)
        mean = np.divide(sums, count, out=np.full(buckets, np.nan), where=filled)
        if "avg" in wanted:
            out["avg"] = aggregates.floats(mean, filled)
        if "stddev" in wanted:
            dev = rows.sum / rows.count - mean[at]
            m2 = np.bincount(at, weights=rows.m2 + rows.count * dev * dev, minlength=buckets)
            several = count > 1
            var = np.divide(m2, count - 1, out=np.full(buckets, np.nan), where=several)
            out["stddev"] = aggregates.floats(np.sqrt(np.maximum(var, 0.0)), several)
    return out
