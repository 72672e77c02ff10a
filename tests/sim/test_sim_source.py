"""SimSource: one batch per tick on the real bus, aligned to the schedule, skipping when behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiln.core.bus import Overflow, Subscription
from kiln.core.platform import Platform, Stage, Status
from kiln.sim import FactorySpec, SimSource, VirtualFactory
from kiln.sim.factory import SimFrame
from kiln.testing import FakeClock
from kiln.testing.refusing_bus import RefusingBus

START_US = 1_767_225_600_000_000 + 8 * 3_600_000_000


def _platform(tmp_path: Path, spec: FactorySpec) -> tuple[Platform, FakeClock, SimSource]:
    clock = FakeClock(START_US)
    platform = Platform(clock=clock, data_dir=tmp_path)
    source = SimSource(spec)
    platform.add(source, Stage.SOURCES)
    return platform, clock, source


def _live(platform: Platform) -> Subscription:
    return platform.bus.subscribe("test", max_points=10_000_000, overflow=Overflow.DROP_OLDEST)


async def test_one_batch_per_tick_with_the_factory_frames(tmp_path: Path) -> None:
    spec = FactorySpec()
    platform, clock, source = _platform(tmp_path, spec)
    # The model can be declared before the source starts.
    assert source.factory.tag_count == spec.tag_count
    assert source.health().status is Status.STARTING
    sub = _live(platform)
    async with platform:
        for _ in range(5):
            await clock.advance(1.0)
        batches = sub.drain(10_000_000)
        assert source.ticks == 6  # tick 0, the plant at start, and one per second after it
        assert source.health().status is Status.OK
        assert source.health().detail["tags"] == spec.tag_count
    assert source.health().status is Status.STOPPED

    reference = VirtualFactory(spec, START_US - 1_000_000)
    assert len(batches) == 6
    for n, batch in enumerate(batches):
        frame = reference.step(1.0)
        tick_us = START_US + n * 1_000_000
        assert set(batch.source_us) == {tick_us}
        assert batch.receive_us == tick_us  # the fake clock stands still while the tick runs
        assert list(batch.paths) == frame.paths
        assert list(batch.values) == frame.values
        assert list(batch.qualities) == frame.qualities


async def test_ticks_follow_the_rate(tmp_path: Path) -> None:
    platform, clock, source = _platform(tmp_path, FactorySpec(rate_hz=10.0))
    sub = _live(platform)
    async with platform:
        await clock.advance(0.5)
        await clock.advance(0.55)  # a little slack for float rounding of 0.1 s steps
        batches = sub.drain(10_000_000)
    times = [b.source_us[0] for b in batches]
    assert times == [START_US + k * 100_000 for k in range(11)]
    assert source.skipped_ticks == 0


async def test_skips_ticks_when_behind_instead_of_bursting(tmp_path: Path) -> None:
    platform, clock, source = _platform(tmp_path, FactorySpec())
    # A subscriber that must see every point and holds one batch at most: while it does not
    # consume, the simulator's publish blocks, as behind a stalled historian.
    slow = platform.bus.subscribe("slow", max_points=1, overflow=Overflow.BLOCK)
    async with platform:  # tick 0 is queued
        await clock.advance(1.0)  # tick 1 waits for space
        assert source.ticks == 1
        await clock.advance(5.0)  # ticks 2-6 come and go while the publisher is blocked
        assert source.ticks == 1
        first = await slow.get()  # room for tick 1, which completes
        second = await slow.get()
        assert [first.source_us[0], second.source_us[0]] == [START_US, START_US + 1_000_000]
        # The loop now finds ticks 2-5 missed: it skips them and publishes tick 6 at once.
        third = await asyncio.wait_for(slow.get(), timeout=1.0)
        assert third.source_us[0] == START_US + 6_000_000
        assert source.skipped_ticks == 4
        health = source.health()
        assert health.status is Status.DEGRADED
        assert health.detail["skipped_ticks"] == 4
        # Back on schedule: the next tick is 7, with no catch-up burst.
        await clock.advance(1.0)
        fourth = await asyncio.wait_for(slow.get(), timeout=1.0)
        assert fourth.source_us[0] == START_US + 7_000_000
        assert source.skipped_ticks == 4
        await clock.advance(60.0)
        assert source.health().status is Status.OK
        slow.close()


async def test_a_refusing_bus_holds_the_frame_and_the_source_goes_on(tmp_path: Path) -> None:
    # A broker bus raises BusError when its broker is unreachable or its stream full: the
    # source keeps the frame, retries it with backoff, and is DEGRADED meanwhile, not dead.
    clock = FakeClock(START_US)
    bus = RefusingBus(clock)
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    source = SimSource(FactorySpec())
    platform.add(source, Stage.SOURCES)
    sub = _live(platform)
    bus.refuse_values = 2
    async with platform:  # tick 0 is refused
        assert bus.refused_values == 1
        health = source.health()
        assert health.status is Status.DEGRADED
        assert "stream is full" in str(health.detail["reason"])
        await clock.advance(0.5)  # refused again; the next wait is 1 s
        assert (bus.refused_values, source.ticks) == (2, 0)
        await clock.advance(1.0)  # tick 0 goes through, and tick 1 (due at 1 s) at once
        assert [b.source_us[0] for b in sub.drain(10_000_000)] == [START_US, START_US + 1_000_000]
        await clock.advance(0.5)
        assert [b.source_us[0] for b in sub.drain(10_000_000)] == [START_US + 2_000_000]
        health = source.health()
        assert health.status is Status.OK
        assert health.detail["bus_refusals"] == 2
        assert not platform.failed_tasks


async def test_stop_ends_the_loop(tmp_path: Path) -> None:
    platform, clock, source = _platform(tmp_path, FactorySpec())
    sub = _live(platform)
    async with platform:
        await clock.advance(2.0)
        await source.stop()
        await clock.advance(5.0)
        assert source.ticks == 3
        assert len(sub.drain(10_000_000)) == 3
        assert clock.sleepers == 0
        assert source.health().status is Status.STOPPED
        assert not platform.failed_tasks


async def test_starting_twice_is_refused(tmp_path: Path) -> None:
    platform, _, source = _platform(tmp_path, FactorySpec())
    async with platform:
        with pytest.raises(RuntimeError, match="already running"):
            await source.start(platform)


class _SlowServer:
    """A protocol server that takes 2.5 s to open and keeps every frame it is given."""

    name = "slow"
    endpoint = "memory"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.frames: list[SimFrame] = []

    def paths(self) -> frozenset[str]:
        return frozenset()

    async def start(self, platform: Platform, first: SimFrame) -> None:
        self.frames.append(first)
        await self.clock.advance(2.5)

    async def write(self, frame: SimFrame) -> None:
        self.frames.append(frame)

    async def stop(self) -> None:
        return None


async def test_servers_open_with_the_plant_at_start_and_opening_is_not_falling_behind(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START_US)
    platform = Platform(clock=clock, data_dir=tmp_path)
    server = _SlowServer(clock)
    source = SimSource(FactorySpec(), [server])
    platform.add(source, Stage.SOURCES)
    sub = _live(platform)
    async with platform:
        # The server was handed the plant at the instant the source started, before it opened.
        assert [f.time_us for f in server.frames] == [START_US]
        await clock.advance(0.5)  # 3 s after the start: the next tick
        batches = sub.drain(10_000_000)
        assert [b.source_us[0] for b in batches] == [START_US, START_US + 3_000_000]
        assert [f.time_us for f in server.frames] == [START_US, START_US + 3_000_000]
        # The ticks that passed while the server opened are neither made up nor "skipped".
        assert source.skipped_ticks == 0
        assert source.health().status is Status.OK
