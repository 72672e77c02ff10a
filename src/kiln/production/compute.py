"""OEE of one asset over buckets of time (hours, shifts, days, weeks, orders), from its recorded
states, the shift calendar, operator reason records and its counts. Pure and vectorised.

The time line is cut at every instant where anything changes: a state row, a shift or break
boundary, a bucket edge, an operator record's edge. Each resulting segment has one state
category, lies in or out of a shift, in or out of planned down time, and in one bucket, so the
time elements are sums of segment durations (`np.bincount`), and no instant is counted twice.

Per segment, in this order:
1. the machine's category is the category of the latest state row at or before it; before the
   first row, and after `data_end_us` (no data yet), it is `unknown`; before `first_data_us`
   (nothing was ever recorded of the asset) the time is left out altogether, calendar time
   included, as if the bucket started there;
2. an unplanned stop (a run of consecutive rows in unplanned categories) shorter than the
   micro-stop threshold is a `micro_stop`;
3. an operator's reason record replaces the category and reason of stop time (never of running
   time: a machine that reports running was running, whatever was typed later);
4. outside every shift only running and setup count, and they extend the planned operation time
   (the plant produced although nothing was planned); stops there are shown, not charged;
5. inside planned down time (a break, planned maintenance), running counts as production and any
   other state as planned down time;
6. otherwise the category's ISO 22400-2 element (`taxonomy.ELEMENT`).

Counts are increments at instants (`kiln.production.counts`); each is charged to the bucket its
instant falls in and, for the ideal run time, multiplied by the ideal cycle time then in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kiln.production.chunks import SAMPLE_DTYPE, STATE_DTYPE  # noqa: F401 (documented rows)
from kiln.production.intervals import Interval
from kiln.production.oee import OeeFigures
from kiln.production.taxonomy import (
    CATEGORY_BY_CODE,
    CATEGORY_CODES,
    ELEMENT,
    LOSSES,
    UNPLANNED,
    Category,
    Element,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_UNKNOWN = CATEGORY_CODES[Category.UNKNOWN]
_RUNNING = CATEGORY_CODES[Category.RUNNING]
_SETUP = CATEGORY_CODES[Category.SETUP]
_MICRO = CATEGORY_CODES[Category.MICRO_STOP]
_N_CAT = len(CATEGORY_BY_CODE)
_UNPLANNED_CODES = np.array([CATEGORY_CODES[c] for c in UNPLANNED], dtype=np.int16)
_LOSS = np.zeros(_N_CAT, dtype=bool)
_LOSS[[CATEGORY_CODES[c] for c in LOSSES | {Category.MICRO_STOP}]] = True

# Element slots of the per-bucket accumulator.
_E = {e: i for i, e in enumerate(Element)}
_POT = len(_E)  # planned operation time
_SLOTS = _POT + 1
_ELEMENT_SLOT = np.array([_E[ELEMENT[c]] for c in CATEGORY_BY_CODE], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Planned:
    """Planned down time inside a shift (a break, planned maintenance)."""

    interval: Interval
    maintenance: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's reason for stop time, already resolved so overrides never overlap."""

    interval: Interval
    category: Category
    reason: int  # reason dictionary id


@dataclass(frozen=True, slots=True)
class Counts:
    """Increments at instants (sorted by time): good and scrap units; `total` when the machine
    counts all units and (optionally) scrap, in which case good = total - scrap."""

    good_t: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    good: F64 = field(default_factory=lambda: np.empty(0, np.float64))
    scrap_t: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    scrap: F64 = field(default_factory=lambda: np.empty(0, np.float64))
    total_t: I64 | None = None
    total: F64 | None = None


@dataclass(frozen=True, slots=True)
class IdealCycle:
    """The ideal cycle time in force at each instant: an order's product's, else the cycle-time
    tag's latest sample, else the default; None where none is known."""

    default_s: float | None = None
    tag: npt.NDArray[np.void] | None = None  # SAMPLE_DTYPE, sorted, with carry-in
    orders: Sequence[tuple[Interval, float | None]] = ()  # running orders and their cycle

    def at(self, times: I64) -> F64:
        out = np.full(len(times), np.nan if self.default_s is None else self.default_s)
        if self.tag is not None and len(self.tag):
            idx = np.searchsorted(self.tag["t"], times, side="right") - 1
            known = idx >= 0
            vals = self.tag["v"][np.where(known, idx, 0)]
            use = known & np.isfinite(vals) & (vals > 0)
            out[use] = vals[use]
        for interval, cycle in self.orders:
            if cycle is None:
                continue
            inside = (times >= interval.start_us) & (times < interval.end_us)
            out[inside] = cycle
        return out


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    interval: Interval


