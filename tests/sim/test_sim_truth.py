"""The demo tells the truth: what Kiln's connectors read from the simulated machines is what the
simulator made, over every protocol, from the first value on.

The plant is assembled as `kiln demo` assembles it (`build_platform` with a simulator served over
OPC UA, Modbus TCP and Sparkplug B, read through Kiln's own connectors into the historian). A
recording sink keeps every frame the simulator produced; a gate in front of the protocol servers
lets the test stop the plant at a frame of its choosing, so "agree with the simulator" is an exact
comparison with that frame, not a race against the next one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiln.app.assembly import build_platform
from kiln.app.settings import Settings
from kiln.connectors.modbus.codec import RegisterSpec, Table, decode, encode
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.sparkplug.codec import (
    REBIRTH_METRIC,
    Metric,
    Payload,
    decode_payload,
    encode_payload,
)
from kiln.connectors.sparkplug.codec import DataType as SpDataType
from kiln.connectors.sparkplug.topic import MessageType
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform
from kiln.core.quality import Quality, Severity, quality_name, severity
from kiln.core.values import Scalar, TagValue
from kiln.historian.service import Historian
from kiln.production.states import MachineState
from kiln.security.passwords import PasswordHasherSettings
from kiln.sim import FactorySpec, SimSource, VirtualFactory
from kiln.sim.factory import SimFrame
from kiln.sim.opcua_server import OpcUaSink
from kiln.sim.protocols import ModbusPoint, modbus_points, opcua_points
from kiln.sim.settings import SimServeSettings
from kiln.sim.sinks import FrameSink, ModbusSink, SparkplugSink
from kiln.sim.sparkplug_edge import EdgeNode
from kiln.sim.spec import ShiftSpec
from kiln.testing.mosquitto import require_shared_broker
from kiln.testing.server import free_port

pytestmark = pytest.mark.slow

BROKER_URL = "mqtt://127.0.0.1:1883"
ROUND_TRIP_US = 2_000_000  # the longest a Modbus read takes here, even on a loaded machine


@pytest.fixture
def shared_broker() -> str:
    require_shared_broker()
    return BROKER_URL


class FrameLog:
    """A sink that serves nothing and keeps every frame; put first, it sees a frame before any
    protocol server does."""

    name = "log"
    endpoint = "memory"

    def __init__(self) -> None:
        self.frames: list[SimFrame] = []
        self._more = asyncio.Event()

    async def reach(self, count: int) -> None:
        """Return once `count` frames were made."""
        while len(self.frames) < count:
            self._more.clear()
            await self._more.wait()

    def paths(self) -> frozenset[str]:
        return frozenset()

    async def start(self, platform: Platform, first: SimFrame) -> None:
        self.frames.append(first)

    async def write(self, frame: SimFrame) -> None:
        self.frames.append(frame)
        self._more.set()

    async def stop(self) -> None:
        return None


class Gate:
    """No frame passes while `held`; then frames up to `until_us` (all while it is None)."""

    held = True
    until_us: int | None = None

    def passes(self, frame: SimFrame) -> bool:
        return not self.held and (self.until_us is None or frame.time_us <= self.until_us)


class Gated:
    """A protocol server that stops getting frames when the gate closes: the plant stands still
    as far as the connectors can tell."""

    def __init__(self, sink: FrameSink, gate: Gate) -> None:
        self.sink, self.gate = sink, gate
        self.name = sink.name

    @property
    def endpoint(self) -> str:
        return self.sink.endpoint

    def paths(self) -> frozenset[str]:
        return self.sink.paths()

    async def start(self, platform: Platform, first: SimFrame) -> None:
        await self.sink.start(platform, first)

    async def write(self, frame: SimFrame) -> None:
        if self.gate.passes(frame):
            await self.sink.write(frame)

    async def stop(self) -> None:
        await self.sink.stop()


def _as_served(points: list[ModbusPoint]) -> dict[str, Callable[[Scalar], Scalar]]:
    """What a Modbus register gives back for a value: a float comes back as its float32."""

    def through(spec: RegisterSpec) -> Callable[[Scalar], Scalar]:
        return lambda value: decode(spec, [int(w) for w in encode(spec, value)])

    return {p.path: through(p.spec) for p in points}


async def test_the_demo_shows_exactly_the_plant_the_simulator_made(
    tmp_path: Path, shared_broker: str
) -> None:
    spec = FactorySpec(
        seed=42,
        rate_hz=10,
        machining_lines=1,
        machines_per_line=3,
        packaging_lines=1,
        fillers_per_line=2,
        # As `kiln demo`: a plant at work, no changeovers or breaks.
        shifts=ShiftSpec(changeover_minutes=0, break_minutes=0),
    )
    # OPC UA without certificates: the secured channel has a test of its own, and generating
    # keys only slows this one down.
    serve = SimServeSettings(modbus_port=0, opcua_port=0, mqtt_url=shared_broker)
    platform = build_platform(
        Settings(name="truth", data_dir=tmp_path, sim=spec, sim_serve=serve),
        password_settings=PasswordHasherSettings.for_tests(),
    )
    source = platform.service(SimSource)
    servers = list(source.sinks)
    kinds = {type(s) for s in servers}
    assert kinds == {OpcUaSink, ModbusSink, SparkplugSink}  # every protocol is in the test
    log, gate = FrameLog(), Gate()
    source.sinks = [log, *(Gated(s, gate) for s in servers)]
    modbus = next(s for s in servers if isinstance(s, ModbusSink))
    served_as = _as_served(modbus.points)
    served = sorted(set().union(*(s.paths() for s in servers)))
    assert served == sorted(source.factory.paths())  # every machine comes through a connector
    historian = platform.service(Historian)

    async with platform:
        latest: dict[str, TagValue] = {}

        async def refresh() -> None:
            latest.update((v.path, v) for v in await historian.latest(served))

        async def arrived(paths: set[str], timeout_s: float) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        await refresh()
                        if paths <= latest.keys():
                            return
                        await asyncio.sleep(0.1)
            except TimeoutError:
                pytest.fail(f"never arrived: {sorted(paths - latest.keys())}")

        # Warm-up with the servers held at the first frame, so that the OPC UA and Modbus
        # connectors connect and read before a second frame reaches them: the moment a
        # server's own defaults (zeros) used to be read, stamped later than the plant's first
        # values. (The Sparkplug edge node pushes: a host that missed its NBIRTH asks for a
        # rebirth at the first NDATA, after the release.)
        polled = {p for s in servers if s.name != "sparkplug" for p in s.paths()}
        await arrived(polled, 60)
        gate.held = False
        await asyncio.wait_for(log.reach(len(log.frames) + 10), 30)
        await arrived(set(served), 30)
        # Stop the plant where it is; the connectors must end up showing exactly that frame.
        truth = log.frames[-1]
        gate.until_us = truth.time_us
        where = {p: i for i, p in enumerate(truth.paths)}

        def expected(path: str, frame: SimFrame) -> Scalar:
            value = frame.values[where[path]]
            return served_as[path](value) if path in served_as else value

        def differences() -> dict[str, tuple[Scalar, Scalar]]:
            return {
                p: (latest[p].value, expected(p, truth))
                for p in served
                if latest[p].value != expected(p, truth)
            }

        try:
            async with asyncio.timeout(30):
                while True:
                    await refresh()
                    if not differences():
                        break
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pytest.fail(f"shown (left) differs from the simulator (right): {differences()}")

        states = [p for p in served if p.endswith("/state")]
        running = {p for p in states if truth.values[where[p]] == MachineState.RUNNING}
        assert running  # the comparison covers machines at work, not only idle ones
        assert {p for p in states if latest[p].value == MachineState.RUNNING} == running
        # Quality: OPC UA carries the frame's own (a failed sensor is Bad there too); every
        # value the simulator made Good shows Good whatever the protocol.
        protocol = {p: s.name for s in servers for p in s.paths()}
        for p in served:
            made_q, shown_q = truth.qualities[where[p]], latest[p].quality
            if protocol[p] == "opcua" or made_q == Quality.GOOD:
                assert shown_q == made_q, (p, quality_name(shown_q), quality_name(made_q))

        # History: no point of any served tag holds a value the simulator did not produce.
        # OPC UA carries each frame's time exactly, Sparkplug to the millisecond; Modbus has no
        # timestamps: the connector stamps a read with the time it sent the request, so the
        # frame it shows may be up to one round trip later than that.
        frames = [f for f in log.frames if f.time_us <= truth.time_us]
        stamp = {"opcua": lambda t: t, "sparkplug": lambda t: t // 1000 * 1000}
        invented: list[tuple[str, str, Scalar, int]] = []
        for path in served:
            result = await historian.raw(path, 0, 2**62, limit=100_000)
            assert result.points and not result.truncated
            made = [(f.time_us, expected(path, f)) for f in frames]
            to_stamp = stamp.get(protocol[path])
            at = {to_stamp(t): v for t, v in made} if to_stamp else {}
            for point in result.points:
                if severity(point.quality) is Severity.BAD:
                    # A Bad point (a connector's mark before the first read, or a sensor the
                    # simulator failed) is left out of every trend and aggregate: no claim.
                    continue
                if to_stamp is not None:
                    true = at.get(point.source_us, object()) == point.value
                else:
                    latest_us = point.source_us + ROUND_TRIP_US
                    true = any(t <= latest_us and v == point.value for t, v in made)
                if not true:
                    invented.append((protocol[path], path, point.value, point.source_us))
        assert not invented, f"{len(invented)} points the simulator did not make: {invented[:10]}"


# -- each server on its own: a client at the opening instant ----------------------------------

T0_US = 1_767_225_600_000_000 + 10 * 3_600_000_000  # a Thursday at 10:00 UTC, mid-shift


def _first_frame(spec: FactorySpec) -> SimFrame:
    return VirtualFactory(spec, T0_US).step(1.0)


async def test_an_opcua_client_at_the_opening_reads_the_first_frame_at_its_time(
    tmp_path: Path,
) -> None:
    # asyncua stamps a new variable's value with the time it was created; a server opened
    # before the first frame served those zeros, stamped later than the plant's first values.
    from asyncua.client.client import Client

    spec = FactorySpec(machining_lines=1, machines_per_line=2, packaging_lines=0)
    first = _first_frame(spec)
    sink = OpcUaSink(opcua_points(VirtualFactory(spec, T0_US)), "127.0.0.1", free_port())
    await sink.start(Platform(clock=SystemClock(), data_dir=tmp_path), first)
    try:
        async with Client(sink.endpoint) as client:
            nodes = [client.get_node(sink.node_id(p)) for p in first.paths]
            values = await client.read_attributes(nodes)
    finally:
        await sink.stop()
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=first.time_us)
    assert [dv.Value.Value if dv.Value else None for dv in values] == first.values
    assert {dv.SourceTimestamp for dv in values} == {when}
    assert {dv.ServerTimestamp for dv in values} == {when}


async def test_a_modbus_client_at_the_opening_reads_the_first_frame(tmp_path: Path) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    spec = FactorySpec(machining_lines=0, packaging_lines=1, fillers_per_line=1)
    first = _first_frame(spec)
    points = modbus_points(VirtualFactory(spec, T0_US))
    sink = ModbusSink(points, "127.0.0.1", free_port())
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    async with platform:
        await sink.start(platform, first)
        client = AsyncModbusTcpClient("127.0.0.1", port=sink.port)
        try:
            await client.connect()
            read: dict[str, Scalar] = {}
            for p in points:
                if p.spec.table is Table.COIL:
                    bits = await client.read_coils(p.spec.address, count=1, device_id=p.unit)
                    read[p.path] = bits.bits[0]
                else:
                    regs = await client.read_holding_registers(
                        p.spec.address, count=p.spec.width, device_id=p.unit
                    )
                    read[p.path] = decode(p.spec, regs.registers)
        finally:
            client.close()
            await sink.stop()
    where = {p: i for i, p in enumerate(first.paths)}
    served_as = _as_served(points)
    assert read == {p.path: served_as[p.path](first.values[where[p.path]]) for p in points}
    target = read[f"{spec.enterprise}/{spec.site}/packaging/line1/filling/filler1/fill_target"]
    assert isinstance(target, float) and target > 0  # a set point, not a register's 0


async def test_a_rebirth_restates_the_values_at_the_time_they_were_published(
    shared_broker: str,
) -> None:
    # The NCMD's timestamp is the host's clock; values restated at it would be "produced" at a
    # time the edge node never published them (and at 0, 1970, for a command without one).
    broker = BrokerSettings(url=shared_broker)
    group = f"kt{uuid.uuid4().hex[:10]}"
    node = EdgeNode(broker, group, "edge1")
    births: asyncio.Queue[Payload] = asyncio.Queue()
    async with broker.client() as watcher:
        await watcher.subscribe(node.topic(MessageType.NBIRTH), qos=1)

        async def watch() -> None:
            async for message in watcher.messages:
                births.put_nowait(decode_payload(bytes(message.payload)))

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watch())
            await node.connect({"speed": 1.5}, now_ms=1_000)
            await asyncio.wait_for(births.get(), 10)
            await node.publish({"speed": 2.5}, now_ms=2_000)
            rebirth = Metric(name=REBIRTH_METRIC, datatype=SpDataType.BOOLEAN, value=True)
            await watcher.publish(
                node.topic(MessageType.NCMD), encode_payload(Payload(9_000, (rebirth,))), qos=0
            )
            birth = await asyncio.wait_for(births.get(), 10)
            await node.close(now_ms=2_000)
            task.cancel()
    (speed,) = [m for m in birth.metrics if m.name == "speed"]
    assert (speed.value, speed.timestamp_ms) == (2.5, 2_000)
