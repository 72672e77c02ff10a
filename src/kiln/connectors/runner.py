"""Running one connector: connect, run, and when it fails, mark Bad, back off, reconnect.

The same loop for every protocol (home-assistant's update coordinator is the model): the first
failure of an outage is logged once at warning, later attempts at debug, and the recovery once
at info. One runner per connector, each its own task, so one failing device never stops another.
"""

from __future__ import annotations

import asyncio
import logging

from kiln.connectors.backoff import Backoff
from kiln.connectors.base import Connector, ConnectorConfig, ConnectorState, SourceLost
from kiln.connectors.link import Link, Outage
from kiln.core.clock import Clock
from kiln.core.quality import Quality
from kiln.core.values import TagValue

_LOGGER = logging.getLogger(__name__)


class ConnectorRunner:
    def __init__(
        self,
        config: ConnectorConfig,
        connector: Connector,
        link: Link,
        clock: Clock,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.connector = connector
        self.link = link
        self.clock = clock
        self.backoff = backoff or Backoff(config.reconnect)
        self.state = ConnectorState.CONNECTING
        self.outage: Outage | None = None
        self.connected_since_us: int | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def effective_state(self) -> ConnectorState:
        """The state, DEGRADED when connected but some of what it reads fails (a connector
        says so with a true `degraded` attribute, e.g. one Modbus unit of several is down)."""
        if self.state is ConnectorState.CONNECTED and getattr(self.connector, "degraded", False):
            return ConnectorState.DEGRADED
        return self.state

    async def run_forever(self) -> None:
        """Until cancelled. Never raises anything but CancelledError."""
        try:
            while True:
                self.state = ConnectorState.CONNECTING
                try:
                    await self.connector.setup(self.link)
                    self._connected()
                    await self.connector.run(self.link)
                    raise SourceLost("the connection ended")
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # any failure of a device is an outage
                    await self._failed(err)
                delay = self.backoff.next_delay()
                _LOGGER.debug("Connector %s: next attempt in %.1f s", self.name, delay)
                await self.clock.sleep(delay)
        finally:
            self.state = ConnectorState.STOPPED
            await self._teardown()

    def _connected(self) -> None:
        if self.outage is not None:
            _LOGGER.info(
                "Connector %s recovered after %d attempt(s) (%s)",
                self.name,
                self.outage.attempts,
                self.outage.reason,
            )
            self.link.stats.reconnects += 1
        self.outage = None
        self.backoff.reset()
        self.state = ConnectorState.CONNECTED
        self.connected_since_us = self.clock.now_us()

    async def _failed(self, err: Exception) -> None:
        reason = _describe(err)
        self.link.stats.failures += 1
        self.state = ConnectorState.ERROR
        self.connected_since_us = None
        if self.outage is None:
            self.outage = Outage(reason, self.clock.now_us())
            _LOGGER.warning(
                "Connector %s lost its source: %s; retrying with backoff (logged again on "
                "recovery)",
                self.name,
                reason,
            )
            await self._mark_bad()
        else:
            self.outage = Outage(reason, self.outage.since_us, self.outage.attempts + 1)
            _LOGGER.debug("Connector %s still failing: %s", self.name, reason)
        await self._teardown()

    async def _mark_bad(self) -> None:
        """Every tag it feeds: its last value again, Bad (not connected), at host time."""
        now = self.clock.now_us()
        fed = set(self.connector.tags)
        values = [
            TagValue(path, value, now, Quality.BAD_NOT_CONNECTED)
            for path, value in self.link.last_values().items()
            if not fed or path in fed
        ]
        try:
            await self.link.publish(values)
        except Exception:  # the bus is stopping: nothing left to tell
            _LOGGER.debug("Connector %s could not publish Bad quality", self.name, exc_info=True)

    async def _teardown(self) -> None:
        try:
            await self.connector.teardown()
        except Exception:  # teardown must not take the runner down
            _LOGGER.debug("Connector %s: teardown failed", self.name, exc_info=True)


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    kind = type(err).__name__
    if isinstance(err, SourceLost):
        return text or "source lost"
    return f"{kind}: {text}" if text else kind
