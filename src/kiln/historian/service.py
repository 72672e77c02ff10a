"""The historian service: one writer that turns bus batches into commits, and the queries.

The writer is one task on the event loop plus one dedicated thread that owns the DuckDB write
connection (the recorder-thread pattern). The task takes a batch from its bus subscription,
then everything else already queued up to `max_batch_points` (group commit: the busier the bus,
the larger and cheaper the commits), hands the group to the thread, and after COMMIT resolves
each batch's acknowledgement (`sub.ack`, which the bus carries back to the batch's publisher as
a message). A batch is never acknowledged before its commit; a failed, cancelled or abandoned
commit fails the acknowledgements of its batches and gives them back to the bus (`retry=True`:
a broker delivers them again), and the writer carries on with the next group. Only a batch the
store refuses (`result.rejected`) is acknowledged as refused for good.

Queries run in worker threads on their own cursors, so they never wait for the writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kiln.core.bus import CommandServer, Overflow, SubscriptionClosed, ValueSubscription
from kiln.core.clock import Clock, SystemClock
from kiln.core.errors import KilnError
from kiln.core.platform import Health, Status
from kiln.core.values import TagValue, ValueBatch
from kiln.historian.commands import HISTORIAN, HistorianCommands
from kiln.historian.duck import db_errors
from kiln.historian.maths.analysis import TagSamples, TagSummary
from kiln.historian.maths.compression import CompressionStats
from kiln.historian.maths.thinning import Resolver
from kiln.historian.pg_store import PostgresStore
from kiln.historian.query import Bucket, RawResult
from kiln.historian.retention import DAY_US
from kiln.historian.store import DuckDBStore, StoreClosedError, WriteStats

if TYPE_CHECKING:
    from kiln.core.platform import Platform

_LOGGER = logging.getLogger(__name__)

# One failed commit (a full disk for a moment) degrades the historian; this many in a row mean
# the store is unusable and nothing is being recorded.
_FAILED_AFTER = 3
_DISK_WARN = 0.9  # health degrades and a warning is logged past this share of the limit
_MAX_LIMIT_ROUNDS = 30  # days dropped per housekeeping run at most


def _cutoffs(
    days_of: Callable[[str], float | None] | None, now_us: int
) -> Callable[[str], int | None]:
    """path -> the time before which its data goes, from path -> days to keep."""

    def cutoff(path: str) -> int | None:
        days = None if days_of is None else days_of(path)
        return None if days is None else now_us - round(days * DAY_US)

    return cutoff


def _retryable() -> tuple[type[Exception], ...]:
    """What housekeeping and rollups log and try again at their next turn."""
    return (*db_errors(), OSError, StoreClosedError)


class HistorianStoppedError(KilnError):
    """The writer stopped before it could commit a batch."""


def _why(err: BaseException) -> str:
    """The refusal a publisher reads in its NotDurableError."""
    return str(err) or type(err).__name__


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer since start, for health and metrics."""

    batches: int = 0
    points: int = 0
    late_points: int = 0
    duplicate_points: int = 0
    compressed_points: int = 0  # dropped by per-tag compression
    retention_deleted_points: int = 0  # deleted by retention rules
    limit_deleted_points: int = 0  # deleted because the disk limit was reached
    disk_used_bytes: int = 0
    rollup_rows_written: int = 0  # rollup rows (re)written
    rollup_points_read: int = 0  # raw points read to build them
    rollup_pending_series: int = 0  # series whose rollups have work left
    rollup_seconds_sum: float = 0.0  # time the writer spent on rollups
    rollup_deleted_rows: int = 0  # deleted by retention rules
    rejected_batches: int = 0  # batches that could not be converted (bad path or value)
    commits: int = 0
    errors: int = 0  # failed commits
    consecutive_failures: int = 0
    last_error: str | None = None
    last_batch_points: int = 0  # points in the last commit
    last_commit_seconds: float = 0.0
    commit_seconds_sum: float = 0.0
    commit_seconds_max: float = 0.0
    series: int = 0

    def record(self, result: WriteStats, series: int) -> None:
        self.batches += result.batches - len(result.rejected)
        self.points += result.points
        self.late_points += result.late_points
        self.duplicate_points += result.duplicate_points
        self.compressed_points += result.compressed_points
        self.rejected_batches += len(result.rejected)
        self.commits += 1
        self.last_batch_points = result.points
        self.last_commit_seconds = result.seconds
        self.commit_seconds_sum += result.seconds
        self.commit_seconds_max = max(self.commit_seconds_max, result.seconds)
        self.series = series


