"""Half-open time intervals in microseconds, and stop records that may overlap.

An `Interval` is `[start_us, end_us)`: it holds its start and not its end, so two intervals that
meet (one ends where the next starts) share no instant and their durations add up exactly. An
interval *set* is a tuple of intervals; `normalize` makes it sorted, non-overlapping and without
touching neighbours, and every set operation here returns that normal form. `total` is the
duration of the union, so no instant is ever counted twice, however the input overlaps.

Stop records are what people and machines enter: "from 10:00 to 10:20 the machine was down for
a jam". Two records may overlap (an operator splits a stop, a correction is entered on top of an
automatic record). OEE must count each instant of a stop once, under one reason: summing the
records' durations instead gave OEE Designer a negative availability (point85/OEE-Designer#9).
`resolve_overlaps` turns the records into non-overlapping pieces by one rule, stated there.

Pure: no clock, no I/O; times are microseconds since the epoch (`kiln.core.clock`).
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R", bound=Hashable)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """`[start_us, end_us)`. Empty when `start_us == end_us`; `end_us < start_us` is an error."""

    start_us: int
    end_us: int

    def __post_init__(self) -> None:
        if self.end_us < self.start_us:
            raise ValueError(
                f"interval ends before it starts ({self.start_us} > {self.end_us} µs): "
                "give the earlier instant as the start"
            )

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def empty(self) -> bool:
        return self.start_us == self.end_us

    def intersection(self, other: Interval) -> Interval | None:
        """The common part, or None when they share no instant (meeting intervals do not)."""
        start, end = max(self.start_us, other.start_us), min(self.end_us, other.end_us)
        return Interval(start, end) if start < end else None

    def clip(self, window: Interval) -> Interval | None:
        return self.intersection(window)


IntervalSet = tuple[Interval, ...]


def normalize(intervals: Iterable[Interval]) -> IntervalSet:
    """Sorted, disjoint, non-empty intervals covering exactly the instants of `intervals`.
    Neighbours that meet are merged, so equal sets of instants have equal normal forms."""
    merged: list[Interval] = []
    for iv in sorted(i for i in intervals if not i.empty):
        if merged and iv.start_us <= merged[-1].end_us:
            last = merged[-1]
            if iv.end_us > last.end_us:
                merged[-1] = Interval(last.start_us, iv.end_us)
        else:
            merged.append(iv)
    return tuple(merged)


def union(*sets: Iterable[Interval]) -> IntervalSet:
    return normalize(iv for s in sets for iv in s)


def intersection(a: Iterable[Interval], b: Iterable[Interval]) -> IntervalSet:
    """The instants in both sets: a merge walk over the two normal forms, O(n + m)."""
    left, right = normalize(a), normalize(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        common = left[i].intersection(right[j])
        if common is not None:
            out.append(common)
        # Drop whichever ends first: it cannot meet anything later in the other set.
        if left[i].end_us <= right[j].end_us:
            i += 1
        else:
            j += 1
    return tuple(out)  # pieces of disjoint sets are disjoint and never meet: already normal


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> IntervalSet:
    """The instants of `a` not in `b`."""
    out: list[Interval] = []
    holes = normalize(b)
    j = 0
    for iv in normalize(a):
        start = iv.start_us
        while j < len(holes) and holes[j].end_us <= start:
            j += 1
        k = j  # holes may span several intervals of `a`: do not advance past them for good
        while k < len(holes) and holes[k].start_us < iv.end_us:
            if holes[k].start_us > start:
                out.append(Interval(start, holes[k].start_us))
            start = max(start, holes[k].end_us)
            k += 1
        if start < iv.end_us:
            out.append(Interval(start, iv.end_us))
    return tuple(out)


def clip(intervals: Iterable[Interval], window: Interval) -> IntervalSet:
    """The part of `intervals` inside `window` (a shift, a day, a report's range)."""
    return intersection(intervals, (window,))


def total(intervals: Iterable[Interval]) -> int:
    """Duration of the union in µs: overlapping input is counted once."""
    return sum(iv.duration_us for iv in normalize(intervals))


@dataclass(frozen=True, slots=True)
class StopRecord(Generic[R]):
    """A stop as entered: when, why, and when it was entered (`entered_us`, for precedence)."""

    interval: Interval
    reason: R
    entered_us: int


@dataclass(frozen=True, slots=True)
class Piece(Generic[R]):
    """A part of the time line charged to one record: pieces never overlap."""

    interval: Interval
    record: StopRecord[R]

    @property
    def reason(self) -> R:
        return self.record.reason


def _ends(interval: Interval) -> tuple[int, int]:
    return (interval.start_us, interval.end_us)


def resolve_overlaps(records: Sequence[StopRecord[R]]) -> tuple[Piece[R], ...]:
    """Non-overlapping pieces, sorted by start, covering exactly the union of `records`.

    Precedence: where records overlap, the one entered last (greatest `entered_us`) wins; on a
    tie, the one later in `records`. A later entry is a correction or a finer split of what
    was there, so it replaces the earlier reason for the instants it covers and leaves the rest
    of the earlier record standing. Empty records cover nothing and yield no piece.

    A sweep over the distinct boundaries with a max-heap of the records covering the current
    instant: O(n log n) for n records.
    """
    order = sorted(
        (i for i, r in enumerate(records) if not r.interval.empty),
        key=lambda i: records[i].interval.start_us,
    )
    bounds = sorted({b for i in order for b in _ends(records[i].interval)})
    heap: list[tuple[int, int]] = []  # (-entered_us, -index): the winner on top
    pieces: list[Piece[R]] = []
    last_winner = -1  # index of the record the last piece belongs to
    nxt = 0
    for here, there in itertools.pairwise(bounds):
        while nxt < len(order) and records[order[nxt]].interval.start_us == here:
            i = order[nxt]
            heapq.heappush(heap, (-records[i].entered_us, -i))
            nxt += 1
        # Lazy removal: only the top must be live; ended records below it wait their turn.
        while heap and records[-heap[0][1]].interval.end_us <= here:
            heapq.heappop(heap)
        if not heap:
            continue  # a gap between records
        winner = -heap[0][1]
        if winner == last_winner and pieces[-1].interval.end_us == here:
            pieces[-1] = Piece(Interval(pieces[-1].interval.start_us, there), records[winner])
        else:
            pieces.append(Piece(Interval(here, there), records[winner]))
        last_winner = winner
    return tuple(pieces)


def durations_by_reason(pieces: Iterable[Piece[R]]) -> dict[R, int]:
    """µs per reason over resolved pieces (a downtime Pareto's input); sums to their total."""
    out: dict[R, int] = defaultdict(int)
    for piece in pieces:
        out[piece.reason] += piece.interval.duration_us
    return dict(out)
