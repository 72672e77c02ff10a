"""DuckDBStore: the historian's storage, synchronous and usable without asyncio.

Writing (one thread only; see `service.py` for the thread that owns it):

1. Each batch is converted to NumPy columns and its paths resolved to series ids. A batch that
   cannot be converted (malformed path, value of no known type) is rejected alone; the rest of
   the group is still written.
2. The group is sorted by (series, ts) and duplicates within it are dropped, the last one sent
   winning.
3. A point newer than its series' high-water mark, and not between the oldest and newest of
   the points stored beyond the mark, cannot be in the table yet and is simply appended (the
   mark counts only points within the time window, now plus `max_future_s`: see
   `snapshot.py`). Other points (late, out of order, re-sent, or among stored future points)
   first DELETE any stored row with the same (series, ts), bounded by their ts and id range
   so that DuckDB's zone maps prune the scan. So writes are idempotent without a primary key, whose index check would cost an
   order of magnitude in ingest rate.
4. New series, the DELETE and the INSERT commit in one transaction. DuckDB fdatasyncs its WAL
   (or, for large inserts, the data file and then the WAL) before COMMIT returns, so a point
   is durable when `write` returns, and reopening the file replays the WAL.
5. Only then are the in-memory high-water marks and snapshot advanced. A point beyond the
   window is stored but never becomes the latest value; once the window reaches it, the
   next commit reloads its series' state from the table.

Reading uses a fresh cursor per query, so a reader in another thread never waits for the
writer: DuckDB's MVCC shows it the last committed state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from kiln.core.admission import TimeWindow
from kiln.core.clock import Clock, SystemClock
from kiln.core.errors import KilnError, QueryTooLargeError
from kiln.core.values import TagValue, ValueBatch
from kiln.historian import duck, query
from kiln.historian.maths import aggregates, analysis
from kiln.historian.maths.calendar import MAX_BUCKETS
from kiln.historian.maths.columns import (
    FLOAT,
    STRING,
    Columns,
    batch_columns,
    concat,
    decode,
    encode_values,
    kind_of,
    order_and_dedupe,
)
from kiln.historian.maths.thinning import Resolver, Thinning
from kiln.historian.maths.timeline import Points
from kiln.historian.schema import MIGRATIONS, ensure_schema
from kiln.historian.series import SeriesRegistry
from kiln.historian.snapshot import EMPTY_TS, NO_TS, Snapshot, SnapshotRows
from kiln.historian.tiers import RefreshStats, RollupTiers

_LOGGER = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")

# Each series' newest point within the window (NULLs when it has none), its oldest point
# beyond it and its newest point: what `Snapshot.load` takes. arg_max_null, not arg_max: the
# latter skips NULL arguments and would pair a string point's NULL value with an older
# point's number.
_STATE_SQL = """
SELECT series_id AS sid,
       epoch_us(max(ts) FILTER (WHERE ts <= make_timestamptz($window))) AS ts,
       arg_max_null(value, ts) FILTER (WHERE ts <= make_timestamptz($window)) AS value,
       arg_max_null(text, ts) FILTER (WHERE ts <= make_timestamptz($window)) AS text,
       arg_max_null(quality, ts) FILTER (WHERE ts <= make_timestamptz($window)) AS quality,
       epoch_us(arg_max_null(recv_ts, ts) FILTER (WHERE ts <= make_timestamptz($window))) AS recv,
       epoch_us(min(ts) FILTER (WHERE ts > make_timestamptz($window))) AS ahead,
       epoch_us(max(ts)) AS newest
FROM points {only} GROUP BY series_id
"""
_LOAD_STATE_SQL = _STATE_SQL.format(only="")
# Some series only (the id range lets DuckDB's zone maps skip the rest of the table).
_RELOAD_STATE_SQL = _STATE_SQL.format(
    only="WHERE list_contains($sids, series_id) AND series_id >= $s0 AND series_id <= $s1"
)

_DELETE_SQL = """
DELETE FROM points USING kiln_late AS l
WHERE points.series_id = l.series_id AND points.ts = l.ts
  AND points.ts >= make_timestamptz($t0) AND points.ts <= make_timestamptz($t1)
  AND points.series_id >= $s0 AND points.series_id <= $s1
