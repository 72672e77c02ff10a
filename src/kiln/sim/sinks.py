"""Where the simulator's frames go besides the bus: protocol servers that machines would be.

A `FrameSink` gets every frame of the virtual factory and updates what it serves (a Modbus
register image, an OPC UA address space, a Sparkplug edge node). Sinks are pure updates on the
event loop; their servers run in tasks of their own.

A sink never serves a value the plant did not produce: it opens with the plant's first frame
already in place (no register, variable or metric holds a server's default, such as 0, for a
client that connects early), and every value keeps the time of the frame that made it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import aiomqtt
from pymodbus.server import ModbusTcpServer

from kiln.connectors.modbus.codec import encode
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.core.platform import Platform
from kiln.sim.factory import SimFrame
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.sim.protocols import ModbusPoint
from kiln.sim.sparkplug_edge import EdgeNode

_LOGGER = logging.getLogger(__name__)


class FrameSink(Protocol):
    name: str

    @property
    def endpoint(self) -> str:
        """Where clients reach it (for people: logs and `kiln sim`)."""
        ...

    def paths(self) -> frozenset[str]:
        """The tag paths it serves (the simulator then does not publish them itself)."""
        ...

    async def start(self, platform: Platform, first: SimFrame) -> None:
        """Open for clients, already serving `first`, the plant's first frame."""
        ...

    async def write(self, frame: SimFrame) -> None: ...

    async def stop(self) -> None: ...


class ModbusSink:
    """The fillers as Modbus TCP devices: one register image, one pymodbus server."""

    name = "modbus"

    def __init__(self, points: list[ModbusPoint], host: str, port: int) -> None:
        self.points = points
        self.host = host
        self.port = port
        # Empty until the first frame: an address exists only once the plant has written it.
        self.image = RegisterImage()
        self._index: list[tuple[int, ModbusPoint]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: ModbusTcpServer | None = None

    @property
    def endpoint(self) -> str:
        return f"modbus+tcp://{self.host}:{self.port}"

    def paths(self) -> frozenset[str]:
        return frozenset(p.path for p in self.points)

    async def start(self, platform: Platform, first: SimFrame) -> None:
        await self.write(first)
        server = modbus_server(self.image, self.host, self.port)
        self._server = server
        self._task = platform.spawn(server.serve_forever(), name="sim-modbus-server")
        await _listening(self.host, self.port)
        _LOGGER.debug(
            "Simulated Modbus TCP server on %s:%d: %d tags on %d unit ids",
            self.host, self.port, len(self.points), len({p.unit for p in self.points}),
        )  # fmt: skip

    async def write(self, frame: SimFrame) -> None:
        if self._index is None:
            where = {path: i for i, path in enumerate(frame.paths)}
            self._index = [(where[p.path], p) for p in self.points]
        values = frame.values
        for i, p in self._index:
            value = values[i]
            try:
                words = encode(p.spec, value)
            except ValueError:
                # Out of the register's range (a counter past 2**32): keep the last value, or
                # (in a first frame) leave the address undefined: exception 2, not a made-up 0.
                continue
            self.image.set(p.unit, p.spec.table, p.spec.address, [int(w) for w in words])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task}, timeout=5)


async def _listening(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Return once a TCP server accepts on host:port, so that connectors started right after
    find it up (and do not log an outage of a server that was only starting)."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return


class SparkplugSink:
    """The conveyors as a Sparkplug B edge node on an MQTT broker.

    Group `group_id`, edge node `edge_node_id`; each metric is named by its path below
    `prefix` (folders with '/', as Sparkplug allows), so a host with the path template
    `<prefix>/{metric}` puts it back where the simulator has it.
    """

    name = "sparkplug"

    def __init__(
        self, paths: list[str], prefix: str, broker: BrokerSettings, group_id: str, node_id: str
    ) -> None:
        self._paths = paths
        self.prefix = prefix
        self.node = EdgeNode(broker, group_id, node_id)
        self._index: list[tuple[int, str]] | None = None
        self._connected = False
        self._failing = False
        self._last_ms = 0

    @property
    def endpoint(self) -> str:
        return f"{self.node.broker.url} (group {self.node.group_id})"

    def paths(self) -> frozenset[str]:
        return frozenset(self._paths)

    async def start(self, platform: Platform, first: SimFrame) -> None:
        await self.write(first)  # connects: the first frame's values are the NBIRTH's

    async def write(self, frame: SimFrame) -> None:
        if self._index is None:
            where = {path: i for i, path in enumerate(frame.paths)}
            cut = len(self.prefix) + 1
            self._index = [(where[p], p[cut:]) for p in self._paths]
        metrics = {name: frame.values[i] for i, name in self._index}
        now_ms = frame.time_us // 1000  # Sparkplug timestamps are milliseconds (6.4.1)
        self._last_ms = now_ms
        try:
            if not self._connected:
                await self.node.connect(metrics, now_ms)
                self._connected = True
            else:
                await self.node.publish(metrics, now_ms)
        except (aiomqtt.MqttError, OSError) as err:
            self._connected = False
            if not self._failing:
                self._failing = True
                _LOGGER.warning("Simulated Sparkplug edge node cannot publish: %s", err)
            return
        if self._failing:
            self._failing = False
            _LOGGER.info("Simulated Sparkplug edge node publishing again")

    async def stop(self) -> None:
        if self._connected:
            await self.node.close(now_ms=self._last_ms)
            self._connected = False