@dataclass(slots=True)
class BucketResult:
    """One bucket's figures, and its losses by (category, reason id): [µs, number of stops]."""

    key: str
    interval: Interval
    figures: OeeFigures
    losses: dict[tuple[Category, int], list[int]] = field(default_factory=dict)
    outside_shift_stop_us: int = 0  # stops outside every shift: shown, never charged
    units_without_ideal: float = 0.0  # produced while no ideal cycle time was known


@dataclass(frozen=True, slots=True)
class AssetInputs:
    states: npt.NDArray[np.void]  # STATE_DTYPE, sorted, with the row carried into the window
    data_end_us: int  # the latest row holds until here (now, for a live window)
    shifts: Sequence[Interval] = ()
    planned: Sequence[Planned] = ()
    overrides: Sequence[Override] = ()
    micro_stop_us: int = 0
    counts: Counts = field(default_factory=Counts)
    ideal: IdealCycle = field(default_factory=IdealCycle)
    # Before this instant nothing was recorded of the asset (it was not connected yet): that
    # time is left out of every bucket, calendar time included. None: recorded before.
    first_data_us: int | None = None
    # Rows were read up to here (past the window, by the longest micro-stop): the last row
    # held at least until then. None: until the window's end.
    known_until_us: int | None = None


def _sorted_starts_ends(intervals: Sequence[Interval]) -> tuple[I64, I64]:
    ivs = sorted((iv for iv in intervals if not iv.empty), key=lambda iv: iv.start_us)
    starts = np.fromiter((iv.start_us for iv in ivs), np.int64, len(ivs))
    ends = np.fromiter((iv.end_us for iv in ivs), np.int64, len(ivs))
    return starts, ends


def _lookup(starts: I64, ends: I64, at: I64) -> npt.NDArray[np.intp]:
    """Index of the (non-overlapping) interval holding each instant, -1 where none does."""
    idx = np.searchsorted(starts, at, side="right") - 1
    inside = idx >= 0
    inside[inside] = at[inside] < ends[idx[inside]]
    return np.where(inside, idx, -1)


def _state_categories(inputs: AssetInputs, end_us: int) -> tuple[I64, npt.NDArray[np.int16], I64]:
    """The rows' times, categories with micro-stops applied, and reasons; plus a final
    `unknown` row at `data_end_us` when the data ends inside the window."""
    st = inputs.states
    t = st["t"].astype(np.int64)
    cat = st["category"].astype(np.int16)
    reason = st["reason"].astype(np.int64)
    if len(t) == 0:  # no state ever recorded: unknown throughout
        return (
            np.array([np.iinfo(np.int64).min]),
            np.array([_UNKNOWN], np.int16),
            np.zeros(1, np.int64),
        )
    if inputs.data_end_us < end_us and (len(t) == 0 or t[-1] < inputs.data_end_us):
        t = np.append(t, inputs.data_end_us)
        cat = np.append(cat, np.int16(_UNKNOWN))
        reason = np.append(reason, 0)
    if inputs.micro_stop_us > 0 and len(t) > 1:
        # The last row lasts to the end of what was read (rows are read some way past the
        # window for this), so a stop running past the window is judged by its length.
        ends = np.append(t[1:], max(end_us, int(t[-1]), inputs.known_until_us or end_us))
        unplanned = np.isin(cat, _UNPLANNED_CODES)
        if inputs.data_end_us < end_us:
            unplanned[-1] = False  # missing data is no stop anyone could have entered
        # Runs of consecutive unplanned rows: a new run starts at each unplanned row whose
        # predecessor was not unplanned.
        starts = unplanned & ~np.concatenate(([False], unplanned[:-1]))
        run = np.cumsum(starts) - 1
        run_len = np.bincount(run[unplanned], weights=(ends - t)[unplanned])
        short = np.zeros(len(t), dtype=bool)
        short[unplanned] = run_len[run[unplanned]] < inputs.micro_stop_us
        cat = np.where(short, np.int16(_MICRO), cat)
    return t, cat, reason