"""


class StoreClosedError(KilnError):
    """The store is not open."""


@dataclass(slots=True)
class WriteStats:
    """What one `write` did."""

    batches: int = 0
    points: int = 0  # rows inserted (after dropping in-group duplicates)
    late_points: int = 0  # rows at or below their series' high-water mark (DELETE + insert)
    duplicate_points: int = 0  # dropped because a later point in the group had the same key
    compressed_points: int = 0  # dropped by the tag's compression
    new_series: int = 0
    seconds: float = 0.0
    rejected: dict[int, Exception] = field(default_factory=dict)  # batch index -> why


class DuckDBStore:
    """The historian's DuckDB database: one writer, any number of readers."""

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Clock | None = None,
        compression: Resolver | None = None,
        rollups: Sequence[int] | None = None,
        max_future_s: float = 600.0,
    ) -> None:
        """`path` None keeps the database in memory (tests, benchmarks). `compression` maps a
        tag path to how its values are compressed (None: stored as they come). `rollups`: the
        widths (µs) of the rollup tiers to keep (None: those the database has).
        `max_future_s`: how far past the clock's now a point may be and still be the latest
        value (`ingest.max_future_s`); later points are stored but never latest."""
        if max_future_s < 0:
            raise ValueError(f"max_future_s must be at least 0, got {max_future_s}")
        self.path = path
        self._clock: Clock = clock or SystemClock()
        self.max_future_s = max_future_s
        self._conn: duck.Connection | None = None
        self.series = SeriesRegistry()
        self.snapshot = Snapshot()
        self._compression = compression
        self._rollup_widths = None if rollups is None else list(rollups)
        self.rollups = RollupTiers(self._rollup_widths or [])
        self.thinning = self._new_thinning()
        self._oldest: dict[int, int] = {}  # series -> oldest stored ts, once asked for

    def _new_thinning(self) -> Thinning:
        return Thinning(
            self._compression,
            lambda sid: self.series.path(sid),
            lambda sid: self.series.kind(sid),
        )

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed), replay the WAL, and load series, marks and snapshot."""
        if self._conn is not None:
            return
        conn = self._connect()
        try:
            ensure_schema(conn, self._clock.now_us(), self._migrations())
            if self._rollup_widths is None:
                stored = conn.execute("SELECT width_us FROM rollup_tiers").fetchall()
                self.rollups = RollupTiers(int(r[0]) for r in stored)
            self.rollups.sync(conn, self._clock.now_us())
            self._load(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        _LOGGER.debug("Historian store %s open: %d series", self.where, len(self.series))

    # What a backend provides (PostgresStore overrides these).
    _load_state_sql = _LOAD_STATE_SQL
    _reload_state_sql = _RELOAD_STATE_SQL

    @property
    def where(self) -> str:
        """Where the data is, for messages."""
        return str(self.path or ":memory:")

    def _connect(self) -> duck.Connection:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(":memory:" if self.path is None else str(self.path))

    def _migrations(self) -> Mapping[int, Sequence[str]]:
        return MIGRATIONS

    def _reclaim(self, conn: duck.Connection) -> None:
        """After a large delete: make the freed space show in `disk_usage`."""
        conn.execute("CHECKPOINT")  # DuckDB frees the blocks at a checkpoint

    def _before_insert(self, conn: duck.Connection, cols: Columns) -> None:
        """Called before the transaction that inserts `cols` (PostgreSQL adds partitions)."""

    def _load(self, conn: duck.Connection) -> None:
        self.series = SeriesRegistry()
        self.snapshot = Snapshot()
        self.thinning = self._new_thinning()
        self._oldest = {}
        self.series.load(conn.execute("SELECT id, path, kind FROM series").fetchall())
        self.snapshot.grow(self.series.size)
        self._load_state(conn, self._window_us(), None)

    def _window_us(self) -> int:
        """The newest source time that counts as the present now (see `snapshot.py`)."""
        return TimeWindow.at(self._clock.now_us(), self.max_future_s).newest_us

    def _load_state(self, conn: duck.Connection, window_us: int, ids: np.ndarray | None) -> None:
        """Load the snapshot of the series `ids` (None: all) from the table, as of `window_us`."""
        if ids is None:
            state = conn.execute(self._load_state_sql, {"window": window_us}).fetchnumpy()
        else:
            params = {"window": window_us, "sids": ids.tolist(), **_id_range(ids)}
            state = conn.execute(self._reload_state_sql, params).fetchnumpy()
        if not len(state["sid"]):
            return
        self.snapshot.load(
            np.asarray(state["sid"], dtype=np.int32),
            SnapshotRows(
                ts=np.asarray(np.ma.filled(state["ts"], EMPTY_TS), dtype=np.int64),
                value=np.asarray(np.ma.filled(state["value"], 0.0), dtype=np.float64),
                text=_objects(state["text"]),
                quality=np.asarray(np.ma.filled(state["quality"], 0), dtype=np.uint32),
                recv=np.asarray(np.ma.filled(state["recv"], 0), dtype=np.int64),
            ),
            ahead=np.asarray(np.ma.filled(state["ahead"], NO_TS), dtype=np.int64),
            newest=np.asarray(state["newest"], dtype=np.int64),
        )

    def close(self, *, checkpoint: bool = True) -> None:
        """Close; with `checkpoint`, first fold the WAL into the database file."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if checkpoint and self.path is not None:
                conn.checkpoint()
        finally:
            conn.close()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def cursor(self) -> duck.Connection:
        """A new connection to the same database, for one reader thread."""
        if self._conn is None:
            raise StoreClosedError("the historian store is closed")
        return self._conn.cursor()

    # -- writing --------------------------------------------------------------------------

    def write(self, batches: Sequence[ValueBatch]) -> WriteStats:
        """Commit `batches` in one transaction; returns once they are durable.

        Batches that cannot be converted are left out and reported in `WriteStats.rejected`.
        Raises (and commits nothing) if the transaction fails.
        """
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        # perf_counter, not the injected clock: this measures real work for metrics.
        started = time.perf_counter()
        stats = WriteStats(batches=len(batches))
        parts: list[Columns] = []
        try:
            for i, batch in enumerate(batches):
                try:
                    parts.append(self._columns(batch))
                except (ValueError, TypeError, OverflowError) as err:
                    stats.rejected[i] = err
            parts = [p for p in parts if len(p)]
            if parts:
                self._commit(conn, concat(parts), stats)
            else:
                self.series.rollback()
        except BaseException:
            self.series.rollback()
            self.thinning.rollback()
            raise
        stats.seconds = time.perf_counter() - started
        return stats

    def _columns(self, batch: ValueBatch) -> Columns:
        values = encode_values(batch.values)
        mark = self.series.size
        try:
            if values.dtype_kind is not None:
                dtype_kind = values.dtype_kind
                series = self.series.resolve(batch.paths, lambda _: dtype_kind)
            else:
                raw = batch.values
                series = self.series.resolve(batch.paths, lambda i: kind_of(raw[i]))
            return batch_columns(batch, series, values)
        except BaseException:
            self.series.rollback(to=mark)  # a rejected batch creates no series
            raise

    def _commit(self, conn: duck.Connection, cols: Columns, stats: WriteStats) -> None:
        cols, stats.duplicate_points = order_and_dedupe(cols)
        self.snapshot.grow(self.series.size)
        window = self._window_us()
        due = self.snapshot.due(window)
        if len(due):
            # Stored future points the window has reached: now ordinary points (snapshot.py).
            self._load_state(conn, window, due)
        thinned = self.thinning.apply(cols, self.snapshot.hwm, window)
        cols, stats.compressed_points = thinned.columns, thinned.dropped
        late = self.snapshot.late(cols)
        stats.late_points = int(np.count_nonzero(late))
        stats.points = len(cols)
        # Rows to delete before inserting: late points' old versions, and held points that
        # compression has now dropped.
        gone_series = np.concatenate([cols.series[late], np.asarray(thinned.drop_series, np.int32)])
        gone_ts = np.concatenate([cols.ts[late], np.asarray(thinned.drop_ts, np.int64)])
        new_series = self.series.pending()
        stats.new_series = len(new_series)
        rollup_work = self.rollups.pending_of(cols, late, gone_series, gone_ts, self.series.kind)
        inputs = {"kiln_points_in": _arrow(cols)}
        if new_series:
            inputs["kiln_series_in"] = self._series_table(new_series)
        if len(gone_ts):
            inputs["kiln_late"] = pa.table(
                {"series_id": pa.array(gone_series), "ts": pa.array(gone_ts, _TS)}
            )
        if rollup_work is not None:
            inputs["kiln_rollup_work"] = rollup_work
        if len(cols):
            self._before_insert(conn, cols)
        with duck.registered(conn, inputs), duck.transaction(conn):
            if new_series:
                conn.execute("INSERT INTO series BY NAME SELECT * FROM kiln_series_in")
            if len(gone_ts):
                conn.execute(_DELETE_SQL, _bounds(gone_series, gone_ts)).fetchall()
            if len(cols):
                conn.execute("INSERT INTO points BY NAME SELECT * FROM kiln_points_in")
            if rollup_work is not None:
                # With the points, so that a crash never loses the work they need.
                conn.execute("INSERT INTO rollup_pending BY NAME SELECT * FROM kiln_rollup_work")
        self.series.commit()
        self.thinning.commit()
        self.snapshot.apply(cols, window)
        if rollup_work is not None:
            self.rollups.committed(rollup_work)
        if self._oldest and len(cols):
            # Backfills can move a series' oldest point earlier (compression never drops one).
            firsts = np.flatnonzero(np.r_[True, cols.series[1:] != cols.series[:-1]])
            for sid, ts in zip(cols.series[firsts].tolist(), cols.ts[firsts].tolist(), strict=True):
                known = self._oldest.get(sid)
                if known is not None and ts < known:
                    self._oldest[sid] = ts

    def refresh_rollups(self, *, max_series: int = 500) -> RefreshStats:
        """Bring up to `max_series` series' rollups up to date (see `tiers`). Writer only."""
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        return self.rollups.refresh(conn, self.series.kind, max_series=max_series)

    def rollups_pending(self) -> int:
        """Series whose rollups have work pending."""
        return len(self.rollups.pending)

    def _series_table(self, rows: list[tuple[int, str, str]]) -> pa.Table:
        now = self._clock.now_us()
        return pa.table(
            {
                "id": pa.array([r[0] for r in rows], pa.int32()),
                "path": pa.array([r[1] for r in rows], pa.string()),
                "kind": pa.array([r[2] for r in rows], pa.string()),
                "created_ts": pa.array([now] * len(rows), _TS),
            }
        )

    # -- reading --------------------------------------------------------------------------

    def series_kind(self, path: str) -> str | None:
        sid = self.series.id_of(path)
        return None if sid is None else self.series.kind(sid)

    def latest(
        self,
        paths: Sequence[str] | None = None,
        *,
        prefix: str | None = None,
        limit: int = 10_000,
    ) -> list[TagValue]:
        """Latest value of each tag: of `paths` (in that order) or else of every tag at or
        below `prefix`, in path order. Tags without history are left out, and at most
        `limit` values are returned (ask for one more to learn whether there were more).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if paths is not None:
            index = self.series.ids_of([paths] if isinstance(paths, str) else paths)
        else:
            index = np.asarray(self.series.under(prefix), dtype=np.int32)
        # A series never loses its snapshot, so filtering first and reading after is safe.
        index = index[self.snapshot.has_value(index)][:limit]
        rows = self.snapshot.read(index)
        ids = index.tolist()
        kinds = self.series.kinds_of(ids)
        # The common case (a float with no text) skips decode(): this runs per tag.
        values = [
            v if t is None and k == FLOAT else decode(k, v, t)
            for k, v, t in zip(kinds, rows.value.tolist(), rows.text.tolist(), strict=True)
        ]
        return list(
            map(
                TagValue,
                self.series.paths_of(ids),
                values,
                rows.ts.tolist(),
                rows.quality.tolist(),
                rows.recv.tolist(),
            )
        )

    def raw(self, path: str, start_us: int, end_us: int, *, limit: int) -> query.RawResult:
        """Stored points of `path` with start <= source ts < end, in time order."""
        sid = self.series.id_of(path)
        if sid is None:
            query.check_range(start_us, end_us)
            return query.RawResult(path, [], False)
        cur = self.cursor()
        try:
            return query.raw(cur, sid, path, self.series.kind(sid), start_us, end_us, limit)
        finally:
            cur.close()

    def aggregate(
        self,
        path: str,
        start_us: int,
        end_us: int,
        interval_us: int,
        aggs: Sequence[str],
    ) -> list[query.Bucket]:
        """Aggregates of the Good points with start <= ts < end per bucket aligned to
        multiples of `interval_us` since the epoch; empty buckets are left out.

        The event aggregates of `summarize`, on buckets cut at the range's ends (so that no
        point outside it counts) and labelled with their aligned start.
        """
        names = aggregates.check_aggregates(aggs, allowed=aggregates.EVENT)
        query.check_range(start_us, end_us)
        if interval_us < 1:
            raise ValueError(f"interval must be at least 1 microsecond, got {interval_us}")
        # The first whole bucket starts here; the one before it is cut at the range's start.
        first = start_us - start_us % interval_us + interval_us
        buckets = len(range(first, end_us, interval_us)) + 1
        if buckets > MAX_BUCKETS:
            raise QueryTooLargeError(
                f"{buckets} buckets of {interval_us} us requested; the limit is "
                f"{MAX_BUCKETS}: use a longer interval or a shorter range"
            )
        sid = self.series.id_of(path)
        if sid is None or end_us == start_us:
            return []
        edges = np.unique(np.r_[start_us, np.arange(first, end_us, interval_us), end_us])
        numeric = self.series.kind(sid) != STRING
        asked = [n for n in names if numeric or n not in aggregates.NUMERIC_ONLY]
        [got] = self.summarize([path], edges, list(dict.fromkeys([*asked, "count"])),
                               data_end_us=end_us)  # fmt: skip
        out = []
        for k, count in enumerate(got.values["count"]):
            if count:
                label = int(edges[k]) - int(edges[k]) % interval_us
                values = {n: got.values[n][k] if n in asked else None for n in names}
                out.append(query.Bucket(label, values))
        return out

    def summarize(
        self,
        paths: Sequence[str],
        edges: np.ndarray,
        names: Sequence[str],
        *,
        data_end_us: int,
        total_unit: str = "s",
    ) -> list[analysis.TagSummary]:
        """Aggregates of each tag per bucket of `edges`, all on the same buckets: from rollups
        where the buckets lie on a tier's grid, else from the raw points."""
        if len(edges) - 1 > MAX_BUCKETS:
            raise QueryTooLargeError(
                f"{len(edges) - 1} buckets requested; the limit is {MAX_BUCKETS}: "
                "use a longer interval or a shorter range"
            )
        widths = self.rollups.widths_for(edges, names)
        from_rollups: dict[str, analysis.TagSummary] = {}
        if widths:
            from_rollups = self._summarize_rollups(
                paths, widths, edges, names, data_end_us=data_end_us, total_unit=total_unit
            )
        rest = [p for p in paths if p not in from_rollups]
        timelines = self._timelines(rest, int(edges[0]), int(edges[-1])) if rest else []
        for summary in analysis.summarize_many(
            timelines, edges, names, data_end_us=data_end_us, total_unit=total_unit
        ):
            from_rollups[summary.path] = summary
        return [from_rollups[p] for p in paths]

    def _summarize_rollups(
        self,
        paths: Sequence[str],
        widths: list[int],
        edges: np.ndarray,
        names: Sequence[str],
        *,
        data_end_us: int,
        total_unit: str,
    ) -> dict[str, analysis.TagSummary]:
        by_width: dict[int, list[tuple[int, str]]] = {}
        for path in dict.fromkeys(paths):
            sid = self.series.id_of(path)
            if sid is None or self.series.kind(sid) == STRING:
                continue
            if sid < len(self.snapshot.newest) and int(self.snapshot.newest[sid]) > data_end_us:
                continue  # points after the known end: rows cannot cut there
            width = self.rollups.width_of(widths, sid)
            if width is not None:
                by_width.setdefault(width, []).append((sid, self.series.kind(sid)))
        if not by_width:
            return {}
        out: dict[str, analysis.TagSummary] = {}
        cur = self.cursor()
        try:
            cur.begin()  # one snapshot: the pending work and the rows agree
            for width, series in by_width.items():
                got = self.rollups.summaries(
                    cur, width, series, edges, names, data_end_us=data_end_us,
                    total_unit=total_unit, span=lambda sid: self._span(cur, sid),
                )  # fmt: skip
                for sid, kind in series:
                    if sid in got:
                        path = self.series.path(sid)
                        out[path] = analysis.finish(path, kind, got[sid])
            cur.rollback()
        finally:
            cur.close()
        return out

    def sample(
        self, paths: Sequence[str], times: np.ndarray, *, interpolate: bool, data_end_us: int
    ) -> list[analysis.TagSamples]:
        """Each tag's value at `times` (see `analysis.sample`)."""
        if len(times) == 0:
            return [analysis.sample(analysis.empty_points(None), p, None, times,
                                    interpolate=interpolate, data_end_us=data_end_us)
                    for p in paths]  # fmt: skip
        timelines = self._timelines(paths, int(times[0]), int(times[-1]) + 1)
        return [
            analysis.sample(
                points, path, kind, times, interpolate=interpolate, data_end_us=data_end_us
            )
            for path, kind, points in timelines
        ]

    # -- retention ----------------------------------------------------------------------

    def apply_retention(
        self,
        cutoff_of: Callable[[str], int | None],
        rollup_cutoff_of: Callable[[str], int | None] | None = None,
    ) -> tuple[int, int]:
        """Delete the points older than `cutoff_of(path)` (µs; None: keep all) of every series,
        keeping each series' newest point, and the rollup rows ending before
        `rollup_cutoff_of(path)`; returns how many points and rows were deleted. Raw deletions
        leave the rollups as they are: they outlive the points. Writer thread only."""
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        ids, cuts, rollup_ids, rollup_cuts = [], [], [], []
        for sid in range(self.series.size):
            path = self.series.path(sid)
            cutoff = cutoff_of(path)
            if cutoff is not None:
                ids.append(sid)
                cuts.append(cutoff)
            cutoff = rollup_cutoff_of(path) if rollup_cutoff_of is not None else None
            if cutoff is not None:
                rollup_ids.append(sid)
                rollup_cuts.append(cutoff)
        points = self._delete_before(conn, ids, cuts)
        rows = self.rollups.delete_before(conn, rollup_ids, rollup_cuts)
        return points, rows

    def drop_oldest(self, span_us: int) -> int:
        """Delete the points within `span_us` of the oldest stored one, of every series but
        each series' newest point (the disk limit's last resort); returns how many."""
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        (row,) = conn.execute("SELECT epoch_us(min(ts)) FROM points").fetchall()
        if row[0] is None:
            return 0
        cutoff = int(row[0]) + span_us
        ids = list(range(self.series.size))
        return self._delete_before(conn, ids, [cutoff] * len(ids))

    def _delete_before(self, conn: duck.Connection, ids: list[int], cuts: list[int]) -> int:
        if not ids:
            return 0
        # The mark, not `newest`: what is kept is the latest value, never a future point.
        newest = self.snapshot.hwm[np.asarray(ids, dtype=np.int64)]
        table = pa.table({
            "series_id": pa.array(ids, pa.int32()),
            "cutoff": pa.array(cuts, _TS),
            "newest": pa.array(newest, _TS),
        })  # fmt: skip
        with duck.registered(conn, {"kiln_cutoffs": table}):
            (row,) = conn.execute(_RETENTION_SQL).fetchall()
        deleted = int(row[0])
        if deleted:
            self._oldest.clear()  # a series' oldest point may be gone
            self._reclaim(conn)
        return deleted

    def disk_usage(self) -> DiskUsage:
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        (row,) = conn.execute(
            "SELECT block_size, used_blocks, total_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()"
        ).fetchall()
        wal = Path(f"{self.path}.wal") if self.path is not None else None
        wal_bytes = wal.stat().st_size if wal is not None and wal.exists() else 0
        file_bytes = self.path.stat().st_size if self.path is not None and self.path.exists() else 0
        return DiskUsage(int(row[0]) * int(row[1]) + wal_bytes, file_bytes + wal_bytes)

    def _span(self, cur: duck.Connection, sid: int) -> tuple[int, int] | None:
        """The oldest and newest stored timestamps of series `sid` (None: no points)."""
        newest = int(self.snapshot.newest[sid]) if sid < len(self.snapshot.newest) else None
        if newest is None or newest == EMPTY_TS:
            return None
        oldest = self._oldest.get(sid)
        if oldest is None:
            row = cur.execute(
                "SELECT epoch_us(min(ts)) FROM points WHERE series_id = $sid", {"sid": sid}
            ).fetchone()
            if row is None or row[0] is None:
                return None
            oldest = self._oldest[sid] = int(row[0])
        return oldest, newest

    def _timelines(
        self, paths: Sequence[str], start_us: int, end_us: int
    ) -> list[tuple[str, str | None, Points]]:
        """Each path, its kind (None: never stored) and its timeline over the range, read in
        one scan for all of them."""
        known = []
        for path in paths:
            sid = self.series.id_of(path)
            if sid is not None:
                known.append((sid, self.series.kind(sid)))
        cur = self.cursor()
        try:
            got = query.timelines(
                cur, known, start_us, end_us, span=lambda sid: self._span(cur, sid)
            )
            found = dict(zip(known, got, strict=True))
        finally:
            cur.close()
        out: list[tuple[str, str | None, Points]] = []
        for path in paths:
            sid = self.series.id_of(path)
            if sid is None:
                out.append((path, None, analysis.empty_points(None)))
            else:
                kind = self.series.kind(sid)
                out.append((path, kind, found[(sid, kind)]))
        return out


