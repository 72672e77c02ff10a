"""What a tag's value was at every instant, from its stored points: the historian's semantics.

A stored point holds from its timestamp until the next point. Between two Good points an
analog tag ramps linearly (PI's and Ignition's interpolation); a discrete one (integers,
booleans, states, strings, or an analog tag marked `step`) keeps the earlier value until the
next point, so a state or a setpoint is never smoothed into a ramp. A point of Bad quality
means "no valid value" until the next point: that time is left out of every time-weighted
figure and counts against percent good. After the last point the value holds until
`data_end_us` (the query's end, or now if sooner); nothing is known after that.

Everything here is pure NumPy over one tag's points, so both storage backends give the same
answers: they only have to fetch the points, with the last one before the range, to start
the timeline, and the first one after it, to end the ramp into the range's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


@dataclass(frozen=True, slots=True)
class Points:
    """One tag's points in time order (unique timestamps, microseconds).

    `values` is float64 for numeric tags (booleans as 0/1) and object for strings; `good` says
    which points are of Good quality.
    """

    ts: Array
    values: Array
    good: Array

    def __post_init__(self) -> None:
        if not (len(self.ts) == len(self.values) == len(self.good)):
            raise ValueError("Points columns differ in length")

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def numeric(self) -> bool:
        return self.values.dtype != object


@dataclass(frozen=True, slots=True)
class Sampled:
    """Values at given times; `good` False where there was no valid value."""

    ts: Array
    values: Array
    good: Array


def ramps(points: Points, step: bool) -> Array:
    """For each point: does its value ramp linearly to the next one?"""
    n = len(points)
    ramp = np.zeros(n, dtype=bool)
    if step or not points.numeric or n < 2:
        return ramp
    ramp[:-1] = points.good[:-1] & points.good[1:]
    return ramp


def _value_in_segment(points: Points, ramp: Array, seg: Array, t: Array) -> Array:
    """The value of segment `seg` (the point it starts at) at times `t` inside it."""
    values: Array = points.values[seg]
    if not ramp.any():
        return values
    ramping: Array = ramp[seg]
    if not ramping.any():
        return values
    out: Array = values.astype(np.float64, copy=True)
    i = seg[ramping]
    t0, t1 = points.ts[i], points.ts[i + 1]
    v0, v1 = points.values[i], points.values[i + 1]
    out[ramping] = v0 + (v1 - v0) * ((t[ramping] - t0) / (t1 - t0))
    return out


def sample(
    points: Points,
    times: Array,
    *,
    step: bool,
    interpolate: bool = True,
    data_end_us: int | None = None,
) -> Sampled:
    """The value at each of `times`: interpolated between Good points (unless `step` or not
    `interpolate`: the previous point's value). No value before the first point, after
    `data_end_us`, or while the last point before the time is Bad."""
    times = np.asarray(times, dtype=np.int64)
    seg = np.searchsorted(points.ts, times, side="right") - 1
    known = seg >= 0
    if data_end_us is not None:
        known &= times <= data_end_us
    safe = np.where(known, seg, 0)
    good = known & (points.good[safe] if len(points) else np.zeros(len(times), dtype=bool))
    if not len(points):
        empty = np.full(len(times), np.nan)
        return Sampled(times, empty, good)
    ramp = ramps(points, step or not interpolate)
    values = _value_in_segment(points, ramp, safe, times)
    missing = np.nan if points.numeric else None
    values = np.where(good, values, np.array(missing, dtype=values.dtype))
    return Sampled(times, values, good)


@dataclass(frozen=True, slots=True)
class Pieces:
    """The timeline cut at every point and every bucket edge: each piece lies in one segment
    and one bucket. Only valid pieces (a Good segment, inside the known data) are kept."""

    bucket: Array  # index of the bucket each piece is in
    left: Array  # piece start, µs
    right: Array  # piece end, µs
    seg: Array  # index of the point whose segment it is
    value_left: Array  # value at `left`
    value_right: Array  # value approaching `right` (the same as value_left when stepped)

    @property
    def duration(self) -> Array:
        duration: Array = self.right - self.left
        return duration


def pieces(points: Points, edges: Array, *, step: bool, data_end_us: int | None = None) -> Pieces:
    """Cut the timeline over [edges[0], edges[-1]) into pieces (see `Pieces`)."""
    lo, hi = int(edges[0]), int(edges[-1])
    if data_end_us is not None:
        hi_known = min(hi, data_end_us)
    else:
        hi_known = hi
    inside = points.ts[(points.ts > lo) & (points.ts < hi)]
    cuts = np.union1d(edges, inside)
    if lo < hi_known < hi:
        cuts = np.union1d(cuts, [hi_known])
    left, right = cuts[:-1], cuts[1:]
    seg = np.searchsorted(points.ts, left, side="right") - 1
    valid = (seg >= 0) & (left < hi_known)
    safe = np.where(valid, seg, 0)
    if len(points):
        valid &= points.good[safe]
    left, right, seg = left[valid], right[valid], seg[valid]
    bucket = np.searchsorted(edges, left, side="right") - 1
    ramp = ramps(points, step)
    value_left = _value_in_segment(points, ramp, seg, left)
    value_right = _value_in_segment(points, ramp, seg, right) if ramp.any() else value_left
    return Pieces(bucket, left, right, seg, value_left, value_right)


def good_duration(p: Pieces, buckets: int) -> Array:
    """Microseconds of valid data per bucket."""
    return np.bincount(p.bucket, weights=p.duration, minlength=buckets)


def area(p: Pieces, buckets: int) -> Array:
    """The integral of the value over valid time per bucket, in value x microseconds."""
    weights = (p.value_left + p.value_right) * 0.5 * p.duration
    return np.bincount(p.bucket, weights=weights, minlength=buckets)


def state_durations(p: Pieces, points: Points, buckets: int) -> list[dict[object, int]]:
    """Microseconds spent in each value per bucket (for discrete tags)."""
    out: list[dict[object, int]] = [{} for _ in range(buckets)]
    if not len(p.bucket):
        return out
    states = points.values[p.seg]
    codes, inverse = np.unique(states, return_inverse=True)
    key = p.bucket * len(codes) + inverse
    totals = np.bincount(key, weights=p.duration, minlength=buckets * len(codes))
    for k in np.flatnonzero(totals):
        bucket, code = divmod(int(k), len(codes))
        out[bucket][_plain(codes[code])] = int(totals[k])
    return out


def transitions(points: Points, edges: Array) -> Array:
    """Per bucket, how many Good points in it changed the value of the Good point before."""
    buckets = len(edges) - 1
    good_ts = points.ts[points.good]
    good_values = points.values[points.good]
    if len(good_ts) < 2:
        return np.zeros(buckets, dtype=np.int64)
    changed = good_values[1:] != good_values[:-1]
    at = good_ts[1:][changed]
    at = at[(at >= edges[0]) & (at < edges[-1])]
    bucket = np.searchsorted(edges, at, side="right") - 1
    return np.bincount(bucket, minlength=buckets).astype(np.int64)


def _plain(value: object) -> object:
    """NumPy scalars as Python ones (JSON, dictionary keys that compare as users expect)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
