"""Per-series state kept in memory: the latest value (PI's "snapshot") and the high-water mark.

All are NumPy arrays indexed by series id, so updating them after a commit of a million points
and reading the latest value of ten thousand tags are a few vectorized operations.

Every update takes the **window**: the newest source time the historian accepts as the present,
its clock's now plus `ingest.max_future_s` (see `kiln.core.admission`). A point beyond it (a
device or server whose clock runs years ahead, a replay, a database from before the window
existed) is data and is stored, but it must never pin the latest value or slow the writer
for good, so the state of a series has three parts:

* `hwm`, the high-water mark: the newest stored source timestamp within the window. Above it
  the table holds only points that were beyond the window when written;
* `ahead`: the oldest of those (NO_TS when there are none);
* `newest`: the newest stored timestamp of any kind, also for what must see every stored
  point (history spans, rollups).

A point strictly between `hwm` and `ahead`, or after `newest`, cannot already be stored, which
is what lets the writer append without looking at the table; any other point takes the
checked (DELETE, then insert) path. So a 2099 point sends only points between it and the
future points stored before it down that path, never the real-time ones below it, and a
sender whose clock runs steadily ahead still appends.

The snapshot is the newest live value within the window. Historical (replayed) batches are
stored but do not replace it; they only fill a series that has no snapshot yet, or correct the
snapshot's own timestamp. A point beyond the window never becomes the snapshot when written.

When time reaches a stored future point (now + max_future_s passes `ahead`), the store reloads
that series' state from the table at its next commit (`due`, then `load`): the point becomes an
ordinary one, latest if it is the newest within the window, and the mark moves past it. At
open the state of every series is built the same way, from the newest stored point within the
window, not the newest stored point (the table does not record whether a point came from a
replay, so a reloaded snapshot may be a replayed point).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from kiln.historian.maths.columns import (
    BoolArray,
    Columns,
    Float64Array,
    Int32Array,
    Int64Array,
    ObjectArray,
    UInt32Array,
    last_of_each_series,
)

EMPTY_TS = np.iinfo(np.int64).min
NO_TS = np.iinfo(np.int64).max  # `ahead` of a series with no stored point beyond its mark


@dataclass(slots=True)
class SnapshotRows:
    """Snapshot values of some series, copied out for a reader (or loaded from the store)."""

    ts: Int64Array  # EMPTY_TS where the series has no value
    value: Float64Array
    text: ObjectArray
    quality: UInt32Array
    recv: Int64Array


class Snapshot:
    """Latest value and high-water mark of every series.

    Only the writer thread calls `grow`, `load`, `due` and `apply`; readers in other threads
    call `read`. A lock makes each update and each read whole, so a reader never sees the new
    timestamp of a series with its old value.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hwm: Int64Array = np.full(0, EMPTY_TS, dtype=np.int64)
        self.ahead: Int64Array = np.full(0, NO_TS, dtype=np.int64)
        self.newest: Int64Array = np.full(0, EMPTY_TS, dtype=np.int64)
        self._next_due = int(NO_TS)  # the smallest `ahead`: when any series falls due
        self._ts: Int64Array = np.full(0, EMPTY_TS, dtype=np.int64)
        self._value: Float64Array = np.zeros(0, dtype=np.float64)
        self._text: ObjectArray = np.full(0, None, dtype=object)
        self._quality: UInt32Array = np.zeros(0, dtype=np.uint32)
        self._recv: Int64Array = np.zeros(0, dtype=np.int64)

    def grow(self, n_series: int) -> None:
        """Make room for series ids below `n_series` (amortized: capacity doubles)."""
        capacity = len(self.hwm)
        if n_series <= capacity:
            return
        new = max(n_series, 2 * capacity, 1024)
        with self._lock:
            self.hwm = _grown(self.hwm, new, EMPTY_TS)
            self.ahead = _grown(self.ahead, new, NO_TS)
            self.newest = _grown(self.newest, new, EMPTY_TS)
            self._ts = _grown(self._ts, new, EMPTY_TS)
            self._value = _grown(self._value, new, 0.0)
            self._text = _grown(self._text, new, None)
            self._quality = _grown(self._quality, new, 0)
            self._recv = _grown(self._recv, new, 0)

    def load(
        self, series: Int32Array, rows: SnapshotRows, ahead: Int64Array, newest: Int64Array
    ) -> None:
        """Set the state of `series` from the store: `rows` is each one's newest stored point
        within the window (ts EMPTY_TS: none), `ahead` the oldest stored beyond it (NO_TS:
        none), `newest` the newest stored."""
        self.grow(int(series.max()) + 1 if len(series) else 0)
        with self._lock:
            self.hwm[series] = rows.ts
            self.ahead[series] = ahead
            self.newest[series] = newest
            self._set(series, rows.ts, rows.value, rows.text, rows.quality, rows.recv)
            self._next_due = int(self.ahead.min()) if len(self.ahead) else int(NO_TS)

    def due(self, window_us: int) -> Int32Array:
        """Series with a stored point beyond their mark that is within the window now: their
        state must be reloaded (`load`) before a point of theirs is written."""
        if window_us < self._next_due:
            return np.zeros(0, dtype=np.int32)
        return np.flatnonzero(self.ahead <= window_us).astype(np.int32)

    def late(self, cols: Columns) -> BoolArray:
        """Points that may already be stored, so take the checked path: at or below their
        series' mark, or between its oldest and newest stored points beyond the mark."""
        ts, sid = cols.ts, cols.series
        late = ts <= self.hwm[sid]
        if self._next_due == NO_TS:  # no series has a stored point beyond its mark
            return np.asarray(late)
        return np.asarray(late | ((ts >= self.ahead[sid]) & (ts <= self.newest[sid])))

    def apply(self, cols: Columns, window_us: int) -> None:
        """Account for committed points, sorted by (series, ts) and free of duplicates; those
        after `window_us` are stored but not the present (see the module docstring). Call
        `due` first: `load` the series it returns."""
        if not len(cols):
            return
        series, ts = cols.series, cols.ts
        last = last_of_each_series(series)
        with self._lock:
            ids = series[last]
            self.newest[ids] = np.maximum(self.newest[ids], ts[last])
            if ts[last].max() > window_us:
                # Within a series the points are in time order: those beyond the window come
                # last, and the first of them is the oldest.
                beyond = ts > window_us
                starts_run = np.r_[True, last[:-1]]
                follows_beyond = np.r_[False, beyond[:-1]]
                first = np.flatnonzero(beyond & (starts_run | ~follows_beyond))
                self.ahead[series[first]] = np.minimum(self.ahead[series[first]], ts[first])
                self._next_due = min(self._next_due, int(ts[first].min()))
                cols = cols.take(~beyond)
                if not len(cols):
                    return
                series, ts = cols.series, cols.ts
                last = last_of_each_series(series)
                ids = series[last]
            self.hwm[ids] = np.maximum(self.hwm[ids], ts[last])
            live = ~cols.historical
            if live.all():
                self._take_newest(cols, np.flatnonzero(last))
            else:
                self._apply_mixed(cols, live)

    def read(self, series: Int32Array) -> SnapshotRows:
        with self._lock:
            return SnapshotRows(
                ts=self._ts[series],
                value=self._value[series],
                text=self._text[series],
                quality=self._quality[series],
                recv=self._recv[series],
            )

    def has_value(self, series: Int32Array) -> BoolArray:
        with self._lock:
            return np.asarray(self._ts[series] != EMPTY_TS)

    # -- internals (called with the lock held) -------------------------------------------

    def _apply_mixed(self, cols: Columns, live: BoolArray) -> None:
        rows = np.flatnonzero(live)
        if len(rows):
            self._take_newest(cols, rows[last_of_each_series(cols.series[rows])])
        hist = np.flatnonzero(~live)
        series = cols.series[hist]
        # A replayed point at the snapshot's own timestamp replaced the stored row there.
        same = hist[cols.ts[hist] == self._ts[series]]
        self._put(cols, same)
        # A series with no snapshot at all shows its newest replayed value.
        hist = hist[self._ts[cols.series[hist]] == EMPTY_TS]
        if len(hist):
            self._put(cols, hist[last_of_each_series(cols.series[hist])])

    def _take_newest(self, cols: Columns, rows: np.ndarray) -> None:
        """`rows` hold at most one point per series; keep those at or after the snapshot."""
        newer = cols.ts[rows] >= self._ts[cols.series[rows]]
        self._put(cols, rows[newer])

    def _put(self, cols: Columns, rows: np.ndarray) -> None:
        if not len(rows):
            return
        text = cols.text[rows] if cols.text is not None else None
        self._set(
            cols.series[rows],
            cols.ts[rows],
            cols.value[rows],
            text,
            cols.quality[rows],
            cols.recv[rows],
        )

    def _set(
        self,
        series: Int32Array,
        ts: Int64Array,
        value: Float64Array,
        text: ObjectArray | None,
        quality: UInt32Array,
        recv: Int64Array,
    ) -> None:
        self._ts[series] = ts
        self._value[series] = value
        self._text[series] = text
        self._quality[series] = quality
        self._recv[series] = recv


def _grown(arr: np.ndarray, size: int, fill: object) -> np.ndarray:
    out = np.full(size, fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out
