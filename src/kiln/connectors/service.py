"""The connectors of a plant as one platform service: a runner per connector, each its task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kiln.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorState,
    Reporting,
    Writable,
)
from kiln.connectors.commands import CONNECTORS, ConnectorCommands, NotWritable
from kiln.connectors.link import Link
from kiln.connectors.registry import connector_types
from kiln.connectors.runner import ConnectorRunner
from kiln.core.bus import CommandServer
from kiln.core.clock import us_to_datetime
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import Scalar, path_has_prefix
from kiln.model import tag_catalog

_LOGGER = logging.getLogger(__name__)

__all__ = ["Connectors", "NotWritable"]


class Connectors:
    """A Service named "connectors". Health is OK when every enabled connector is connected,
    DEGRADED when any is not (the platform itself is fine) or the bus refuses any one's values
    (`bus_problem` in its entry), with each one's state in detail.

    While it runs it serves the bus target "connectors" (`kiln.connectors.commands`): write-back
    and status reach the connectors from wherever the API runs. With `describe_over_bus` (a
    process without the asset model: `kiln run --role sources`) the connectors describe their
    tags as bus events, which the model applies where it runs (`kiln.model.tag_events`).
    """

    name = "connectors"

    def __init__(
        self, configs: Sequence[ConnectorConfig], *, describe_over_bus: bool = False
    ) -> None:
        names = [c.name for c in configs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"connector names must be unique: {', '.join(duplicates)}")
        self.configs = [c for c in configs if c.enabled]
        self.describe_over_bus = describe_over_bus
        self.runners: list[ConnectorRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._server: CommandServer | None = None

    async def start(self, platform: Platform) -> None:
        types = connector_types()
        # Connector tags become tags of the asset model, where there is one (in this process,
        # or in another through the bus).
        catalog = tag_catalog(platform, over_bus=self.describe_over_bus)
        for config in self.configs:
            connector = types[config.type].make(config)
            link = Link(config.name, platform.bus, platform.clock, _LOGGER, catalog=catalog)
            runner = ConnectorRunner(config, connector, link, platform.clock)
            self.runners.append(runner)
            await runner.announce(platform.started_us)
            self._tasks.append(
                platform.spawn(runner.run_forever(), name=f"connector:{config.name}")
            )
        self._server = await platform.bus.serve(CONNECTORS, ConnectorCommands(self))
        _LOGGER.info("Connectors started: %s", ", ".join(c.name for c in self.configs) or "none")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:  # first: no write may reach a connector that is stopping
            await server.close()
        tasks, self._tasks = self._tasks, []
        for runner in self.runners:
            runner.request_stop()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def health(self) -> Health:
        detail: dict[str, object] = {}
        worst = Status.OK
        for r in self.runners:
            state = r.effective_state
            entry: dict[str, object] = {"type": r.config.type, "state": state.value}
            if isinstance(r.connector, Reporting) and state is not ConnectorState.ERROR:
                entry.update(r.connector.health_detail())
            if r.outage is not None:
                entry["reason"] = r.outage.reason
                entry["since"] = us_to_datetime(r.outage.since_us).isoformat()
                entry["attempts"] = r.outage.attempts
            if r.link.stats.malformed:
                entry["malformed"] = r.link.stats.malformed
            if r.link.last_problem is not None:
                entry["last_problem"] = r.link.last_problem
            if r.link.bus_refusals:
                entry["bus_refusals"] = r.link.bus_refusals
            if (held := r.link.bus_problem) is not None:
                # The device is fine (its state says so); its values wait for the bus.
                entry["bus_problem"] = held
                worst = Status.DEGRADED
            detail[r.name] = entry
            if state is not ConnectorState.CONNECTED:
                worst = Status.DEGRADED
        return Health(worst, detail)

    def runner(self, name: str) -> ConnectorRunner:
        for r in self.runners:
            if r.name == name:
                return r
        raise LookupError(f"no connector named {name!r}")

    def writer_for(self, path: str) -> tuple[ConnectorRunner, Writable]:
        """The connector that feeds `path` and can write to it."""
        for r in self.runners:
            if isinstance(r.connector, Writable) and _feeds(r.connector, path):
                return r, r.connector
        writable = [r.name for r in self.runners if isinstance(r.connector, Writable)]
        raise NotWritable(
            f"no connector can write {path!r}; writable connectors: "
            + (", ".join(writable) or "none")
        )

    async def write(self, path: str, value: Scalar) -> str:
        """Write through the connector that owns `path`; the connector's name."""
        runner, writable = self.writer_for(path)
        await writable.write(path, value)
        return runner.name


def _feeds(connector: Connector, path: str) -> bool:
    return any(t == path or path_has_prefix(path, t) for t in connector.tags)
