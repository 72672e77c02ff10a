"""Counter tags (good, scrap, total produced) turned into increments, and increments summed into
time buckets. Pure and vectorised with NumPy.

A machine's counter only counts up, until it is reset to zero (a new order, a power cycle) or
wraps at the end of its range (a 16-bit register after 65,535). Only its increases are
production: `counter_deltas` turns a counter's samples into increments by the rules stated
there, the same rules `kiln.production.taxonomy.CounterDef` describes, and `sum_by_bins` sums
them into hours, shifts or days.

Times are int64 microseconds since the epoch (`kiln.core.clock`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Times = npt.NDArray[np.int64]
Amounts = npt.NDArray[np.float64]


def sorted_unique(times: Times, values: Amounts) -> tuple[Times, Amounts]:
    """Sorted by time, stably (samples at one instant keep their order), without exact
    duplicates: a sample delivered twice (a retry, an overlapping backfill) is one sample."""
    if len(times) > 1 and np.any(times[1:] < times[:-1]):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    if len(times) > 1 and np.any(times[1:] == times[:-1]):
        # Duplicates need not be neighbours (t=5 v=1, t=5 v=2, t=5 v=1): group by value within
        # each instant, keep the first of each group, then restore the time-then-input order.
        position = np.arange(len(times))
        order = np.lexsort((position, values, times))
        t, v = times[order], values[order]
        repeat = np.zeros(len(times), dtype=bool)
        repeat[1:] = (t[1:] == t[:-1]) & (v[1:] == v[:-1])
        keep = np.sort(order[~repeat])
        times, values = times[keep], values[keep]
    return times, values


def _increments(before: Amounts, after: Amounts, rollover: int | None) -> Amounts:
    rise = after - before
    # A drop is a reset to zero and counting up again: everything the counter shows is new.
    out = np.where(rise >= 0, rise, after)
    if rollover is not None:
        # A drop by more than half the range is a wrap: up to the end of the range, then on
        # from zero. A smaller drop stays a reset (a wrap that large means a lost sample).
        wrapped = (rise < 0) & (-rise > rollover / 2)
        out = np.where(wrapped, after + rollover - before, out)
    return out


def counter_deltas(
    times_us: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    previous: tuple[int, float] | None = None,
    rollover: int | None = None,
) -> tuple[Times, Amounts]:
    """The increments of a counter, each at the time of the later of its two samples.

    From one sample to the next: a rise counts as its size; a drop counts as the new value (a
    reset to zero, then counting up), or with `rollover` R and a drop of more than R/2 as
    `value + R - previous value` (a wrap; R = 65536 for a 16-bit counter).

    Input is sorted by time here if it is not (stably: samples at one instant keep their
    order), and a sample repeated with the same time and value counts once. NaN and infinite
    values are bad-quality samples and are skipped: the next good sample follows the last good
    one. `previous` is the last sample before the window, so the window's first sample has a
    predecessor; without it (or with a NaN value) the first sample only starts the count.

    Returns one row per sample that has a predecessor: (times_us int64, deltas float64).
    """
    times = np.asarray(times_us, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if times.ndim != 1 or times.shape != vals.shape:
        raise ValueError(
            f"times_us {times.shape} and values {vals.shape} must be 1-d arrays of one length"
        )
    if rollover is not None and rollover <= 1:
        raise ValueError(f"rollover {rollover} must be the counter's range, e.g. 65536 (16 bit)")
    good = np.isfinite(vals)
    times, vals = sorted_unique(times[good], vals[good])
    if previous is None or not np.isfinite(previous[1]):
        return times[1:], _increments(vals[:-1], vals[1:], rollover)
    prev_t, prev_v = int(previous[0]), float(previous[1])
    if len(times) and times[0] < prev_t:
        raise ValueError(
            f"a sample at {int(times[0])} µs lies before `previous` at {prev_t} µs: `previous` "
            "must be the last sample before the window"
        )
    again = (times == prev_t) & (vals == prev_v)  # the previous sample read once more
    times, vals = times[~again], vals[~again]
    before = np.concatenate(([prev_v], vals[:-1]))[: len(vals)]  # empty window: no rows
    return times, _increments(before, vals, rollover)


def sum_by_bins(
    times_us: npt.ArrayLike, amounts: npt.ArrayLike, edges_us: npt.ArrayLike
) -> Amounts:
    """`amounts` summed into the half-open bins `[edges[i], edges[i+1])`: len(edges) - 1 sums.

    `edges_us` must be sorted (equal neighbours make an empty bin). Amounts at times outside
    `[edges[0], edges[-1])` are dropped.
    """
    times = np.asarray(times_us, dtype=np.int64)
    amts = np.asarray(amounts, dtype=np.float64)
    edges = np.asarray(edges_us, dtype=np.int64)
    if times.ndim != 1 or times.shape != amts.shape:
        raise ValueError(
            f"times_us {times.shape} and amounts {amts.shape} must be 1-d arrays of one length"
        )
    if edges.ndim != 1:
        raise ValueError(f"edges_us must be a 1-d array, got shape {edges.shape}")
    if np.any(edges[1:] < edges[:-1]):
        raise ValueError("edges_us must be sorted ascending: they are the bins' boundaries")
    bins = max(len(edges) - 1, 0)
    # side="right": a time equal to an edge belongs to the bin that starts there.
    index = np.searchsorted(edges, times, side="right") - 1
    inside = (index >= 0) & (index < bins)
    return np.bincount(index[inside], weights=amts[inside], minlength=bins).astype(np.float64)
