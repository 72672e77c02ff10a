"""What a running connector is handed: where its values go, its clock, its counters.

The `Link` remembers the last value of every path it carried, so that when the source is lost
the runner can publish those values again with Bad quality at host time: a lost device shows as
Bad, never as silence (a tag that just stops updating looks healthy on a screen).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from kiln.core.bus import Bus
from kiln.core.clock import Clock
from kiln.core.values import Scalar, TagValue, ValueBatch


class _AsDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The logger's level was checked before the record was lowered: check it again.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_library_logger(name: str) -> logging.Logger:
    """The logger `name` of a protocol library, with its records lowered to debug.

    Client libraries warn on every failed connection attempt; the connector runner already
    logs an outage once and its recovery once, so theirs would only repeat it, every retry.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, _AsDebug) for f in logger.filters):
        logger.addFilter(_AsDebug())
    return logger


@dataclass(slots=True)
class LinkStats:
    values: int = 0  # values published
    historical_values: int = 0
    malformed: int = 0  # inputs that could not be decoded and were dropped
    reconnects: int = 0
    failures: int = 0  # setups or runs that ended in an error


class Link:
    """The connector's side of the platform: publish values, report bad input."""

    def __init__(self, name: str, bus: Bus, clock: Clock, logger: logging.Logger) -> None:
        self.name = name
        self.clock = clock
        self.log = logger
        self.stats = LinkStats()
        self._bus = bus
        self._last: dict[str, Scalar] = {}
        self._reported: set[str] = set()
        self.last_problem: str | None = None

    async def publish(self, values: Sequence[TagValue], *, historical: bool = False) -> None:
        """Put values on the bus (waits when the historian is full: back-pressure).

        Historical values (replayed, or Sparkplug `is_historical`) are stored but never become
        the latest value, and are not remembered as the last value here either.
        """
        if not values:
            return
        await self._bus.publish(ValueBatch.of(values, self.clock.now_us(), historical=historical))
        if historical:
            self.stats.historical_values += len(values)
        else:
            self.stats.values += len(values)
            for v in values:
                self._last[v.path] = v.value

    async def publish_batch(self, batch: ValueBatch) -> None:
        """The columnar form of `publish`, for connectors that decode whole columns."""
        if not len(batch):
            return
        await self._bus.publish(batch)
        if batch.historical:
            self.stats.historical_values += len(batch)
            return
        self.stats.values += len(batch)
        for path, value in zip(batch.paths, batch.values, strict=True):
            self._last[path] = value

    def malformed(self, kind: str, detail: str) -> None:
        """Count one undecodable input and drop it; the first of each kind is logged (at
        warning), later ones only counted, so a babbling device cannot flood the log."""
        self.stats.malformed += 1
        self.last_problem = f"{kind}: {detail}"
        if kind not in self._reported:
            self._reported.add(kind)
            self.log.warning(
                "Connector %s dropped malformed input (%s): %s; further ones are only counted",
                self.name,
                kind,
                detail,
            )

    def last_values(self) -> dict[str, Scalar]:
        return dict(self._last)


class ValueColumns:
    """Values gathered column by column, for connectors that deliver many per message: cheaper
    than a TagValue each (this runs for every value a plant sends)."""

    __slots__ = ("paths", "qualities", "source_us", "values")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.values: list[Scalar] = []
        self.source_us: list[int] = []
        self.qualities: list[int] = []

    def add(self, path: str, value: Scalar, source_us: int, quality: int) -> None:
        self.paths.append(path)
        self.values.append(value)
        self.source_us.append(source_us)
        self.qualities.append(quality)

    def extend(
        self,
        paths: Sequence[str],
        values: Sequence[Scalar],
        source_us: Sequence[int],
        quality: int,
    ) -> None:
        """Add whole columns of values of one quality."""
        self.paths.extend(paths)
        self.values.extend(values)
        self.source_us.extend(source_us)
        self.qualities.extend([quality] * len(paths))

    def __len__(self) -> int:
        return len(self.paths)

    def batch(self, receive_us: int, *, historical: bool = False) -> ValueBatch:
        return ValueBatch(
            self.paths, self.values, self.source_us, self.qualities, receive_us, historical
        )


@dataclass(frozen=True, slots=True)
class Outage:
    """Why a connector is not connected, for health."""

    reason: str
    since_us: int
    attempts: int = field(default=1)
