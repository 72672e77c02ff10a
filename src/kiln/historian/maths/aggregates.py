"""Aggregates per bucket over one tag's timeline (see `timeline` for what a value is when).

Event-weighted aggregates use the Good points stored inside the bucket: `avg` (their simple
mean), `min`, `max`, `first`, `last`, `count`, `range` (max - min) and `stddev` (sample
standard deviation). Time-weighted ones use the value at every instant, interpolated or
stepped, so a bucket without a stored point still has one: `twa` (the time-weighted average
over the bucket's valid time), `total` (the integral, in the tag's unit times `total_unit`)
and `percent_good` (valid time over the bucket's length). For discrete tags, `durations` gives
the seconds spent in each value and `transitions` how many points changed the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kiln.historian.maths import timeline
from kiln.historian.maths.timeline import Array, Points

EVENT = ("avg", "min", "max", "first", "last", "count", "range", "stddev")
TIME_WEIGHTED = ("twa", "total", "percent_good")
DISCRETE = ("durations", "transitions")
AGGREGATES = EVENT + TIME_WEIGHTED + DISCRETE
NUMERIC_ONLY = frozenset({"avg", "min", "max", "range", "stddev", "twa", "total"})

# `total` integrates over time: a flow in m3/h totalled per hour gives m3.
TOTAL_UNITS_S = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86_400.0}

Column = list[Any]


def check_aggregates(
    names: Sequence[str] | str, *, numeric: bool = True, allowed: Sequence[str] = AGGREGATES
) -> list[str]:
    """The requested aggregates (a sequence, or one comma-separated string), de-duplicated;
    ValueError naming the `allowed` ones (a part of `AGGREGATES`, such as `EVENT`) otherwise."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ValueError(
            f"unknown aggregate(s) {', '.join(map(repr, unknown)) or '(none given)'}: "
            f"choose from {', '.join(allowed)}"
        )
    if not numeric:
        bad = [n for n in names if n in NUMERIC_ONLY]
        if bad:
            raise ValueError(
                f"{', '.join(bad)} need a numeric tag; a string tag has first, last, count, "
                "percent_good, durations and transitions"
            )
    return list(dict.fromkeys(names))


def aggregate(
    points: Points,
    edges: Array,
    names: Sequence[str],
    *,
    step: bool,
    data_end_us: int | None = None,
    total_unit: str = "s",
) -> dict[str, Column]:
    """Each aggregate of `names` per bucket [edges[k], edges[k+1]); None where undefined."""
    buckets = len(edges) - 1
    out: dict[str, Column] = {}
    wanted = set(names)
    if wanted & set(EVENT):
        out.update(_event(points, edges, wanted))
    if wanted & (set(TIME_WEIGHTED) | {"durations"}):
        p = timeline.pieces(points, edges, step=step, data_end_us=data_end_us)
        good_us = timeline.good_duration(p, buckets)
        if "percent_good" in wanted:
            out["percent_good"] = (good_us / np.diff(edges) * 100.0).tolist()
        if wanted & {"twa", "total"}:
            integral = timeline.area(p, buckets)
            if "twa" in wanted:
                out["twa"] = [
                    float(a / g) if g > 0 else None for a, g in zip(integral, good_us, strict=True)
                ]
            if "total" in wanted:
                per = TOTAL_UNITS_S[total_unit] * 1e6
                out["total"] = [
                    float(a / per) if g > 0 else None
                    for a, g in zip(integral, good_us, strict=True)
                ]
        if "durations" in wanted:
            out["durations"] = [
                {_key(k): us / 1e6 for k, us in d.items()}
                for d in timeline.state_durations(p, points, buckets)
            ]
    if "transitions" in wanted:
        out["transitions"] = timeline.transitions(points, edges).tolist()
    return {name: out[name] for name in names}


def _event(points: Points, edges: Array, wanted: set[str]) -> dict[str, Column]:
    return event_many([points], edges, wanted)[0]


def event_many(tags: Sequence[Points], edges: Array, wanted: set[str]) -> list[dict[str, Column]]:
    """The event aggregates of several tags (all numeric, or all not) on the same buckets, in
    one pass: per-tag NumPy calls would cost more than the arithmetic."""
    buckets = len(edges) - 1
    n = len(tags)
    numeric = all(p.numeric for p in tags)
    parts_ts, parts_v, parts_tag = [], [], []
    for i, p in enumerate(tags):
        inside = p.good & (p.ts >= edges[0]) & (p.ts < edges[-1])
        parts_ts.append(p.ts[inside])
        parts_v.append(p.values[inside])
        parts_tag.append(np.full(int(np.count_nonzero(inside)), i, np.int64))
    ts = np.concatenate(parts_ts) if n else np.empty(0, np.int64)
    values = np.concatenate(parts_v) if n else np.empty(0)
    tag = np.concatenate(parts_tag) if n else np.empty(0, np.int64)
    # One key per (tag, bucket), ascending: tags in order, each tag's points in time order.
    key = tag * buckets + np.searchsorted(edges, ts, side="right") - 1
    cells = n * buckets
    counts = np.bincount(key, minlength=cells)
    starts = np.searchsorted(key, np.arange(cells), side="left")
    filled = counts > 0
    cols: dict[str, Array] = {}
    defined: dict[str, Array] = {}
    if "count" in wanted:
        cols["count"], defined["count"] = counts, np.ones(cells, bool)
    if "first" in wanted:
        cols["first"], defined["first"] = values[np.minimum(starts, len(values) - 1)] if len(
            values) else np.zeros(cells), filled  # fmt: skip
    if "last" in wanted:
        cols["last"], defined["last"] = values[np.maximum(starts + counts - 1, 0)] if len(
            values) else np.zeros(cells), filled  # fmt: skip
    if numeric and wanted & {"min", "max", "range"}:
        lo = np.full(cells, np.nan)
        hi = np.full(cells, np.nan)
        if filled.any():
            lo[filled] = np.minimum.reduceat(values, starts[filled])
            hi[filled] = np.maximum.reduceat(values, starts[filled])
        for name, col in (("min", lo), ("max", hi), ("range", hi - lo)):
            if name in wanted:
                cols[name], defined[name] = col, filled
    if numeric and wanted & {"avg", "stddev"}:
        sums = np.bincount(key, weights=values, minlength=cells)
        mean = np.divide(sums, counts, out=np.full(cells, np.nan), where=filled)
        if "avg" in wanted:
            cols["avg"], defined["avg"] = mean, filled
        if "stddev" in wanted:
            dev = values - mean[key]  # two-pass: exact for values far from zero
            ss = np.bincount(key, weights=dev * dev, minlength=cells)
            several = counts > 1
            var = np.divide(ss, counts - 1, out=np.full(cells, np.nan), where=several)
            cols["stddev"], defined["stddev"] = np.sqrt(var), several
    out: list[dict[str, Column]] = [{} for _ in range(n)]
    for name, col in cols.items():
        rows = _lists(col.reshape(n, buckets), defined[name].reshape(n, buckets))
        for i in range(n):
            out[i][name] = rows[i]
    return out


def _lists(values: Array, defined: Array) -> list[Column]:
    """Rows of Python values, None where not defined (one conversion for all the tags)."""
    if values.dtype != object:
        values = values.astype(object)
    values[~defined] = None
    rows: list[Column] = values.tolist()
    return rows


def floats(values: Array, defined: Array) -> Column:
    return [float(v) if d else None for v, d in zip(values, defined, strict=True)]


def plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _key(state: object) -> str:
    """A state as a JSON object key: integers without a '.0'."""
    if isinstance(state, float) and state.is_integer():
        return str(int(state))
    return str(state)
