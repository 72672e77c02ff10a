"""The Modbus TCP connector: one connection, poll groups on their own schedules, one batch per
tick, exception responses and timeouts as quality, write-back with the same encoding.

Quality per request (MODBUS Application Protocol V1.1b3, 7 "Exception codes"):
an exception response marks the values of that request Bad with a sub-status that says why, a
timeout marks them Bad (timeout), a truncated answer is counted as malformed and marks them Bad
(communication error). Only a broken TCP connection is an outage: the runner then reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from kiln.connectors.base import SourceLost
from kiln.connectors.link import Link, quiet_library_logger
from kiln.connectors.modbus.codec import RegisterSpec, Table, encode
from kiln.connectors.modbus.config import ModbusConfig, ModbusDevice, ModbusTag, PollGroup
from kiln.connectors.modbus.plan import ReadRequest, plan_reads, split
from kiln.core.quality import Quality
from kiln.core.values import Scalar, TagValue
from kiln.model import DescribedTag

_LOGGER = logging.getLogger(__name__)
quiet_library_logger("pymodbus.logging")

# Exception codes (section 7) and the quality they leave a value with.
_EXCEPTION_QUALITY = {
    1: Quality.BAD_CONFIGURATION_ERROR,  # ILLEGAL FUNCTION
    2: Quality.BAD_CONFIGURATION_ERROR,  # ILLEGAL DATA ADDRESS: the register map is wrong
    3: Quality.BAD_CONFIGURATION_ERROR,  # ILLEGAL DATA VALUE
    4: Quality.BAD_DEVICE_FAILURE,  # SERVER DEVICE FAILURE
    6: Quality.BAD_DEVICE_FAILURE,  # SERVER DEVICE BUSY
    10: Quality.BAD_NO_COMMUNICATION,  # GATEWAY PATH UNAVAILABLE
    11: Quality.BAD_NO_COMMUNICATION,  # GATEWAY TARGET DEVICE FAILED TO RESPOND
}
_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class _Group:
    """A poll group, planned: its read requests and which paths each spec feeds."""

    device: ModbusDevice
    interval_s: float
    requests: tuple[ReadRequest, ...]
    paths: dict[RegisterSpec, tuple[str, ...]]


class ModbusConnector:
    def __init__(self, config: ModbusConfig) -> None:
        self.config = config
        self._groups = [_plan(d, g) for d in config.devices for g in d.poll_groups]
        self._writable: dict[str, tuple[ModbusDevice, ModbusTag]] = {
            f"{d.prefix}/{t.name}": (d, t)
            for d in config.devices
            for g in d.poll_groups
            for t in g.tags
            if t.writable
        }
        self._tags = [p for g in self._groups for paths in g.paths.values() for p in paths]
        self._client: AsyncModbusTcpClient | None = None
        self._failing: set[tuple[int, str, int]] = set()  # (unit, table, address) now Bad
        self.requests = 0  # for metrics and benchmarks
        self.registers_read = 0

    @property
    def tags(self) -> Sequence[str]:
        return self._tags

    def described_tags(self) -> list[DescribedTag]:
        """The register map as tags of the asset model: type, unit, description."""
        return [
            DescribedTag(f"{d.prefix}/{t.name}", t.data_type(), t.unit, t.description)
            for d in self.config.devices
            for g in d.poll_groups
            for t in g.tags
        ]

    async def setup(self, link: Link) -> None:
        client = AsyncModbusTcpClient(
            self.config.host,
            port=self.config.port,
            timeout=self.config.timeout_s,
            retries=0,  # the runner owns retrying; pymodbus must not retry or reconnect alone
            reconnect_delay=0,
            name=self.config.name,
        )
        if not await client.connect():
            client.close()
            raise ConnectionRefusedError(
                f"no Modbus TCP server at {self.config.host}:{self.config.port}"
            )
        self._client = client

    async def run(self, link: Link) -> None:
        client = self._client
        if client is None:
            raise SourceLost("not connected")
        async with asyncio.TaskGroup() as tg:
            for group in self._groups:
                tg.create_task(self._poll(client, group, link))

    async def teardown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _poll(self, client: AsyncModbusTcpClient, group: _Group, link: Link) -> None:
        """Tick on a schedule (start + k * interval), skipping ticks that were missed."""
        clock = link.clock
        start = clock.monotonic()
        tick = 0
        while True:
            values: list[TagValue] = []
            for request in group.requests:
                values.extend(await self._read(client, group, request, link))
                _raise_if_cancelled()
            await link.publish(values)
            tick += 1
            now = clock.monotonic()
            behind = int((now - start) / group.interval_s) - tick
            if behind > 0:
                tick += behind  # a slow device: skip, do not burst
            await clock.sleep(max(0.0, start + tick * group.interval_s - clock.monotonic()))

    async def _read(
        self, client: AsyncModbusTcpClient, group: _Group, request: ReadRequest, link: Link
    ) -> list[TagValue]:
        unit = group.device.unit
        key = (unit, request.table.value, request.address)
        try:
            response = await _read_table(client, request, unit)
        except ConnectionException as err:
            raise SourceLost(f"connection lost: {_plain(err)}") from None
        except (ModbusIOException, TimeoutError) as err:
            if not client.connected:
                raise SourceLost(f"connection lost: {_plain(err)}") from None
            return await self._bad(
                group, request, link, key, Quality.BAD_TIMEOUT, "no answer in time"
            )
        except ModbusException as err:
            return await self._bad(
                group, request, link, key, Quality.BAD_COMMUNICATION_ERROR, str(err)
            )
        self.requests += 1
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            quality = _EXCEPTION_QUALITY.get(code, Quality.BAD)
            why = f"exception {code} ({_EXCEPTION_NAMES.get(code, 'unknown')})"
            return await self._bad(group, request, link, key, quality, why)
        words = response.bits if request.table.is_bit else response.registers
        try:
            decoded = split(request, words)
        except ValueError as err:
            link.malformed(
                "response", f"unit {unit} {request.table.value}@{request.address}: {err}"
            )
            return await self._bad(
                group, request, link, key, Quality.BAD_COMMUNICATION_ERROR, "truncated answer"
            )
        self.registers_read += request.count
        # Stamped when the answer arrived: the device sampled the value before then, never
        # after, so a value never carries a time earlier than the state it shows.
        now = link.clock.now_us()
        if key in self._failing:
            self._failing.discard(key)
            if not self._failing:
                link.last_problem = None
            _LOGGER.info(
                "Connector %s: unit %d %s@%d answers again",
                self.config.name, unit, request.table.value, request.address,
            )  # fmt: skip
        return [
            TagValue(path, value, now, Quality.GOOD)
            for spec, value in decoded
            for path in group.paths[spec]
        ]

    async def _bad(
        self,
        group: _Group,
        request: ReadRequest,
        link: Link,
        key: tuple[int, str, int],
        quality: int,
        why: str,
    ) -> list[TagValue]:
        """Mark the tags of a request that failed Bad, read before or not (the other requests
        of the device go on); logged once until it answers again."""
        paths = [path for spec in request.specs for path in group.paths[spec]]
        if key not in self._failing:
            self._failing.add(key)
            _LOGGER.warning(
                "Connector %s: unit %d %s@%d..%d failed: %s (values Bad until it answers)",
                self.config.name, key[0], key[1], request.address,
                request.address + request.count - 1, why,
            )  # fmt: skip
        more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        link.last_problem = f"{paths[0]}{more}: unit {key[0]} {key[1]}@{request.address}: {why}"
        await link.mark(paths, quality)
        return []

    @property
    def degraded(self) -> bool:
        return bool(self._failing)

    async def write(self, path: str, value: Scalar) -> None:
        entry = self._writable.get(path)
        if entry is None:
            raise LookupError(
                f"{path!r} is not a writable tag of Modbus connector {self.config.name}"
            )
        client = self._client
        if client is None or not client.connected:
            raise ConnectionError(f"Modbus connector {self.config.name} is not connected")
        device, tag = entry
        spec = tag.spec()
        words = encode(spec, value)
        if spec.table is Table.COIL:
            response = await client.write_coil(spec.address, bool(words[0]), device_id=device.unit)
        elif len(words) == 1:  # 6.6 Write Single Register
            response = await client.write_register(
                spec.address, int(words[0]), device_id=device.unit
            )
        else:  # 6.12 Write Multiple Registers
            response = await client.write_registers(
                spec.address, [int(w) for w in words], device_id=device.unit
            )
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            raise ValueError(
                f"unit {device.unit} refused the write to {path}: exception {code} "
                f"({_EXCEPTION_NAMES.get(code, 'unknown')})"
            )


def _plan(device: ModbusDevice, group: PollGroup) -> _Group:
    paths: dict[RegisterSpec, list[str]] = {}
    for tag in group.tags:
        paths.setdefault(tag.spec(), []).append(f"{device.prefix}/{tag.name}")
    requests = plan_reads(paths, max_gap=group.max_gap)
    return _Group(
        device,
        group.interval_ms / 1000,
        tuple(requests),
        {spec: tuple(p) for spec, p in paths.items()},
    )


async def _read_table(client: AsyncModbusTcpClient, r: ReadRequest, unit: int) -> ModbusPDU:
    """One read request with the function code of its table (6.1 to 6.4)."""
    match r.table:
        case Table.COIL:
            return await client.read_coils(r.address, count=r.count, device_id=unit)
        case Table.DISCRETE_INPUT:
            return await client.read_discrete_inputs(r.address, count=r.count, device_id=unit)
        case Table.HOLDING_REGISTER:
            return await client.read_holding_registers(r.address, count=r.count, device_id=unit)
        case Table.INPUT_REGISTER:
            return await client.read_input_registers(r.address, count=r.count, device_id=unit)


def _raise_if_cancelled() -> None:
    """Raise the cancellation of this poll task if pymodbus returned an answer in its stead.

    pymodbus waits for an answer with `asyncio.wait_for`, which under Python 3.11 returns the
    answer when it arrives in the same turn of the loop as a cancellation, and the cancellation
    is lost (python/cpython#86296, gone in 3.12). A stopping connector's poll task then polled
    on for ever, and the stop waited for it. `Task.cancelling()` still counts the request; only
    the connector's TaskGroup cancels its poll tasks, so a count always means: end now.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _plain(err: Exception) -> str:
    """pymodbus's words without its decoration ("Modbus Error: [Connection] Not connected
    [AsyncModbusTcpClient host:port]"): the runner names the endpoint itself."""
    text = str(getattr(err, "string", "") or err)
    text = re.sub(r"^\[[\w/ ]+\]\s*", "", text)  # the exception class's own label
    text = re.sub(r"\[\w+ [^\]]*\]$", "", text).strip()  # the client's name and address
    if text:
        return text[0].lower() + text[1:]
    return "no answer in time" if isinstance(err, TimeoutError) else type(err).__name__
