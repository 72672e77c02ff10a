"""Rollup tiers in DuckDB: rows (see `rollup`) kept up to date as points arrive, and read back.

Keeping up: every commit also records, per numeric series it touched, the time range of the
points and whether they were all appends (newer than anything stored). `refresh`, run by the
writer thread between commits, folds appended ranges into their buckets' rows (`rollup.combine`)
and recomputes every bucket a late point, a backfill or a compression drop touched from the
raw points. Because the records commit with the points, nothing is missed after a crash: a
reopened store carries on with what is still pending.

Reading: a series' rows are trusted up to the first bucket with pending work; a query reads
rows before it and raw points from it on (what TimescaleDB calls a real-time aggregate), so a
rollup answer is always the answer the raw points give.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from kiln.historian import duck, query
from kiln.historian.maths import rollup
from kiln.historian.maths.aggregates import Column
from kiln.historian.maths.columns import STRING, Columns
from kiln.historian.maths.rollup import Rows
from kiln.historian.maths.timeline import Array, Points

_LOGGER = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
_GOOD_BELOW = 1 << 30  # OPC UA severity Good (see query._GOOD)
_FAR = 2**62

# A tier is dropped for a series whose buckets hold fewer than this many points on average
# (judged once it has seen enough points): a one-minute tier of a tag sampled once a minute
# would only double its disk use. A sparse series gets the tier back (rebuilt from its whole
# history) if it starts reporting often enough.
_CLASSIFY_POINTS = 2_000
_SPARSE_BELOW = 3.0
_RECHECK_POINTS = 20_000
_DENSE_AGAIN = 6.0

# Columns of the rollups table after (width_us, series_id), in `Rows` order.
_ROW_COLUMNS = [f.name for f in fields(Rows)]
_TS_COLUMNS = frozenset({"bucket", "head_ts", "tail_ts"})
_SELECT_ROWS = ", ".join(f"epoch_us({c}) AS {c}" if c in _TS_COLUMNS else c for c in _ROW_COLUMNS)


@dataclass(frozen=True, slots=True)
class RefreshStats:
    series: int = 0  # series whose pending work was done
    rows: int = 0  # rollup rows written
    points: int = 0  # raw points read


class RollupTiers:
    """The configured rollup widths (µs, ascending) and the work that keeps them up to date."""

    def __init__(self, widths_us: Iterable[int]) -> None:
        self.widths = sorted(set(widths_us))
        # (width, series) pairs without rows: the tier would not summarize them (see above).
        self.sparse: frozenset[tuple[int, int]] = frozenset()
        self._dense: set[tuple[int, int]] = set()
        self._seen: dict[tuple[int, int], list[int]] = {}
        self._to_sparse: set[tuple[int, int]] = set()
        self._to_dense: set[tuple[int, int]] = set()
        # (width, series) -> its oldest row's bucket, once asked for (readers fill it, the
        # writer keeps it true: backfills move it earlier, retention clears it).
        self._oldest: dict[tuple[int, int], int] = {}
        # series -> the earliest source time of its pending work: the table's content, kept
        # in memory for readers (replaced, never changed in place, as `sparse`).
        self.pending: Mapping[int, int] = {}
        rollup.check_widths(self.widths)

    def __bool__(self) -> bool:
        return bool(self.widths)

    # -- writing ---------------------------------------------------------------------------

    def pending_of(
        self,
        cols: Columns,
        late: Array,
        gone_series: Array,
        gone_ts: Array,
        kind_of: Callable[[int], str],
    ) -> pa.Table | None:
        """The pending-work records of one commit (`cols` sorted by series and time), or None."""
        if not self.widths or (not len(cols) and not len(gone_ts)):
            return None
        sids, t0, t1, append = [], [], [], []
        if len(cols):
            starts = np.flatnonzero(np.r_[True, cols.series[1:] != cols.series[:-1]])
            ends = np.r_[starts[1:], len(cols)] - 1
            sids.append(cols.series[starts].astype(np.int32))
            t0.append(cols.ts[starts])
            t1.append(cols.ts[ends])
            append.append(~np.logical_or.reduceat(late, starts))
        if len(gone_ts):
            sids.append(np.asarray(gone_series, np.int32))
            t0.append(np.asarray(gone_ts, np.int64))
            t1.append(np.asarray(gone_ts, np.int64))
            append.append(np.zeros(len(gone_ts), bool))
        sid = np.concatenate(sids)
        numeric = np.fromiter((kind_of(s) != STRING for s in sid.tolist()), bool, len(sid))
        if not numeric.any():
            return None
        return pa.table(
            {
                "series_id": pa.array(sid[numeric]),
                "t0": pa.array(np.concatenate(t0)[numeric], _TS),
                "t1": pa.array(np.concatenate(t1)[numeric], _TS),
                "append": pa.array(np.concatenate(append)[numeric]),
            }
        )

    def sync(self, conn: duck.Connection, now_us: int) -> None:
        """Make the stored tiers the configured ones: a new width gets every series' whole
        history as pending work (built by `refresh` in the background); a width no longer
        configured loses its rows. Writer only."""
        stored = {int(r[0]) for r in conn.execute("SELECT width_us FROM rollup_tiers").fetchall()}
        added = [w for w in self.widths if w not in stored]
        removed = [w for w in stored if w not in self.widths]
        if added or removed:
            self._change_tiers(conn, added, removed, now_us)
        self._oldest.clear()
        sparse = conn.execute("SELECT width_us, series_id FROM rollup_sparse").fetchall()
        self.sparse = frozenset((int(w), int(s)) for w, s in sparse)
        self._load_pending(conn)

    def _change_tiers(
        self, conn: duck.Connection, added: list[int], removed: list[int], now_us: int
    ) -> None:
        with duck.transaction(conn):
            for w in [*removed, *added]:
                conn.execute("DELETE FROM rollup_sparse WHERE width_us = $w", {"w": w})
            for w in removed:
                conn.execute("DELETE FROM rollups WHERE width_us = $w", {"w": w})
                conn.execute("DELETE FROM rollup_tiers WHERE width_us = $w", {"w": w})
            for w in added:
                conn.execute(
                    "INSERT INTO rollup_tiers VALUES ($w, make_timestamptz($now))",
                    {"w": w, "now": now_us},
                )
            if added:
                # Rows of the other widths are rebuilt too: pending work is per series, not
                # per width. Adding a tier is rare; this keeps the bookkeeping simple.
                conn.execute(
                    "DELETE FROM rollups WHERE width_us IN (SELECT unnest($ws::BIGINT[]))",
                    {"ws": added},
                )
                conn.execute(
                    "INSERT INTO rollup_pending "
                    "SELECT p.series_id, min(p.ts), max(p.ts), false FROM points p "
                    "JOIN series s ON s.id = p.series_id WHERE s.kind <> 'string' "
                    "GROUP BY p.series_id"
                )
        if added:
            # Worth a line only when there is something to build (not in a new store).
            pending = conn.execute("SELECT count(*) FROM rollup_pending").fetchone()[0]
            (_LOGGER.info if pending else _LOGGER.debug)(
                "Historian rollup tiers added (%s): building them from the stored points",
                ", ".join(f"{w // 1_000_000} s" for w in added),
            )

    def _load_pending(self, conn: duck.Connection) -> None:
        got = conn.execute(
            "SELECT series_id, epoch_us(min(t0)) FROM rollup_pending GROUP BY series_id"
        ).fetchall()
        self.pending = {int(sid): int(t0) for sid, t0 in got}

    def committed(self, work: pa.Table) -> None:
        """Note the pending work of a commit once it is durable."""
        pending = dict(self.pending)
        sids = work.column("series_id").to_numpy()
        starts = work.column("t0").cast(pa.int64()).to_numpy()
        for sid, t0 in zip(sids.tolist(), starts.tolist(), strict=True):
            known = pending.get(sid)
            pending[sid] = t0 if known is None else min(known, t0)
        self.pending = pending

    def refresh(
        self,
        conn: duck.Connection,
        kind_of: Callable[[int], str],
        *,
        max_series: int = 500,
        max_span_us: int = 7 * 86_400_000_000,
    ) -> RefreshStats:
        """Do the pending work of up to `max_series` series in one transaction, at most
        `max_span_us` of source time each (the rest stays pending). Writer only."""
        if not self.widths:
            return RefreshStats()
        got = conn.execute(
            "SELECT series_id AS sid, epoch_us(min(t0)) AS t0, epoch_us(max(t1)) AS t1, "
            "bool_and(append) AS append FROM rollup_pending "
            "GROUP BY series_id ORDER BY series_id LIMIT $n",
            {"n": max_series},
        ).fetchnumpy()
        sids = np.asarray(got["sid"], np.int64)
        if not len(sids):
            return RefreshStats()
        t0 = np.asarray(got["t0"], np.int64)
        t1_all = np.asarray(got["t1"], np.int64)
        append = np.asarray(got["append"], bool)
        kinds = [kind_of(sid) for sid in sids.tolist()]
        numeric = np.array([k != STRING for k in kinds], bool)
        step = np.array([k != "float" for k in kinds], bool)
        # A long range is done a chunk at a time, cut on the widest grid (which holds every
        # narrower one), so that no bucket is ever rebuilt from part of its points.
        widest = self.widths[-1]
        cut = t0 - t0 % widest + max(max_span_us - max_span_us % widest, widest)
        rest = t1_all >= cut
        t1 = np.where(rest, cut - 1, t1_all)
        # An append reads only its own points; a recompute reads its buckets whole.
        lo_read = np.where(append, t0, t0 - t0 % widest)
        hi_read = np.where(append, t1 + 1, t1 - t1 % widest + widest)
        pts, pts_sid = self._read_points(conn, sids, lo_read, hi_read)
        at = np.searchsorted(sids, pts_sid)  # each point's series, as an index into `sids`
        last = self._last_rows(conn, sids[append], t0[append])
        written: list[Rows] = []
        written_width: list[Array] = []
        written_series: list[Array] = []
        for w in self.widths:
            first_bucket, last_bucket = t0 - t0 % w, t1 - t1 % w
            lo = np.where(append, t0, first_bucket)[at]
            keep = (pts.ts >= lo) & (pts.ts < (last_bucket + w)[at]) & numeric[at]
            sparse = np.array([(w, sid) in self.sparse for sid in sids.tolist()], bool)
            # Sparse series build no rows; counting their buckets is enough to re-check them.
            counted = keep & sparse[at]
            keep &= ~sparse[at]
            row_sid, rows = rollup.build_many(_take(pts, keep), pts_sid[keep], w,
                                              step=step[at][keep])  # fmt: skip
            rows_of = np.bincount(np.searchsorted(sids, row_sid), minlength=len(sids))
            if counted.any():
                bucket = pts.ts[counted] - pts.ts[counted] % w
                series = at[counted]
                new = np.r_[True, (bucket[1:] != bucket[:-1]) | (series[1:] != series[:-1])]
                rows_of += np.bincount(series[new], minlength=len(sids))
            self._learn_density(w, sids, np.bincount(at[keep | counted], minlength=len(sids)),
                                rows_of)  # fmt: skip
            old_sid, old = last.get(w, (np.empty(0, np.int64), rollup.empty()))
            if len(old):
                # An append's first row joins the stored row of its bucket.
                first = np.searchsorted(row_sid, old_sid)
                rows = rows.put(first, rollup.combine(old, rows.take(first),
                                                      step=step[np.searchsorted(sids, old_sid)]))  # fmt: skip
            written.append(rows)
            written_width.append(np.full(len(rows), w, np.int64))
            written_series.append(row_sid)
        rows = rollup.concat(written)
        n_widths = len(self.widths)
        replace = pa.table({
            "width_us": pa.array(np.tile(self.widths, len(sids)), pa.int64()),
            "series_id": pa.array(np.repeat(sids, n_widths).astype(np.int32)),
            "lo": pa.array((np.repeat(t0, n_widths) - np.repeat(t0, n_widths)
                            % np.tile(self.widths, len(sids))), _TS),
            "hi": pa.array((np.repeat(t1, n_widths) - np.repeat(t1, n_widths)
                            % np.tile(self.widths, len(sids))), _TS),
        })  # fmt: skip
        remainder = pa.table({
            "series_id": pa.array(sids[rest].astype(np.int32)),
            "t0": pa.array(cut[rest], _TS),
            "t1": pa.array(t1_all[rest], _TS),
            "append": pa.array(append[rest]),
        })  # fmt: skip
        inputs = {
            "kiln_rollup_replace": replace,
            "kiln_rollup_rows": _rows_table(rows, np.concatenate(written_width),
                                            np.concatenate(written_series)),
            "kiln_rollup_done": pa.table({"series_id": pa.array(sids.astype(np.int32))}),
            "kiln_rollup_rest": remainder,
        }  # fmt: skip
        with duck.registered(conn, inputs), duck.transaction(conn):
            conn.execute(_DELETE_ROWS_SQL).fetchall()
            if len(rows):
                conn.execute("INSERT INTO rollups BY NAME SELECT * FROM kiln_rollup_rows")
            conn.execute(
                "DELETE FROM rollup_pending WHERE series_id IN "
                "(SELECT series_id FROM kiln_rollup_done)"
            ).fetchall()
            if len(remainder):
                conn.execute("INSERT INTO rollup_pending BY NAME SELECT * FROM kiln_rollup_rest")
            self._apply_density(conn)
        self._commit_density()
        self._load_pending(conn)
        if self._oldest and len(rows):
            widths_done, series_done = np.concatenate(written_width), np.concatenate(written_series)
            for w, sid, bucket in zip(widths_done.tolist(), series_done.tolist(),
                                      rows.bucket.tolist(), strict=True):  # fmt: skip
                known = self._oldest.get((w, sid))
                if known is not None and bucket < known:
                    self._oldest[(w, sid)] = bucket
        return RefreshStats(len(sids), len(rows), len(pts))

    # -- density: a tier is kept only for the series it summarizes ---------------------------

    def _learn_density(self, width: int, sids: Array, points: Array, rows: Array) -> None:
        """Count what building this tier's rows took; classify series with enough points."""
        for i in np.flatnonzero(points).tolist():
            key = (width, int(sids[i]))
            seen = self._seen.setdefault(key, [0, 0])
            seen[0] += int(points[i])
            seen[1] += int(rows[i])
            ratio = seen[0] / max(seen[1], 1)
            if key in self.sparse:
                if seen[0] >= _RECHECK_POINTS and ratio >= _DENSE_AGAIN:
                    self._to_dense.add(key)
            elif key not in self._dense and seen[0] >= _CLASSIFY_POINTS:
                if ratio < _SPARSE_BELOW:
                    self._to_sparse.add(key)
                else:
                    self._dense.add(key)

    def _apply_density(self, conn: duck.Connection) -> None:
        """Store the changes `_learn_density` found, in the refresh's transaction."""
        if not self._to_sparse and not self._to_dense:
            return
        changes = pa.table({
            "width_us": pa.array([w for w, _ in [*self._to_sparse, *self._to_dense]], pa.int64()),
            "series_id": pa.array([s for _, s in [*self._to_sparse, *self._to_dense]], pa.int32()),
            "sparse": pa.array([True] * len(self._to_sparse) + [False] * len(self._to_dense)),
        })  # fmt: skip
        with duck.registered(conn, {"kiln_rollup_density": changes}):
            conn.execute(
                "DELETE FROM rollup_sparse USING kiln_rollup_density d "
                "WHERE rollup_sparse.width_us = d.width_us AND rollup_sparse.series_id = d.series_id"
            )
            conn.execute(
                "INSERT INTO rollup_sparse SELECT width_us, series_id FROM kiln_rollup_density "
                "WHERE sparse"
            )
            conn.execute(
                "DELETE FROM rollups USING kiln_rollup_density d WHERE d.sparse "
                "AND rollups.width_us = d.width_us AND rollups.series_id = d.series_id"
            )
            # A series dense again gets the tier built for its whole history, like a new tier.
            conn.execute(
                "INSERT INTO rollup_pending SELECT p.series_id, min(p.ts), max(p.ts), false "
                "FROM points p WHERE p.series_id IN "
                "(SELECT series_id FROM kiln_rollup_density WHERE NOT sparse) "
                "GROUP BY p.series_id"
            )

    def _commit_density(self) -> None:
        if self._to_sparse or self._to_dense:
            for key in self._to_sparse | self._to_dense:
                self._seen.pop(key, None)
            self._dense |= self._to_dense
            # Readers look at `sparse` without a lock: replace it, never change it in place.
            self.sparse = frozenset((self.sparse | self._to_sparse) - self._to_dense)
        self._to_sparse, self._to_dense = set(), set()

    def _read_points(
        self, conn: duck.Connection, sids: Array, lo: Array, hi: Array
    ) -> tuple[Points, Array]:
        """The points of each series in its [lo, hi), sorted by (series, time), and their
        series."""
        ranges = pa.table(
            {"sid": pa.array(sids.astype(np.int32)), "lo": pa.array(lo, _TS),
             "hi": pa.array(hi, _TS)}
        )  # fmt: skip
        with duck.registered(conn, {"kiln_rollup_ranges": ranges}):
            got = conn.execute(
                _READ_POINTS_SQL,
                {"t0": int(lo.min()), "t1": int(hi.max()), "s0": int(sids.min()),
                 "s1": int(sids.max())},
            ).fetchnumpy()  # fmt: skip
        values = np.asarray(np.ma.filled(got["value"].astype(np.float64), np.nan), np.float64)
        quality = np.asarray(got["quality"], np.int64)
        good = ~np.isnan(values) & (quality < _GOOD_BELOW)
        points = Points(np.asarray(got["ts"], np.int64), values, good)
        return points, np.asarray(got["sid"], np.int64)

    def _last_rows(
        self, conn: duck.Connection, sids: Array, t0: Array
    ) -> dict[int, tuple[Array, Rows]]:
        """Per width, the stored rows of the buckets the appends start in, and their series."""
        if not len(sids):
            return {}
        widths = np.asarray(self.widths, np.int64)
        starts = np.repeat(t0, len(widths))
        wanted = pa.table({
            "width_us": pa.array(np.tile(widths, len(sids))),
            "series_id": pa.array(np.repeat(sids, len(widths)).astype(np.int32)),
            "bucket": pa.array(starts - starts % np.tile(widths, len(sids)), _TS),
        })  # fmt: skip
        with duck.registered(conn, {"kiln_rollup_wanted": wanted}):
            got = conn.execute(
                f"SELECT r.width_us, r.series_id, {_prefixed(_SELECT_ROWS)} FROM rollups r "
                "JOIN kiln_rollup_wanted w ON r.width_us = w.width_us "
                "AND r.series_id = w.series_id AND r.bucket = w.bucket "
                "ORDER BY r.width_us, r.series_id"
            ).fetchnumpy()
        rows = rollup.from_columns(got)
        width_of = np.asarray(got["width_us"], np.int64)
        series = np.asarray(got["series_id"], np.int64)
        out = {}
        for w in self.widths:
            mine = width_of == w
            if mine.any():
                out[w] = (series[mine], rows.take(mine))
        return out

    # -- reading ---------------------------------------------------------------------------

    def widths_for(self, edges: Array, names: Sequence[str]) -> list[int]:
        """The tiers whose grid holds every edge, widest first, if rollups can answer `names`
        (none otherwise)."""
        if not set(names) <= rollup.ANSWERABLE or len(edges) < 2:
            return []
        return [w for w in reversed(self.widths) if not np.any(edges % w)]

    def width_of(self, widths: Sequence[int], sid: int) -> int | None:
        """The widest of `widths` that keeps rows for series `sid`."""
        return next((w for w in widths if (w, sid) not in self.sparse), None)

    def dirty_from(self, sids: Sequence[int]) -> dict[int, int]:
        """Per series with pending work, the earliest source time it touches."""
        pending = self.pending
        return {sid: pending[sid] for sid in sids if sid in pending}

    def read(
        self,
        cur: duck.Connection,
        width_us: int,
        sids: Sequence[int],
        start_us: int,
        end_us: int,
    ) -> dict[int, Rows]:
        """The rows of each series with bucket in [start, end), in bucket order."""
        if not sids:
            return {}
        got = cur.execute(
            f"SELECT series_id, {_SELECT_ROWS} FROM rollups WHERE width_us = $w "
            "AND list_contains($sids, series_id) AND series_id >= $s0 AND series_id <= $s1 "
            "AND bucket >= make_timestamptz($start) AND bucket < make_timestamptz($end) "
            "ORDER BY series_id, bucket",
            {"w": width_us, "sids": list(sids), "s0": min(sids), "s1": max(sids),
             "start": start_us, "end": end_us},
        ).fetchnumpy()  # fmt: skip
        rows = rollup.from_columns(got)
        series = np.asarray(got["series_id"], np.int64)
        out = {}
        for sid in sids:
            a, b = np.searchsorted(series, [sid, sid + 1])
            out[sid] = rows.take(np.arange(a, b))
        return out

    def neighbour(
        self,
        cur: duck.Connection,
        width_us: int,
        sid: int,
        t_us: int,
        *,
        before: bool,
        below_us: int = _FAR,
    ) -> Points:
        """The last point before `t_us` (or the first at or after it, in a bucket before
        `below_us`) as the rows know it."""
        if before:
            sql = ("SELECT epoch_us(tail_ts), tail_value, tail_good FROM rollups "
                   "WHERE width_us = $w AND series_id = $sid AND tail_ts < make_timestamptz($t) "
                   "ORDER BY bucket DESC LIMIT 1")  # fmt: skip
            params = {"w": width_us, "sid": sid, "t": t_us}
        else:
            sql = ("SELECT epoch_us(head_ts), head_value, head_good FROM rollups "
                   "WHERE width_us = $w AND series_id = $sid AND head_ts >= make_timestamptz($t) "
                   "AND bucket < make_timestamptz($below) ORDER BY bucket LIMIT 1")  # fmt: skip
            params = {"w": width_us, "sid": sid, "t": t_us, "below": min(below_us, _FAR)}
        row = cur.execute(sql, params).fetchone()
        if row is None:
            return _no_points()
        value = np.nan if row[1] is None else float(row[1])
        return Points(np.array([int(row[0])]), np.array([value]), np.array([bool(row[2])]))

    def summaries(
        self,
        cur: duck.Connection,
        width_us: int,
        series: Sequence[tuple[int, str]],
        edges: Array,
        names: Sequence[str],
        *,
        data_end_us: int,
        total_unit: str,
        span: query.StoredSpan,
    ) -> dict[int, dict[str, Column]]:
        """The aggregates of each series (id, kind) on `edges` (on the grid of `width_us`) from
        its rows, and from raw points where rows have pending work. Series left out of the
        answer (pending work from before the range) are for the caller to read raw."""
        start, end = int(edges[0]), int(edges[-1])
        sids = [sid for sid, _ in series]
        dirty = self.dirty_from(sids)
        # Rows are clean before the bucket of a series' first pending point; the range is
        # read from rows before `split` and from raw points after it.
        clean = {sid: _FAR if (t := dirty.get(sid)) is None else t - t % width_us for sid in sids}
        split = {sid: min(max(clean[sid], start), end) for sid in sids}
        served = [(sid, kind) for sid, kind in series if split[sid] > start]
        if not served:
            return {}
        rows = self.read(cur, width_us, [sid for sid, _ in served], start - width_us,
                         end + width_us)  # fmt: skip
        # The raw part of each series with pending work in the range, read together per split.
        tails: dict[int, Points] = {}
        by_split: dict[int, list[tuple[int, str]]] = {}
        for sid, kind in served:
            if split[sid] < end:
                by_split.setdefault(split[sid], []).append((sid, kind))
        for at, group in by_split.items():
            got = query.timelines(cur, group, at, end, span=span)
            for (sid, _), timeline in zip(group, got, strict=True):
                tails[sid] = timeline
        out: dict[int, dict[str, Column]] = {}
        for sid, kind in served:
            step = kind != "float"
            r = rows[sid]
            cut = split[sid]
            own = r.take((r.bucket >= start) & (r.bucket < cut))
            before = self._before(cur, width_us, sid, start, r)
            tail = tails.get(sid)
            if tail is not None:
                a, b = np.searchsorted(tail.ts, [cut, end])
                own = rollup.concat(
                    [
                        own,
                        rollup.build(
                            Points(tail.ts[a:b], tail.values[a:b], tail.good[a:b]),
                            width_us,
                            step=step,
                        ),
                    ]
                )
                after = _point(tail.ts, tail.values, tail.good, int(b))
            else:
                after = self._after(cur, width_us, sid, end, clean[sid], r, span)
            out[sid] = rollup.merge(
                own,
                before,
                after,
                edges,
                names,
                step=step,
                data_end_us=data_end_us,
                total_unit=total_unit,
            )
        return out

    def _before(
        self, cur: duck.Connection, width_us: int, sid: int, start: int, rows: Rows
    ) -> Points:
        """The last point before `start`: the tail of the row just before, or of an earlier
        one (every point before a served range is in the rows, even when retention has
        deleted the raw points)."""
        earlier = np.flatnonzero(rows.bucket < start)
        if len(earlier):
            return _point(rows.tail_ts, rows.tail_value, rows.tail_good, int(earlier[-1]))
        if start <= self._oldest_row(cur, width_us, sid):
            return _no_points()
        return self.neighbour(cur, width_us, sid, start, before=True)

    def _oldest_row(self, cur: duck.Connection, width_us: int, sid: int) -> int:
        key = (width_us, sid)
        oldest = self._oldest.get(key)
        if oldest is None:
            (row,) = cur.execute(
                "SELECT epoch_us(min(bucket)) FROM rollups WHERE width_us = $w "
                "AND series_id = $s", {"w": width_us, "s": sid},
            ).fetchall()  # fmt: skip
            oldest = _FAR if row[0] is None else int(row[0])
            if row[0] is not None:  # no rows yet may mean not built yet: ask again
                self._oldest[key] = oldest
        return oldest

    def _after(
        self,
        cur: duck.Connection,
        width_us: int,
        sid: int,
        end: int,
        clean_until: int,
        rows: Rows,
        span: query.StoredSpan,
    ) -> Points:
        """The first point at or after `end`: the head of a clean row after it, or searched
        for among the raw points."""
        later = np.flatnonzero((rows.bucket >= end) & (rows.bucket < clean_until))
        if len(later):
            return _point(rows.head_ts, rows.head_value, rows.head_good, int(later[0]))
        stored = span(sid)
        if stored is None or stored[1] < end:
            return _no_points()  # the newest point is always kept, raw: nothing after it
        found = self.neighbour(cur, width_us, sid, end, before=False, below_us=clean_until)
        if len(found):
            return found
        return query.neighbour_points(cur, sid, end, before=False)

    # -- retention -------------------------------------------------------------------------

    def delete_before(
        self, conn: duck.Connection, sids: Sequence[int], cutoffs: Sequence[int]
    ) -> int:
        """Delete the rows of each series whose bucket ends before its cutoff (µs)."""
        if not sids or not self.widths:
            return 0
        table = pa.table({"series_id": pa.array(list(sids), pa.int32()),
                          "cutoff": pa.array(list(cutoffs), pa.int64())})  # fmt: skip
        with duck.registered(conn, {"kiln_rollup_cutoffs": table}):
            self._oldest.clear()
            (row,) = conn.execute(
                "DELETE FROM rollups USING kiln_rollup_cutoffs AS c "
                "WHERE rollups.series_id = c.series_id "
                "AND epoch_us(rollups.bucket) + rollups.width_us <= c.cutoff"
            ).fetchall()
        return int(row[0])


