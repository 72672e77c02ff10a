"""Publishing values through a bus that may refuse them for a while: back-pressure, not loss.

In one process a full historian queue makes `bus.publish` wait (`Overflow.BLOCK`). A broker bus
(`kiln.cluster.nats_bus.NatsBus`) cannot wait for ever: when the broker is unreachable or its
stream is full it raises `BusError` (or `BusFullError`) after its own wait. A source that meets
that must neither lose the batch nor treat it as an outage of its device (whose connection is
fine): it keeps the batch and tries again, backing off, until the bus takes it or the source is
stopped. Meanwhile the source reads nothing new, exactly as a blocked publisher in one process.

`PublishRetry` does that for one source, logs the first refusal and the recovery once, counts
the refusals, and says while it is stalled why (for the source's health).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln.core.bus.protocol import Bus, BusError
from kiln.core.clock import Clock
from kiln.core.values import ValueBatch

# The first wait after a refusal, and the longest: short enough that a broker blip costs
# little, long enough that a broker down for minutes is not hammered.
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


@dataclass(frozen=True, slots=True)
class Stall:
    """The bus has refused this source's publishes since `since_us`; `reason` is the last refusal."""

    reason: str
    since_us: int
    attempts: int = 1


class PublishRetry:
    """Publishes one source's batches, waiting out (with doubling delays) a bus that refuses."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        logger: logging.Logger,
        who: str,
        *,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._log = logger
        self._who = who
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self.refusals = 0  # publishes the bus refused (each retry counts)
        self.stalls = 0  # episodes of refusals, each ended by a publish that went through
        self.stall: Stall | None = None

    @property
    def problem(self) -> str | None:
        """While stalled, why, in words for health; None while the bus takes what is published."""
        if self.stall is None:
            return None
        return (
            f"the bus refuses values ({self.stall.reason}); holding them and retrying "
            f"(attempt {self.stall.attempts})"
        )

    async def publish(self, batch: ValueBatch) -> None:
        """Publish `batch`, retrying until the bus takes it; only cancellation ends it sooner."""
        delay = self._first_delay_s
        while True:
            try:
                await self._bus.publish(batch)
            except BusError as err:
                self._refused(err)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._max_delay_s)
                continue
            self._taken()
            return

    def _refused(self, err: BusError) -> None:
        self.refusals += 1
        stall = self.stall
        if stall is None:
            self.stalls += 1
            self.stall = Stall(str(err), self._clock.now_us())
            self._log.warning(
                "%s: the bus refused values (%s); holding them and retrying with backoff "
                "(logged again on recovery)",
                self._who,
                err,
            )
        else:
            self.stall = Stall(str(err), stall.since_us, stall.attempts + 1)
            self._log.debug("%s: the bus still refuses values: %s", self._who, err)

    def _taken(self) -> None:
        stall, self.stall = self.stall, None
        if stall is not None:
            self._log.info(
                "%s: the bus takes values again after %d refused attempt(s) (%s)",
                self._who,
                stall.attempts,
                stall.reason,
            )
