"""The parsing pool: at most `workers` jobs run and `queue` wait; more is refused at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kiln.connectors.http.workers import BusyError, ParsePool


async def test_jobs_beyond_workers_and_queue_are_refused_and_the_pool_recovers() -> None:
    pool = ParsePool(workers=2, queue=1)
    release = threading.Event()
    started = threading.Semaphore(0)

    def job(n: int) -> int:
        started.release()
        release.wait(10)
        return n

    try:
        running = [asyncio.ensure_future(pool.run(job, n)) for n in range(3)]  # 2 run, 1 waits
        await asyncio.sleep(0)
        for _ in range(2):
            assert await asyncio.to_thread(started.acquire, True, 10)
        with pytest.raises(BusyError, match="all 2 ingest workers are busy and 1 requests"):
            await pool.run(job, 99)
        assert pool.refused == 1
        release.set()
        assert await asyncio.gather(*running) == [0, 1, 2]
        assert pool.pending == 0
        assert await pool.run(job, 7) == 7
    finally:
        release.set()
        pool.shutdown()


async def test_a_cancelled_request_holds_its_slot_until_its_thread_is_done() -> None:
    pool = ParsePool(workers=1, queue=0)
    release = threading.Event()
    try:
        task = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The thread still parses: a new job must not pile onto it.
        with pytest.raises(BusyError):
            await pool.run(int, "1")
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert await pool.run(int, "1") == 1
    finally:
        release.set()
        pool.shutdown()