_READ_POINTS_SQL = """
SELECT p.series_id AS sid, epoch_us(p.ts) AS ts, p.value AS value, p.quality AS quality
FROM points p JOIN kiln_rollup_ranges r
  ON p.series_id = r.sid AND p.ts >= r.lo AND p.ts < r.hi
WHERE p.ts >= make_timestamptz($t0) AND p.ts < make_timestamptz($t1)
  AND p.series_id >= $s0 AND p.series_id <= $s1
ORDER BY sid, ts
"""

_DELETE_ROWS_SQL = """
DELETE FROM rollups USING kiln_rollup_replace AS r
WHERE rollups.width_us = r.width_us AND rollups.series_id = r.series_id
  AND rollups.bucket >= r.lo AND rollups.bucket <= r.hi
"""


def _prefixed(select: str) -> str:
    return ", ".join(
        part.replace("epoch_us(", "epoch_us(r.") if "epoch_us(" in part else f"r.{part.strip()}"
        for part in select.split(", ")
    )


def _rows_table(rows: Rows, widths: Array, series: Array) -> pa.Table:
    cols: dict[str, pa.Array] = {"width_us": pa.array(widths, pa.int64()),
                                 "series_id": pa.array(series, pa.int32())}  # fmt: skip
    for name in _ROW_COLUMNS:
        col = getattr(rows, name)
        cols[name] = pa.array(col, _TS) if name in _TS_COLUMNS else pa.array(col)
    return pa.table(cols)


def _take(points: Points, index: Array) -> Points:
    return Points(points.ts[index], points.values[index], points.good[index])


def _point(ts: Array, values: Array, good: Array, i: int) -> Points:
    return Points(ts[i : i + 1], values[i : i + 1], good[i : i + 1])


def _no_points() -> Points:
    return Points(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, bool))
