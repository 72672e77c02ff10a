"""Time is injected: every subsystem gets a Clock instead of calling time or datetime itself.

Tests pass `kiln.testing.FakeClock` and drive delays, shift boundaries and backoff exactly.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Wall-clock time as microseconds since the Unix epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for intervals and timeouts."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now_us(self) -> int:
        return time.time_ns() // 1000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def now(clock: Clock) -> datetime:
    return us_to_datetime(clock.now_us())


def us_to_datetime(us: int) -> datetime:
    # Integer arithmetic: float seconds would lose microseconds for present-day timestamps.
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {dt.isoformat()} has no time zone; Kiln stores UTC instants")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
