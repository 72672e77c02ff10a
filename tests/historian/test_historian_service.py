"""The Historian service: acknowledgement after commit, group commit, failures, stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from historian_helpers import T0, batch, stored

from kiln.core.errors import NotDurableError
from kiln.core.platform import Platform, Stage, Status
from kiln.core.values import ValueBatch
from kiln.historian.service import Historian
from kiln.historian.store import DuckDBStore, WriteStats
from kiln.testing import FakeClock

TEMP = "acme/plant1/line1/oven/temp"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Platform, Historian]]:
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    historian = Historian(None)
    platform.add(historian, Stage.STORAGE)
    async with platform:
        yield platform, historian


def store_of(historian: Historian) -> DuckDBStore:
    assert historian.store is not None
    return historian.store


class Gate:
    """Wraps the store's write so a test can hold the writer thread inside it."""

    def __init__(self, write: Callable[[Sequence[ValueBatch]], WriteStats]) -> None:
        self._write = write
        self.entered = threading.Event()
        self.release = threading.Event()
        self.groups: list[int] = []

    def __call__(self, batches: Sequence[ValueBatch]) -> WriteStats:
        self.groups.append(len(batches))
        self.entered.set()
        self.release.wait(timeout=30)
        return self._write(batches)


async def publish_acked(platform: Platform, b: ValueBatch) -> asyncio.Task[None]:
    """Publish `b` durably in a task: awaiting the task waits for the acknowledgement."""
    acked = asyncio.ensure_future(platform.bus.publish_durable(b, timeout_s=60))
    # In-process, the batch is in the historian's queue when the task first waits (for its
    # acknowledgement), which is before this returns: batches queue in publish order.
    await asyncio.sleep(0)
    return acked


async def test_a_batch_is_acknowledged_only_after_its_commit(
    running: tuple[Platform, Historian], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, historian = running
    store = store_of(historian)
    gate = Gate(store.write)
    monkeypatch.setattr(store, "write", gate)
    waiter = await publish_acked(platform, batch([(TEMP, 1.5, T0)]))
    await asyncio.to_thread(gate.entered.wait, 30)
    # The writer holds the batch but has not committed: no ack, nothing visible.
    await asyncio.sleep(0)
    assert not waiter.done()
    assert (await historian.raw(TEMP, T0, T0 + 1, limit=10)).points == []
    gate.release.set()
    await waiter
    # Once acknowledged, the point is queryable at once.
    result = await historian.raw(TEMP, T0, T0 + 1, limit=10)
    assert [p.value for p in result.points] == [1.5]
    assert [v.value for v in await historian.latest([TEMP])] == [1.5]
    assert historian.series_kind(TEMP) == "float"


async def test_queued_batches_are_committed_together(
    running: tuple[Platform, Historian], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, historian = running
    store = store_of(historian)
    gate = Gate(store.write)
    monkeypatch.setattr(store, "write", gate)
    first = await publish_acked(platform, batch([(TEMP, 0.0, T0)]))
    await asyncio.to_thread(gate.entered.wait, 30)
    later = [await publish_acked(platform, batch([(TEMP, float(i), T0 + i)])) for i in range(1, 6)]
    gate.release.set()
    for b in [first, *later]:
        await b
    assert gate.groups == [1, 5]
    assert historian.stats.commits == 2
    assert historian.stats.batches == 6
    assert historian.stats.points == 6
    assert historian.stats.last_batch_points == 5


async def test_a_failed_commit_is_not_acknowledged_and_the_writer_goes_on(
    running: tuple[Platform, Historian], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, historian = running
    store = store_of(historian)
    real_write = store.write
    failures = iter([OSError("disk full")])

    def flaky(batches: Sequence[ValueBatch]) -> WriteStats:
        err = next(failures, None)
        if err is not None:
            raise err
        return real_write(batches)

    monkeypatch.setattr(store, "write", flaky)
    lost = await publish_acked(platform, batch([(TEMP, 1.0, T0)]))
    with pytest.raises(NotDurableError, match="disk full"):
        await lost
    health = historian.health()
    assert health.status is Status.DEGRADED
    assert health.detail["last_error"] == "OSError: disk full"
    kept = await publish_acked(platform, batch([(TEMP, 2.0, T0 + 1)]))
    await kept
    assert historian.health().status is Status.OK
    assert historian.stats.errors == 1
    assert stored(store, TEMP) == [(T0 + 1, 2.0)]


async def test_a_store_closed_underneath_fails_each_batch_without_stopping_the_writer(
    running: tuple[Platform, Historian],
) -> None:
    platform, historian = running
    store_of(historian).close()
    for i in range(3):
        b = await publish_acked(platform, batch([(TEMP, 1.0, T0 + i)]))
        with pytest.raises(NotDurableError, match="closed"):
            await b
        assert historian.health().status is (Status.DEGRADED if i < 2 else Status.FAILED)
    assert historian.stats.errors == 3
    assert "task:historian-writer" not in platform.health()


async def test_a_bad_batch_is_refused_and_its_neighbours_are_stored(
    running: tuple[Platform, Historian], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, historian = running
    store = store_of(historian)
    gate = Gate(store.write)
    monkeypatch.setattr(store, "write", gate)
    blocker = await publish_acked(platform, batch([(TEMP, 0.0, T0)]))
    await asyncio.to_thread(gate.entered.wait, 30)
    bad = await publish_acked(
        platform,
        ValueBatch(paths=[TEMP], values=[None], source_us=[T0 + 1], qualities=[0], receive_us=T0),
    )
    good = await publish_acked(platform, batch([(TEMP, 2.0, T0 + 2)]))
    gate.release.set()
    await blocker
    await good
    with pytest.raises(NotDurableError, match="None"):
        await bad
    assert historian.stats.rejected_batches == 1
    assert historian.health().status is Status.OK


async def test_stop_commits_what_is_queued_and_reopen_finds_it(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    historian = Historian(path, max_batch_points=10)
    platform.add(historian, Stage.STORAGE)
    acked: list[asyncio.Task[None]] = []
    async with platform:
        assert historian.health().status is Status.OK
        for i in range(20):
            acked.append(await publish_acked(platform, batch([(TEMP, float(i), T0 + i)])))
    assert historian.health().status is Status.STOPPED
    assert not path.with_name(path.name + ".wal").exists()  # stop checkpointed
    for b in acked:
        await b
    assert historian.stats.points == 20
    assert historian.stats.commits >= 2  # max_batch_points bounds each group

    again = Platform(clock=FakeClock(), data_dir=tmp_path)
    reopened = Historian(path)
    again.add(reopened, Stage.STORAGE)
    async with again:
        assert reopened.stats.series == 1
        result = await reopened.raw(TEMP, T0, T0 + 100, limit=100)
        assert [p.value for p in result.points] == [float(i) for i in range(20)]
        assert [v.source_us for v in await reopened.latest(prefix="acme")] == [T0 + 19]
        buckets = await reopened.aggregate(TEMP, T0, T0 + 20, 10, ["count", "last"])
        assert [b.values for b in buckets] == [
            {"count": 10, "last": 9.0},
            {"count": 10, "last": 19.0},
        ]


async def test_queries_need_a_running_historian() -> None:
    historian = Historian(None)
    assert historian.health().status is Status.STARTING
    assert historian.series_kind(TEMP) is None
    with pytest.raises(Exception, match="not running"):
        await historian.latest()


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Historian(None, max_batch_points=0)