def compute(inputs: AssetInputs, buckets: Sequence[Bucket]) -> list[BucketResult]:
    """The figures of each bucket (buckets may leave gaps, not overlap)."""
    if not buckets:
        return []
    # Results come sorted by start, as `_sorted_starts_ends` orders the edges.
    ordered = sorted(
        (b for b in buckets if not b.interval.empty), key=lambda b: b.interval.start_us
    )
    b_starts, b_ends = _sorted_starts_ends([b.interval for b in ordered])
    if not ordered:
        return []
    lo, hi = int(b_starts.min()), int(b_ends.max())
    t, cat, reason = _state_categories(inputs, hi)
    s_starts, s_ends = _sorted_starts_ends(inputs.shifts)
    planned = sorted(inputs.planned, key=lambda p: p.interval.start_us)
    p_starts, p_ends = _sorted_starts_ends([p.interval for p in planned])
    p_maint = np.array([p.maintenance for p in planned if not p.interval.empty], dtype=bool)
    overrides = sorted(inputs.overrides, key=lambda o: o.interval.start_us)
    o_starts, o_ends = _sorted_starts_ends([o.interval for o in overrides])
    kept = [o for o in overrides if not o.interval.empty]
    o_cat = np.array([CATEGORY_CODES[o.category] for o in kept], dtype=np.int16)
    o_reason = np.array([o.reason for o in kept], dtype=np.int64)

    first = lo if inputs.first_data_us is None else max(lo, inputs.first_data_us)
    cuts = np.concatenate(
        (t, s_starts, s_ends, p_starts, p_ends, o_starts, o_ends, b_starts, b_ends, [lo, hi, first])
    )
    # Sorted, then neighbours that repeat dropped: what np.unique does, without its overhead
    # (it was a tenth of a year's recompute).
    cuts = np.sort(cuts[(cuts >= lo) & (cuts <= hi)])
    cuts = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
    seg_start, seg_end = cuts[:-1], cuts[1:]
    dur = seg_end - seg_start

    row = np.searchsorted(t, seg_start, side="right") - 1
    has_row = row >= 0
    seg_cat = np.where(has_row, cat[np.where(has_row, row, 0)], np.int16(_UNKNOWN))
    seg_reason = np.where(has_row, reason[np.where(has_row, row, 0)], 0)
    if kept:
        oi = _lookup(o_starts, o_ends, seg_start)
        use = (oi >= 0) & (seg_cat != _RUNNING)
        seg_cat = np.where(use, o_cat[np.where(use, oi, 0)], seg_cat)
        seg_reason = np.where(use, o_reason[np.where(use, oi, 0)], seg_reason)
    in_shift = _lookup(s_starts, s_ends, seg_start) >= 0
    pi = _lookup(p_starts, p_ends, seg_start)
    in_planned = in_shift & (pi >= 0)
    maint = in_planned & p_maint[np.where(pi >= 0, pi, 0)] if len(p_maint) else in_planned & False
    maint |= seg_cat == CATEGORY_CODES[Category.PLANNED_MAINTENANCE]
    bucket = _lookup(b_starts, b_ends, seg_start)
    # Time before the asset's first recorded state is no part of its history.
    keep = (bucket >= 0) & (seg_start >= first)
    seg_start, dur, seg_cat, seg_reason = (
        seg_start[keep],
        dur[keep],
        seg_cat[keep],
        seg_reason[keep],
    )
    in_shift, in_planned, maint, bucket = (
        in_shift[keep],
        in_planned[keep],
        maint[keep],
        bucket[keep],
    )
    seg_end = seg_start + dur

    productive = (seg_cat == _RUNNING) | (seg_cat == _SETUP)
    slot = _ELEMENT_SLOT[seg_cat]
    planned_stop = in_planned & (seg_cat != _RUNNING)
    slot = np.where(planned_stop, _E[Element.PDOT], slot)
    slot = np.where(
        (planned_stop | ~in_planned) & maint & in_shift, _E[Element.PLANNED_MAINTENANCE], slot
    )
    charged = in_shift | productive
    n = len(ordered)
    acc = np.zeros((n, _SLOTS), dtype=np.int64)
    flat = bucket[charged] * _SLOTS + slot[charged]
    acc += (
        np.bincount(flat, weights=dur[charged], minlength=n * _SLOTS)
        .astype(np.int64)
        .reshape(n, _SLOTS)
    )
    acc[:, _POT] = np.bincount(bucket[charged], weights=dur[charged], minlength=n).astype(np.int64)
    outside = ~in_shift & ~productive
    outside_us = np.bincount(bucket[outside], weights=dur[outside], minlength=n).astype(np.int64)
    calendar = np.bincount(bucket, weights=dur, minlength=n).astype(np.int64)

    # Losses and stop events: a stop is a run of consecutive segments with one (category,
    # reason); it counts once, in the bucket where it starts.
    loss = _LOSS[seg_cat] & charged & ~in_planned
    key = seg_cat.astype(np.int64) * (1 << 32) + seg_reason
    contiguous = np.concatenate(([False], seg_start[1:] == seg_end[:-1]))
    same = (
        contiguous
        & np.concatenate(([False], key[1:] == key[:-1]))
        & np.concatenate(([False], loss[:-1]))
    )
    new_stop = loss & ~same

    good, produced, ideal_us, no_ideal = _counts(inputs, b_starts, b_ends, n, first)

    pm = acc[:, _E[Element.PLANNED_MAINTENANCE]]
    columns = [
        calendar,
        acc[:, _POT],
        acc[:, _E[Element.PDOT]] + pm,
        pm,
        acc[:, _E[Element.NOT_CHARGED]],
        acc[:, _E[Element.ADOT]],
        acc[:, _E[Element.ADET]],
        acc[:, _E[Element.AUST]],
        acc[:, _E[Element.APT]],
        ideal_us,
        np.round(produced),
        np.round(good),
    ]
    # Field order of OeeFigures; the checks it makes one by one are made here on whole columns
    # (the guard against counting an instant twice stays), and a bucket that fails one is
    # built the checked way, which raises with the reason.
    ints = [c.astype(np.int64).tolist() for c in columns[:9]]
    floats = columns[9].tolist()
    counts = [c.astype(np.int64).tolist() for c in columns[10:]]
    rows = list(zip(*ints, floats, *counts, strict=True))
    for i in np.flatnonzero(~OeeFigures.valid_columns(*columns)).tolist():
        OeeFigures(*rows[i])
    results = [
        BucketResult(
            b.key,
            b.interval,
            OeeFigures.unchecked(rows[i]),
            outside_shift_stop_us=int(outside_us[i]),
            units_without_ideal=float(no_ideal[i]),
        )
        for i, b in enumerate(ordered)
    ]
    if loss.any():
        # One integer per (bucket, category, reason): reason ids stay below 2**32, categories
        # below 2**8, so buckets have 2**23 values before it overflows.
        group = (bucket[loss] << 40) | (seg_cat[loss].astype(np.int64) << 32) | seg_reason[loss]
        groups, inverse = np.unique(group, return_inverse=True)
        spent = np.bincount(inverse, weights=dur[loss]).astype(np.int64)
        stops = np.bincount(inverse, weights=new_stop[loss]).astype(np.int64)
        for g, us, count in zip(groups.tolist(), spent.tolist(), stops.tolist(), strict=True):
            category = CATEGORY_BY_CODE[(g >> 32) & 0xFF]
            results[g >> 40].losses[(category, g & 0xFFFFFFFF)] = [us, count]
    return results


def _counts(
    inputs: AssetInputs, b_starts: I64, b_ends: I64, n: int, first: int
) -> tuple[F64, F64, F64, F64]:
    """Per bucket: good, produced, ideal run time (µs), units without an ideal cycle."""
    c = inputs.counts

    def binned(times: I64, amounts: F64) -> F64:
        idx = _lookup(b_starts, b_ends, times)
        ok = (idx >= 0) & (times >= first)
        return np.bincount(idx[ok], weights=amounts[ok], minlength=n).astype(np.float64)

    scrap = binned(c.scrap_t, c.scrap)
    if c.total_t is not None and c.total is not None:
        prod_t, prod = c.total_t, c.total
        produced = binned(prod_t, prod)
        good = np.maximum(produced - scrap, 0.0)
    else:
        good = binned(c.good_t, c.good)
        prod_t = np.concatenate((c.good_t, c.scrap_t))
        prod = np.concatenate((c.good, c.scrap))
        produced = good + scrap
    cycle = inputs.ideal.at(prod_t)
    known = np.isfinite(cycle)
    ideal_us = binned(prod_t[known], prod[known] * cycle[known] * 1e6)
    no_ideal = binned(prod_t[~known], prod[~known])
    return good, produced, ideal_us, no_ideal
