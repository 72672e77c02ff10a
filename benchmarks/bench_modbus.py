"""Modbus TCP: registers read per second by the Modbus connector against a local pymodbus server.

The server is the simulator's (`kiln.sim.modbus`), on loopback, holding 8 units of 1,000
registers. The connector polls them in groups as fast as it can (interval 1 ms, so each group
loops back to back) and decodes them into values published on the bus; the baseline is a bare
pymodbus client reading the same 125-register requests in a loop against the same server, with
nothing decoded or published. Both run in this process, alternately, for the same time.
Target (issue 4): 30,000 registers/s or more, the figure pymodbus documents for its async client.

    python -m benchmarks.bench_modbus [--quick]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from kiln.connectors.modbus.codec import Table
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.server import free_port

UNITS = 8
REGISTERS = 1_000  # per unit: 500 float32 tags


def _config(port: int) -> ModbusConfig:
    return ModbusConfig.model_validate({
        "name": "bench", "host": "127.0.0.1", "port": port, "timeout_s": 2,
        "devices": [
            {"unit": u, "prefix": f"acme/bench/m{u}", "poll_groups": [{
                "interval_ms": 10,
                "tags": [{"name": f"t{i}", "address": 2 * i, "type": "float32"}
                         for i in range(REGISTERS // 2)],
            }]}
            for u in range(1, UNITS + 1)
        ],
    })  # fmt: skip


async def _kiln(port: int, seconds: float, data: Path) -> float:
    platform = Platform(clock=SystemClock(), data_dir=data)
    service = Connectors([_config(port)])
    platform.add(service, Stage.SOURCES)
    async with platform:
        sub = platform.bus.subscribe("drain", max_points=1_000_000, overflow=Overflow.DROP_OLDEST)
        connector = service.runner("bench").connector
        await asyncio.sleep(0.5)  # connected, first polls done
        start_regs = connector.registers_read  # type: ignore[attr-defined]
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        regs = connector.registers_read - start_regs  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - started
        sub.close()
    return regs / elapsed


async def _bare(port: int, seconds: float) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    regs = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    try:
        while time.perf_counter() < deadline:
            for unit in range(1, UNITS + 1):
                for address in range(0, REGISTERS, 125):
                    count = min(125, REGISTERS - address)
                    r = await client.read_holding_registers(address, count=count, device_id=unit)
                    regs += len(r.registers)
    finally:
        client.close()
    return regs / (time.perf_counter() - started)


async def _run(quick: bool) -> dict[str, Any]:
    image = RegisterImage()
    for unit in range(1, UNITS + 1):
        image.define(unit, Table.HOLDING_REGISTER, 0, REGISTERS, 0x4141)
    port = free_port()
    server = modbus_server(image, "127.0.0.1", port)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    seconds = 1.0 if quick else 3.0
    kiln_runs, bare_runs = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
            for _ in range(1 if quick else 3):
                bare_runs.append(await _bare(port, seconds))
                kiln_runs.append(await _kiln(port, seconds, Path(tmp)))
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        await asyncio.wait({task}, timeout=5)
    kiln, bare = statistics.median(kiln_runs), statistics.median(bare_runs)
    return {
        "metric": "modbus_registers_read_per_s",
        "value": round(kiln),
        "unit": "registers/s",
        "baseline": "bare pymodbus async client reading the same 125-register requests",
        "baseline_value": round(bare),
        "ratio": round(kiln / bare, 3),
        "target": ">= 30,000 registers/s",
        "runs": [round(x) for x in kiln_runs],
        "baseline_runs": [round(x) for x in bare_runs],
        "units": UNITS,
        "registers_per_unit": REGISTERS,
    }


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    yield asyncio.run(_run(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