@dataclass(frozen=True, slots=True)
class DiskUsage:
    used_bytes: int  # blocks in use plus the WAL: what the data takes
    file_bytes: int  # the database file (DuckDB reuses freed blocks; the file does not shrink)


_RETENTION_SQL = """
DELETE FROM points USING kiln_cutoffs AS c
WHERE points.series_id = c.series_id AND points.ts < c.cutoff AND points.ts < c.newest
"""


def _arrow(cols: Columns) -> pa.Table:
    text = (
        pa.nulls(len(cols), pa.string())
        if cols.text is None
        else pa.array(cols.text, type=pa.string(), from_pandas=True)
    )
    return pa.table(
        {
            "series_id": pa.array(cols.series),
            "ts": pa.array(cols.ts, _TS),
            "value": pa.array(cols.value, mask=cols.text_mask()),
            "text": text,
            "quality": pa.array(cols.quality),
            "recv_ts": pa.array(cols.recv, _TS),
        }
    )


def _id_range(series: np.ndarray) -> dict[str, int]:
    return {"s0": int(series.min()), "s1": int(series.max())}


def _bounds(series: np.ndarray, ts: np.ndarray) -> dict[str, int]:
    """The ts and id range of the late points: constant filters DuckDB prunes row groups by."""
    return {
        "t0": int(ts.min()),
        "t1": int(ts.max()),
        "s0": int(series.min()),
        "s1": int(series.max()),
    }


def _objects(col: np.ndarray) -> np.ndarray:
    """A fetched VARCHAR column (masked where NULL) as an object array with None for NULL."""
    out = np.full(len(col), None, dtype=object)
    if np.ma.isMaskedArray(col):
        valid = ~np.ma.getmaskarray(col)
        out[valid] = np.ma.getdata(col)[valid]
    else:
        out[:] = col
    return out