class Historian:
    """Stores every value on the bus in DuckDB and answers latest/raw/aggregate queries."""

    name = "historian"

    def __init__(
        self,
        path: Path | None,
        *,
        url: str | None = None,
        partition_days: int = 7,
        max_batch_points: int = 200_000,
        queue_points: int = 1_000_000,
        compression: Resolver | None = None,
        retention: Callable[[str], float | None] | None = None,
        disk_limit_bytes: int | None = None,
        housekeeping_s: float = 300.0,
        rollups: Sequence[int] | None = None,
        rollup_retention: Callable[[str], float | None] | None = None,
        rollup_s: float = 5.0,
        max_future_s: float = 600.0,
    ) -> None:
        """`path` None keeps the database in memory (tests); `url` (postgresql://...) keeps
        it in PostgreSQL instead, `partition_days` of points per partition. `compression`: how each tag's
        values are compressed (see `kiln.historian.maths.compression.rules_resolver`). `rollups`:
        widths (µs) of the rollup tiers, kept up to date every `rollup_s` (None: the tiers the
        database has). `max_future_s`: points later than the clock's now plus this are stored
        but never become a tag's latest value (`ingest.max_future_s`)."""
        if max_batch_points < 1 or queue_points < 1:
            raise ValueError("max_batch_points and queue_points must be at least 1")
        self.path = path
        self.url = url
        self.partition_days = partition_days
        self.max_batch_points = max_batch_points
        self.queue_points = queue_points
        self.compression = compression
        self.retention = retention
        self.disk_limit_bytes = disk_limit_bytes
        self.housekeeping_s = housekeeping_s
        self.rollups = rollups
        self.rollup_retention = rollup_retention
        self.rollup_s = rollup_s
        self.max_future_s = max_future_s
        self._roller: asyncio.Task[None] | None = None
        self._last_commit = float("-inf")  # event-loop time of the last commit
        self._disk_state = "ok"  # ok, warning (over 90 % of the limit), full
        self._housekeeper: asyncio.Task[None] | None = None
        self.stats = WriterStats()
        self._store: DuckDBStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._sub: ValueSubscription | None = None
        self._server: CommandServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._status = Status.STARTING
        self._clock: Clock = SystemClock()

    @property
    def store(self) -> DuckDBStore | None:
        """The underlying store while running (for ad-hoc reads through `store.cursor()`)."""
        return self._store

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        """Open the store in the writer thread, subscribe to the bus, start the writer."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiln-historian-writer")
        self._clock = platform.clock
        store: DuckDBStore
        if self.url is not None:
            store = PostgresStore(
                self.url, clock=platform.clock, compression=self.compression,
                rollups=self.rollups, partition_days=self.partition_days,
                max_future_s=self.max_future_s,
            )  # fmt: skip
        else:
            store = DuckDBStore(
                self.path, clock=platform.clock, compression=self.compression,
                rollups=self.rollups, max_future_s=self.max_future_s,
            )  # fmt: skip
        try:
            await asyncio.get_running_loop().run_in_executor(executor, store.open)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor, self._store = executor, store
        self.stats.series = len(store.series)
        # The storing subscriber: its acks make batches durable for their publishers.
        sub = self._sub = platform.bus.subscribe(
            "historian", max_points=self.queue_points, overflow=Overflow.BLOCK, stores=True
        )
        self._task = platform.spawn(self._write_loop(sub), name="historian-writer")
        self._server = await platform.bus.serve(HISTORIAN, HistorianCommands(self))
        self._housekeeper = platform.spawn(self._housekeeping(), name="historian-housekeeping")
        if store.rollups:
            self._roller = platform.spawn(self._rollup_loop(), name="historian-rollups")
        self._status = Status.OK

    async def stop(self) -> None:
        """Stop taking batches, commit those already queued, checkpoint and close."""
        server, self._server = self._server, None
        if server is not None:
            await server.close()
        for task in (self._housekeeper, self._roller):
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            await asyncio.wait({self._task})
        store, executor = self._store, self._executor
        if store is not None and executor is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(executor, store.close)
            finally:
                executor.shutdown(wait=True)
        self._status = Status.STOPPED

    def health(self) -> Health:
        st = self.stats
        status = self._status
        if status is Status.OK:
            writer_died = self._task is not None and self._task.done()
            if writer_died or st.consecutive_failures >= _FAILED_AFTER:
                status = Status.FAILED
            elif st.consecutive_failures or self._disk_state != "ok":
                status = Status.DEGRADED
        detail = asdict(st)
        if self.disk_limit_bytes is not None:
            detail["disk_limit_bytes"] = self.disk_limit_bytes
            detail["disk"] = self._disk_state
        if self._sub is not None:
            detail["queue_points"] = self._sub.stats.depth_points
            detail["blocked_seconds"] = self._sub.stats.blocked_seconds
        return Health(status, detail)

    # -- rollups --------------------------------------------------------------------------

    async def _rollup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rollup_s)
            try:
                await self.refresh_rollups(yield_to_writes=True)
            except _retryable() as err:
                _LOGGER.warning("Historian rollups failed (will retry): %s", err)

    async def refresh_rollups(self, *, yield_to_writes: bool = False) -> int:
        """Do all the rollup work pending now, a few hundred series per writer turn so that
        commits go on in between; returns how many series' work was done. With
        `yield_to_writes` (the background task), stop after one turn while points are
        arriving: queries read raw points where rollups lag, so writes go first."""
        store, executor = self._store, self._executor
        if store is None or executor is None:
            return 0
        loop = asyncio.get_running_loop()
        done = 0
        while True:
            started = loop.time()
            result = await loop.run_in_executor(executor, store.refresh_rollups)
            self.stats.rollup_seconds_sum += loop.time() - started
            self.stats.rollup_rows_written += result.rows
            self.stats.rollup_points_read += result.points
            done += result.series
            if not result.series or (yield_to_writes and self._writing(loop.time())):
                break
        self.stats.rollup_pending_series = store.rollups_pending()
        return done

    def _writing(self, now: float) -> bool:
        """Are points arriving: queued for the writer, or committed within the last second?"""
        queued = self._sub is not None and self._sub.stats.depth_points > 0
        return queued or now - self._last_commit < 1.0

    # -- housekeeping: retention and the disk limit ----------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.housekeeping_s)
            try:
                await self.housekeep()
            except _retryable() as err:
                _LOGGER.warning("Historian housekeeping failed (will retry): %s", err)

    async def housekeep(self) -> None:
        """Apply the retention rules, then check (and if need be enforce) the disk limit. Runs
        in the writer's thread, between commits."""
        store, executor = self._store, self._executor
        if store is None or executor is None:
            return
        loop = asyncio.get_running_loop()
        if self.retention is not None or self.rollup_retention is not None:
            now = self._clock.now_us()
            raw_cut, rollup_cut = (
                _cutoffs(self.retention, now),
                _cutoffs(self.rollup_retention, now),
            )
            deleted, rows = await loop.run_in_executor(
                executor, store.apply_retention, raw_cut, rollup_cut
            )
            self.stats.retention_deleted_points += deleted
            self.stats.rollup_deleted_rows += rows
            if deleted or rows:
                _LOGGER.info("Historian retention deleted %d points and %d rollup rows",
                             deleted, rows)  # fmt: skip
        usage = await loop.run_in_executor(executor, store.disk_usage)
        limit = self.disk_limit_bytes
        # At the limit, the oldest day of points goes (every tag's newest stays), a day at a
        # time, until the data fits: the store is bounded, like a ring buffer.
        for _ in range(_MAX_LIMIT_ROUNDS):
            if limit is None or usage.used_bytes <= limit:
                break
            dropped = await loop.run_in_executor(executor, store.drop_oldest, DAY_US)
            self.stats.limit_deleted_points += dropped
            usage = await loop.run_in_executor(executor, store.disk_usage)
            if not dropped:
                break
            _LOGGER.warning(
                "Historian reached its disk limit (%d bytes): deleted the oldest day, %d points",
                limit, dropped,
            )  # fmt: skip
        self.stats.disk_used_bytes = usage.used_bytes
        self._disk_alert(usage.used_bytes)

    def _disk_alert(self, used: int) -> None:
        limit = self.disk_limit_bytes
        state = "ok"
        if limit is not None and used > limit:
            state = "full"
        elif limit is not None and used > _DISK_WARN * limit:
            state = "warning"
        if state != self._disk_state:
            if state == "ok":
                _LOGGER.info("Historian disk use back under %d %% of its limit", _DISK_WARN * 100)
            else:
                _LOGGER.warning(
                    "Historian uses %d of its %d bytes (%s): shorten retention or raise "
                    "historian.disk_limit_bytes before the oldest data is dropped",
                    used, limit, state,
                )  # fmt: skip
        self._disk_state = state

    # -- the writer -----------------------------------------------------------------------

    async def _write_loop(self, sub: ValueSubscription) -> None:
        try:
            while True:
                try:
                    group = [await sub.get()]
                except SubscriptionClosed:
                    return
                room = self.max_batch_points - len(group[0])
                if room > 0:
                    group.extend(sub.drain(room))
                await self._commit(group)
        finally:
            # Cancelled: whatever is still queued will never be written; say so to the senders.
            sub.close()
            while True:
                left = sub.drain(self.queue_points)
                if not left:
                    break
                stopped = _why(HistorianStoppedError("the historian writer stopped"))
                for batch in left:
                    await sub.ack(batch, stopped, retry=True)

    async def _commit(self, group: list[ValueBatch]) -> None:
        store, executor = self._store, self._executor
        assert store is not None
        assert executor is not None
        sub = self._sub
        assert sub is not None
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(executor, store.write, group)
        except asyncio.CancelledError:
            stopped = "the historian stopped before the commit completed"
            for batch in group:
                await sub.ack(batch, stopped, retry=True)
            raise
        except Exception as err:
            self._failed(err, sum(map(len, group)))
            # Not stored, through no fault of the batches: a broker delivers them again (the
            # next attempt may find the database back); their senders hear of it all the same.
            for batch in group:
                await sub.ack(batch, _why(err), retry=True)
            return
        before = self.stats.rejected_batches
        self._last_commit = loop.time()
        self.stats.record(result, len(store.series))
        self.stats.rollup_pending_series = store.rollups_pending()
        for i, batch in enumerate(group):
            refused = result.rejected.get(i)
            await sub.ack(batch, None if refused is None else _why(refused))
        # A producer that keeps sending bad values would flood the log: first, then every 1000.
        if result.rejected and (
            before == 0 or before // 1000 != self.stats.rejected_batches // 1000
        ):
            _LOGGER.warning(
                "Historian rejected %d batches so far (their senders get NotDurableError), "
                "latest because: %s",
                self.stats.rejected_batches,
                next(iter(result.rejected.values())),
            )
        if self.stats.consecutive_failures:
            _LOGGER.info(
                "Historian commits recovered after %d failures", self.stats.consecutive_failures
            )
            self.stats.consecutive_failures = 0

    def _failed(self, err: Exception, points: int) -> None:
        st = self.stats
        st.errors += 1
        st.consecutive_failures += 1
        st.last_error = f"{type(err).__name__}: {err}"
        # Log the first failure of a run with its traceback; repeats would flood the log.
        if st.consecutive_failures == 1:
            _LOGGER.error(
                "Historian commit of %d points failed; senders get NotDurableError",
                points,
                exc_info=not isinstance(err, StoreClosedError),
            )
        elif st.consecutive_failures == _FAILED_AFTER:
            _LOGGER.error("Historian commits keep failing (%d in a row): %s", _FAILED_AFTER, err)

    # -- queries --------------------------------------------------------------------------

    def _reader(self) -> DuckDBStore:
        if self._store is None or not self._store.is_open:
            raise StoreClosedError("the historian is not running")
        return self._store

    async def latest(
        self,
        paths: Sequence[str] | None = None,
        *,
        prefix: str | None = None,
        limit: int = 10_000,
    ) -> list[TagValue]:
        """Latest live value of `paths` (in that order), or of every tag under `prefix`: the
        newest not beyond now plus `max_future_s` (see `snapshot.py`)."""
        store = self._reader()
        return await asyncio.to_thread(store.latest, paths, prefix=prefix, limit=limit)

    async def raw(self, path: str, start_us: int, end_us: int, *, limit: int) -> RawResult:
        """Stored points with start <= source ts < end, in time order, at most `limit`."""
        store = self._reader()
        return await asyncio.to_thread(store.raw, path, start_us, end_us, limit=limit)

    async def aggregate(
        self,
        path: str,
        start_us: int,
        end_us: int,
        interval_us: int,
        aggs: Sequence[str],
    ) -> list[Bucket]:
        """Aggregates of Good points per bucket aligned to multiples of `interval_us`.

        `aggs` is a subset of avg, min, max, count, first, last; buckets without data are
        left out. Raises ValueError for an unknown aggregate, QueryTooLargeError for too
        many buckets.
        """
        store = self._reader()
        return await asyncio.to_thread(store.aggregate, path, start_us, end_us, interval_us, aggs)

    async def summarize(
        self,
        paths: Sequence[str],
        edges: np.ndarray,
        names: Sequence[str],
        *,
        total_unit: str = "s",
    ) -> list[TagSummary]:
        """Aggregates of each tag on the buckets between `edges` (see `kiln.historian.
        aggregates`); nothing is assumed after now. ValueError for an aggregate a tag cannot
        have, QueryTooLargeError for a range too dense to summarize."""
        store = self._reader()
        data_end = min(int(edges[-1]), self._clock.now_us())
        return await asyncio.to_thread(
            store.summarize, paths, edges, names, data_end_us=data_end, total_unit=total_unit
        )

    async def sample(
        self, paths: Sequence[str], times: np.ndarray, *, interpolate: bool = True
    ) -> list[TagSamples]:
        """Each tag's value at each of `times` (ascending), interpolated or previous."""
        store = self._reader()
        data_end = self._clock.now_us()
        return await asyncio.to_thread(
            store.sample, paths, times, interpolate=interpolate, data_end_us=data_end
        )

    def compression_stats(self) -> dict[str, CompressionStats]:
        """Points offered and kept per compressed tag since start."""
        return {} if self._store is None else self._store.thinning.stats()

    def series_kind(self, path: str) -> str | None:
        """'float', 'int', 'bool' or 'string' for a stored tag, None for an unknown one."""
        return None if self._store is None else self._store.series_kind(path)
