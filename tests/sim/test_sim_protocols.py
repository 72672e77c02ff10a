"""The virtual factory as protocol servers, read back through Kiln's own connectors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiln.connectors.modbus.codec import Table
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.core.quality import Quality
from kiln.sim import FactorySpec, SimSource, VirtualFactory
from kiln.sim.protocols import modbus_points
from kiln.sim.servers import simulated_servers
from kiln.sim.settings import SimServeSettings

pytestmark = pytest.mark.slow


def test_modbus_layout_packs_each_filler_from_address_zero() -> None:
    factory = VirtualFactory(FactorySpec(machining_lines=0, fillers_per_line=2), 0)
    points = modbus_points(factory)
    assert {p.unit for p in points} == {1, 2}
    first = [p for p in points if p.unit == 1]
    assert [(p.name, p.spec.address, p.spec.data_type.value) for p in first][:4] == [
        ("state", 0, "uint16"),
        ("stop_reason", 1, "uint16"),
        ("power", 2, "float32"),
        ("fill_weight", 4, "float32"),
    ]
    assert all(p.spec.table is Table.HOLDING_REGISTER for p in points)
    filler_paths = {p.path for p in points}
    assert filler_paths <= set(factory.paths())
    assert not any("/cnc" in p or "/conveyor" in p for p in filler_paths)


async def test_fillers_arrive_through_the_modbus_connector(tmp_path: Path) -> None:
    spec = FactorySpec(machining_lines=0, fillers_per_line=2, rate_hz=10)
    sinks, configs = simulated_servers(spec, SimServeSettings(modbus_port=0))
    (config,) = configs
    assert isinstance(config, ModbusConfig) and len(config.devices) == 2
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    platform.add(SimSource(spec, sinks), Stage.SOURCES)
    platform.add(Connectors(configs), Stage.SOURCES)
    async with platform:
        sub = platform.bus.subscribe("t", max_points=100_000, overflow=Overflow.DROP_OLDEST)
        served = sinks[0].paths()
        seen: dict[str, int] = {}
        direct: set[str] = set()
        async with asyncio.timeout(10):
            async for batch in sub:
                for v in batch:
                    if v.path in served:
                        seen[v.path] = v.quality
                    else:
                        direct.add(v.path)
                if len(seen) == len(served) and direct:
                    break
    assert set(seen.values()) == {Quality.GOOD}
    # The conveyors are not served over Modbus: the simulator still publishes them itself,
    # and never the fillers (each value reaches the bus exactly once).
    assert direct and not direct & served


def test_kiln_sim_writes_a_plant_config_that_reads_its_servers(tmp_path: Path) -> None:
    import subprocess

    from kiln.app.settings import load_settings
    from kiln.testing.server import free_port, kiln_command

    out = tmp_path / "sim.yaml"
    proc = subprocess.Popen(
        kiln_command("sim", "--opcua-port", str(free_port()), "--modbus-port", str(free_port()),
                     "--write-config", str(out), "--log-level", "warning"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
    assert any("over modbus at modbus+tcp://127.0.0.1:" in line for line in lines), lines
    assert any("over opcua at opc.tcp://127.0.0.1:" in line for line in lines), lines
    settings = load_settings(out)
    assert [(c.name, c.type) for c in settings.connectors] == [
        ("sim-modbus", "modbus"),
        ("sim-opcua", "opcua"),
    ]


async def test_cncs_arrive_through_a_secured_opcua_channel(tmp_path: Path) -> None:
    from asyncua import Client, ua

    from kiln.connectors.opcua.config import OpcUaConfig

    spec = FactorySpec(machining_lines=1, machines_per_line=1, rate_hz=10)
    serve = SimServeSettings(opcua_port=0, opcua_pki=tmp_path / "pki")
    sinks, configs = simulated_servers(spec, serve)
    (config,) = configs
    assert isinstance(config, OpcUaConfig)
    assert (config.security_policy.value, config.security_mode.value) == (
        "Basic256Sha256",
        "SignAndEncrypt",
    )
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    platform.add(SimSource(spec, sinks), Stage.SOURCES)
    platform.add(Connectors(configs), Stage.SOURCES)
    async with platform:
        # The server offers no unsecured endpoint at all.
        probe = Client(sinks[0].endpoint)
        endpoints = await probe.connect_and_get_server_endpoints()
        assert endpoints
        assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
        sub = platform.bus.subscribe("t", max_points=100_000, overflow=Overflow.DROP_OLDEST)
        served = sinks[0].paths()
        seen: dict[str, int] = {}
        async with asyncio.timeout(20):
            async for batch in sub:
                seen.update((v.path, v.quality) for v in batch if v.path in served)
                if len(seen) == len(served):
                    break
    assert set(seen.values()) == {Quality.GOOD}
    assert (tmp_path / "pki" / "sim-server.der").is_file()
    assert (tmp_path / "pki" / "kiln-client.der").is_file()  # made by the connector
