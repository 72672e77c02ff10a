"""A clock that only moves when a test moves it."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FakeClock:
    """Satisfies `kiln.core.clock.Clock`. `sleep()` returns only when `advance()` passes its deadline."""

    def __init__(self, start_us: int = 1_767_225_600_000_000) -> None:  # 2026-01-01T00:00:00Z
        self._now_us = start_us
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_us(self) -> int:
        return self._now_us

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        return sum(1 for *_, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order and letting each one run."""
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now_us += round((deadline - self._mono) * 1_000_000)
            self._mono = deadline
            if not fut.done():
                fut.set_result(None)
            # Let the woken task run (and perhaps sleep again) before waking the next one.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now_us += round((target - self._mono) * 1_000_000)
        self._mono = target
        for _ in range(5):
            await asyncio.sleep(0)
