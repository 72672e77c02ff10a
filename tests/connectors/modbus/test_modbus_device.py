"""The Modbus TCP connector against a real pymodbus server on loopback: register maps decoded,
exception responses as quality, write-back, and a server killed and restarted."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymodbus.server import ModbusTcpServer

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.modbus.codec import Table
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow, Subscription
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.server import free_port

pytestmark = pytest.mark.slow
PREFIX = "acme/plant1/press/line1/press7"


def float_words(x: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", x))
    return [hi, lo]


class Device:
    """A pymodbus server whose unit 1 has a known register map (addresses 0..199, coils 0..63)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.image = RegisterImage()
        self.image.define(1, Table.HOLDING_REGISTER, 0, 200)
        self.image.define(1, Table.COIL, 0, 64)
        self.server: ModbusTcpServer | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.server = modbus_server(self.image, "127.0.0.1", self.port)
        self.task = asyncio.create_task(self.server.serve_forever())
        async with asyncio.timeout(5):
            while True:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", self.port)
                    w.close()
                    await w.wait_closed()
                    return
                except OSError:
                    await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
        if self.task is not None:
            await asyncio.wait({self.task}, timeout=5)
        self.server = self.task = None

    def set(self, address: int, words: list[int]) -> None:
        self.image.set(1, Table.HOLDING_REGISTER, address, words)


def config(port: int) -> ModbusConfig:
    return ModbusConfig.model_validate({
        "name": "press7", "host": "127.0.0.1", "port": port, "timeout_s": 0.5,
        "reconnect": BackoffSettings(initial_s=0.1, max_s=0.4, jitter=False),
        "devices": [{
            "unit": 1, "prefix": PREFIX,
            "poll_groups": [
                {"interval_ms": 50, "tags": [
                    {"name": "force", "address": 0, "type": "float32"},
                    {"name": "force_raw", "address": 0, "type": "uint32"},
                    {"name": "strokes", "address": 2, "type": "uint32", "layout": "CDAB"},
                    {"name": "temp", "address": 4, "type": "int16", "scale": 0.1},
                    {"name": "setpoint", "address": 10, "type": "uint16", "writable": True},
                    {"name": "running", "address": 5, "type": "bool", "bit": 3},
                    {"name": "recipe", "address": 20, "type": "string", "count": 4},
                    {"name": "door", "table": "coil", "address": 7, "type": "bool",
                     "writable": True},
                ]},
                # A second group on its own schedule, reading past the device's map: every read
                # is answered with exception 2 (illegal data address).
                {"interval_ms": 100, "tags": [{"name": "ghost", "address": 5000}]},
            ],
        }],
    })  # fmt: skip


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - a condition of real sockets, no event to await
            await asyncio.sleep(0.02)


async def next_values(
    sub: Subscription, want: Callable[[dict[str, TagValue]], bool]
) -> dict[str, TagValue]:
    """Fold batches into the newest value per tag name until `want` holds."""
    seen: dict[str, TagValue] = {}
    async with asyncio.timeout(10):
        async for batch in sub:
            for v in batch:
                seen[v.path.rsplit("/", 1)[1]] = v
            if want(seen):
                return seen
    return seen


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    d = Device(free_port())
    d.set(0, float_words(812.5))
    d.set(2, [0x0001, 0x0002])  # CDAB: low word first -> 0x00020001
    d.set(4, [(-215) & 0xFFFF, 0b1000])
    d.set(20, [ord("P") << 8 | ord("7"), ord("-") << 8 | ord("A"), 0, 0])
    await d.start()
    yield d
    await d.stop()


async def test_register_map_quality_write_back_and_restart(
    tmp_path: Path, device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kiln.connectors")
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    service = Connectors([config(device.port)])
    platform.add(service, Stage.SOURCES)
    async with platform:
        sub = platform.bus.subscribe("t", max_points=100_000, overflow=Overflow.DROP_OLDEST)
        runner = service.runner("press7")
        seen = await next_values(sub, lambda s: "recipe" in s and "ghost" in s)
        ghost = seen.pop("ghost")
        assert {k: v.value for k, v in seen.items()} == {
            "force": 812.5, "force_raw": 0x444B2000, "strokes": 0x00020001, "temp": -21.5,
            "setpoint": 0, "running": True, "recipe": "P7-A", "door": False,
        }  # fmt: skip
        assert all(v.quality == Quality.GOOD for v in seen.values())
        # The unmapped register was never read, yet it shows Bad with the reason, at the zero
        # of its type; the device is degraded, not lost, and health names the tag and why.
        assert (ghost.value, ghost.quality) == (0, Quality.BAD_CONFIGURATION_ERROR)
        await until(lambda: runner.effective_state is ConnectorState.DEGRADED)
        problem = service.health().detail["press7"]["last_problem"]  # type: ignore[index]
        assert f"{PREFIX}/ghost" in problem and "illegal data address" in problem
        connector = runner.connector
        assert connector.requests > 0  # type: ignore[attr-defined]

        await service.write(f"{PREFIX}/setpoint", 1500)
        await service.write(f"{PREFIX}/door", True)
        assert device.image.get(1, Table.HOLDING_REGISTER, 10) == [1500]
        assert device.image.get(1, Table.COIL, 7) == [1]
        seen = await next_values(sub, lambda s: s.get("setpoint", TagValue("", 0, 0)).value == 1500)
        with pytest.raises(LookupError, match="not a writable tag"):
            await service.write(f"{PREFIX}/force", 1.0)
        with pytest.raises(ValueError, match="uint16"):
            await service.write(f"{PREFIX}/setpoint", 70_000)

        await device.stop()
        await until(lambda: runner.state is ConnectorState.ERROR)
        bad = await next_values(sub, lambda s: "force" in s)
        assert bad["force"].quality == Quality.BAD_NOT_CONNECTED and bad["force"].value == 812.5
        await asyncio.sleep(0.5)  # refused attempts while it is down

        await device.start()
        await until(lambda: runner.state is not ConnectorState.ERROR)
        good = await next_values(sub, lambda s: "force" in s)
        assert (good["force"].value, good["force"].quality) == (812.5, Quality.GOOD)
    lost = [r.getMessage() for r in caplog.records if "lost its source" in r.getMessage()]
    assert len(lost) == 1
    ghost = [r.getMessage() for r in caplog.records if "@5000" in r.getMessage()]
    assert len(ghost) == 1, "a failing request is logged once, not at every poll"
