"""Per-series state kept in memory: the latest value (PI's "snapshot") and the high-water mark.

Both are NumPy arrays indexed by series id, so updating them after a commit of a million points
and reading the latest value of ten thousand tags are a few vectorized operations.

* The high-water mark is the newest committed source timestamp of each series, whatever the
  batch. A point above it cannot already be stored, which is what lets the writer append
  without looking at the table.
* The snapshot is the newest live value. Historical (replayed) batches are stored but do not
  replace it; they only fill a series that has no snapshot yet, or correct the snapshot's own
  timestamp. At open both are rebuilt from the newest stored point of each series (the table
  does not record whether a point came from a replay).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from kiln.historian.columns import (
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


@dataclass(slots=True)
class SnapshotRows:
    """Snapshot values of some series, copied out for a reader."""

    ts: Int64Array  # EMPTY_TS where the series has no value
    value: Float64Array
    text: ObjectArray
    quality: UInt32Array
    recv: Int64Array


class Snapshot:
    """Latest value and high-water mark of every series.

    Only the writer thread calls `grow`, `load` and `apply`; readers in other threads call
    `read`. A lock makes each update and each read whole, so a reader never sees the new
    timestamp of a series with its old value.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hwm: Int64Array = np.full(0, EMPTY_TS, dtype=np.int64)
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
            self._ts = _grown(self._ts, new, EMPTY_TS)
            self._value = _grown(self._value, new, 0.0)
            self._text = _grown(self._text, new, None)
            self._quality = _grown(self._quality, new, 0)
            self._recv = _grown(self._recv, new, 0)

    def load(self, series: Int32Array, rows: SnapshotRows) -> None:
        """Set the state of `series` from the store (at open); hwm = newest stored ts."""
        self.grow(int(series.max()) + 1 if len(series) else 0)
        with self._lock:
            self.hwm[series] = rows.ts
            self._set(series, rows.ts, rows.value, rows.text, rows.quality, rows.recv)

    def apply(self, cols: Columns) -> None:
        """Account for committed points, sorted by (series, ts) and free of duplicates."""
        if not len(cols):
            return
        series, ts = cols.series, cols.ts
        last = last_of_each_series(series)
        with self._lock:
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
