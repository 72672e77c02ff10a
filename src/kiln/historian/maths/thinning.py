"""The writer's compression: one streaming compressor per compressed series.

Each commit, the new points of every compressed series go through its compressor; only what it
keeps is stored, plus the point it holds back. That held point is stored at once (so every value
that was acknowledged is on disk, as without compression) and deleted in a later commit if the
compressor then drops it. Late points (at or before the series' newest stored point),
historical ones and values of another type than the series' bypass compression: they are
backfills or corrections, stored as they come.

Only float and int series are compressed, and only where a rule says so (see
`compression.rules_resolver`); counters and states are left alone unless configured.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kiln.core.compression import CompressionSpec
from kiln.historian.maths.columns import FLOAT, INT, Columns
from kiln.historian.maths.compression import CompressionStats, Compressor, compressor

Resolver = Callable[[str], CompressionSpec | None]


@dataclass(slots=True)
class Thinned:
    """What `Thinning.apply` decided for one commit."""

    columns: Columns  # the rows to insert
    drop_series: list[int] = field(default_factory=list)  # stored held points now dropped:
    drop_ts: list[int] = field(default_factory=list)  # delete these (series, ts)
    dropped: int = 0  # points of this commit not stored


class Thinning:
    def __init__(
        self, resolve: Resolver | None, path_of: Callable[[int], str], kind_of: Callable[[int], str]
    ) -> None:
        self._resolve = resolve
        self._path_of = path_of
        self._kind_of = kind_of
        self._specs: dict[int, CompressionSpec | None] = {}
        self._compressors: dict[int, Compressor] = {}
        self._undo: dict[int, Compressor | None] = {}

    def _spec(self, sid: int) -> CompressionSpec | None:
        if sid not in self._specs:
            kind = self._kind_of(sid)
            spec = self._resolve(self._path_of(sid)) if self._resolve else None
            self._specs[sid] = spec if kind in (FLOAT, INT) else None
        return self._specs[sid]

    def apply(self, cols: Columns, hwm: np.ndarray, window_us: int) -> Thinned:
        """Thin `cols` (sorted by series and time, no duplicates) given each series' newest
        stored timestamp within the window `hwm`; points after `window_us` (a clock running
        ahead) are stored as they come, so that the compressors see time in order. Call
        `commit` or `rollback` once the transaction is done."""
        if self._resolve is None or not len(cols):
            return Thinned(cols)
        sids = [int(s) for s in np.unique(cols.series) if self._spec(int(s)) is not None]
        if not sids:
            return Thinned(cols)
        keep = np.ones(len(cols), dtype=bool)
        out = Thinned(cols)
        starts = np.searchsorted(cols.series, sids, side="left")
        ends = np.searchsorted(cols.series, sids, side="right")
        for sid, a, b in zip(sids, starts.tolist(), ends.tolist(), strict=True):
            self._thin(sid, cols, a, b, (int(hwm[sid]), window_us), keep, out)
        out.columns = cols.take(keep)
        out.dropped = int(np.count_nonzero(~keep))
        return out

    def _thin(
        self,
        sid: int,
        cols: Columns,
        a: int,
        b: int,
        live_range: tuple[int, int],
        keep: np.ndarray,
        out: Thinned,
    ) -> None:
        comp = self._compressors.get(sid)
        if sid not in self._undo:
            self._undo[sid] = copy.deepcopy(comp)
        if comp is None:
            spec = self._spec(sid)
            assert spec is not None
            comp = self._compressors[sid] = compressor(spec)
        ts, value, quality = cols.ts[a:b], cols.value[a:b], cols.quality[a:b]
        hwm, window = live_range
        live = (ts > hwm) & (ts <= window) & ~cols.historical[a:b]
        if cols.text is not None:
            live &= np.asarray([t is None for t in cols.text[a:b]], dtype=bool)
        rows = np.flatnonzero(live)
        if not len(rows):
            return
        before = comp.held
        kept: set[int] = set()
        for i in rows.tolist():
            kept.update(p[0] for p in comp.offer((int(ts[i]), float(value[i]), int(quality[i]))))
        after = comp.held
        if after is not None:
            kept.add(after[0])  # stored now, so that it is durable; dropped later if need be
        keep[a + rows] = np.isin(ts[rows], np.fromiter(kept, np.int64, len(kept)))
        if before is not None and before[0] not in kept:
            out.drop_series.append(sid)
            out.drop_ts.append(before[0])

    def commit(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        """Put the compressors back as they were before `apply`: nothing was stored."""
        for sid, saved in self._undo.items():
            if saved is None:
                self._compressors.pop(sid, None)
            else:
                self._compressors[sid] = saved
        self._undo.clear()

    def stats(self) -> dict[str, CompressionStats]:
        """Points offered and stored per compressed tag, since the store opened (the held
        point is stored, so it counts as kept here)."""
        return {
            self._path_of(sid): CompressionStats(
                c.stats.offered, c.stats.kept + (c.held is not None)
            )
            for sid, c in self._compressors.items()
        }
