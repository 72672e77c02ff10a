from __future__ import annotations

import asyncio

from kiln.testing import FakeClock


async def test_sleepers_wake_in_deadline_order_at_exact_times() -> None:
    clock = FakeClock(start_us=0)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now_us()))

    tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in [("b", 2.0), ("a", 1.0), ("c", 5.0)]]
    await asyncio.sleep(0)
    await clock.advance(3.0)
    assert woke == [("a", 1_000_000), ("b", 2_000_000)]
    assert clock.now_us() == 3_000_000
    assert clock.sleepers == 1
    await clock.advance(2.0)
    assert woke[-1] == ("c", 5_000_000)
    await asyncio.gather(*tasks)
