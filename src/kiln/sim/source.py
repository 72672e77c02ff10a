"""The virtual factory as a data source: it steps the plant on a fixed tick and publishes.

Ticks are aligned to a schedule (start + k / rate), not to "now + period", so a slow tick does
not push every later one back. If the loop falls more than a whole period behind (a slow
subscriber blocked the bus, the machine was suspended) it skips the missed ticks instead of
replaying them in a burst, and counts them: a live plant also does not send the past twice.

The first frame (tick 0) is the plant at the instant the source starts; the protocol servers
open already holding it, so nothing the plant did not produce is ever served.

A bus that refuses a frame (a broker unreachable or full) holds the source on that frame, retried
with backoff (`kiln.core.publish_retry`), as a full queue would in one process; the ticks that
pass meanwhile are skipped and counted like any others, and health says why (DEGRADED).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from kiln.core.platform import Health, Platform, Status
from kiln.core.publish_retry import PublishRetry
from kiln.core.values import ValueBatch
from kiln.sim.factory import SimFrame, VirtualFactory
from kiln.sim.sinks import FrameSink
from kiln.sim.spec import FactorySpec

_LOGGER = logging.getLogger(__name__)

# Tolerance for float error when comparing monotonic times to the tick schedule.
_EPSILON_S = 1e-9
# How long after a skipped tick the source reports itself degraded.
_DEGRADED_FOR_S = 60.0


class SimSource:
    """A Service named "sim" that runs a `VirtualFactory` at `spec.rate_hz` frames per second."""

    name = "sim"

    def __init__(self, spec: FactorySpec, sinks: Sequence[FrameSink] = ()) -> None:
        """`sinks` serve some tags over real protocols (see `kiln.sim.sinks`); the source then
        publishes only the others itself, so each value reaches the bus exactly once."""
        self.spec = spec
        self.sinks = list(sinks)
        self._served = frozenset().union(*(s.paths() for s in self.sinks))
        self._local: list[int] | None = None  # frame indices the source publishes
        # Until start() knows the clock, a factory at time 0: its structure (types, assets,
        # paths) is the same whatever the start time, so it can be declared beforehand.
        self._factory = VirtualFactory(spec, 0)
        self._task: asyncio.Task[None] | None = None
        self._platform: Platform | None = None
        self._stopped = False
        self._behind = False
        self._last_skip_mono: float | None = None
        self._publisher: PublishRetry | None = None
        self.ticks = 0
        self.skipped_ticks = 0
        self.last_step_s = 0.0

    @property
    def factory(self) -> VirtualFactory:
        """The plant being simulated (its structure is available before start)."""
        return self._factory

    async def start(self, platform: Platform) -> None:
        if self._task is not None:
            raise RuntimeError("the simulator is already running")
        self._platform = platform
        self._stopped = False
        clock = platform.clock
        self._publisher = PublishRetry(platform.bus, clock, _LOGGER, "Simulator")
        # The tick schedule starts now, not whenever the task first gets to run: the first
        # frame is the plant at this instant (tick 0), the factory starting one period before.
        start_us, start_mono = clock.now_us(), clock.monotonic()
        self._factory = VirtualFactory(self.spec, start_us - self._period_us(1))
        first = self._factory.step_to(start_us)
        # A protocol server opens already holding the plant's first frame: a client that
        # connects at once reads values the plant produced, never a server's defaults.
        for sink in self.sinks:
            await sink.start(platform, first)
        self._task = platform.spawn(self._run(platform, first, start_mono), name="sim")
        # Let the loop reach its first sleep, so the source is ticking when start() returns.
        await asyncio.sleep(0)
        _LOGGER.info(
            "Virtual factory started: %d tags at %g Hz", self._factory.tag_count, self.spec.rate_hz
        )

    async def stop(self) -> None:
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        for sink in self.sinks:
            await sink.stop()

    def health(self) -> Health:
        detail: dict[str, object] = {
            "ticks": self.ticks,
            "skipped_ticks": self.skipped_ticks,
            "tags": self._factory.tag_count,
            "rate_hz": self.spec.rate_hz,
            "last_step_ms": round(self.last_step_s * 1000.0, 3),
        }
        if self._stopped:
            return Health(Status.STOPPED, detail)
        if self._task is None or self._platform is None:
            return Health(Status.STARTING, detail)
        if self._task.done():  # the loop ended without stop(): it failed
            return Health(Status.FAILED, detail)
        if self._publisher is not None:
            detail["bus_refusals"] = self._publisher.refusals
            if (held := self._publisher.problem) is not None:
                return Health(Status.DEGRADED, {**detail, "reason": held})
        now = self._platform.clock.monotonic()
        if self._last_skip_mono is not None and now - self._last_skip_mono < _DEGRADED_FOR_S:
            return Health(Status.DEGRADED, {**detail, "reason": "falling behind the tick rate"})
        return Health(Status.OK, detail)

    def _period_us(self, ticks: int) -> int:
        return round(ticks / self.spec.rate_hz * 1_000_000)

    async def _run(self, platform: Platform, first: SimFrame, start_mono: float) -> None:
        clock, factory, publisher = platform.clock, self._factory, self._publisher
        assert publisher is not None  # made by start(), which spawns this
        period = 1.0 / self.spec.rate_hz
        start_us = first.time_us
        # Ticks that passed while the servers opened are not made up, nor counted as skipped:
        # the plant's time goes on from the next tick.
        tick = int((clock.monotonic() - start_mono) / period + _EPSILON_S)
        await publisher.publish(self._local_batch(first, clock.now_us()))
        self.ticks += 1
        while True:
            tick += 1
            deadline = start_mono + tick * period
            delay = deadline - clock.monotonic()
            if delay > 0:
                await clock.sleep(delay)
            late = int((clock.monotonic() - deadline) / period + _EPSILON_S)
            if late > 0:
                self._skip(late, clock.monotonic())
                tick += late
            elif self._behind:
                self._behind = False
                _LOGGER.info("Simulator caught up after %d skipped ticks", self.skipped_ticks)
            started = time.perf_counter()  # the real CPU cost of a step, whatever the clock
            frame = factory.step_to(start_us + self._period_us(tick))
            self.last_step_s = time.perf_counter() - started
            for sink in self.sinks:
                await sink.write(frame)
            await publisher.publish(self._local_batch(frame, clock.now_us()))
            self.ticks += 1

    def _local_batch(self, frame: SimFrame, receive_us: int) -> ValueBatch:
        """The frame's values that no sink serves (all of them when there is no sink)."""
        if not self._served:
            paths, values, qualities = frame.paths, frame.values, frame.qualities
        else:
            if self._local is None:
                self._local = [i for i, p in enumerate(frame.paths) if p not in self._served]
            idx = self._local
            paths = [frame.paths[i] for i in idx]
            values = [frame.values[i] for i in idx]
            qualities = [frame.qualities[i] for i in idx]
        return ValueBatch(
            paths=paths,
            values=values,
            source_us=[frame.time_us] * len(paths),
            qualities=qualities,
            receive_us=receive_us,
        )

    def _skip(self, late: int, now: float) -> None:
        self.skipped_ticks += late
        self._last_skip_mono = now
        if not self._behind:
            self._behind = True
            _LOGGER.warning(
                "Simulator fell %d ticks behind its %g Hz schedule; skipping them",
                late,
                self.spec.rate_hz,
            )
