"""A Modbus TCP server (pymodbus) over a register image that the simulator (or a test) writes.

`RegisterImage` is the datastore: per unit id, the four tables of the data model (MODBUS
Application Protocol V1.1b3, 4.3) with the address ranges a device really has. A read of an
address outside them is answered with exception 2, ILLEGAL DATA ADDRESS (7), as a real PLC does,
and a write to a discrete input or an input register is refused the same way. Clients' writes
are kept, so write-back can be checked by reading the image.

pymodbus 3.x calls its datastore through `async_getValues` / `async_setValues` / `device_ids`;
the image implements that interface and is installed as the server's context.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice

from kiln.connectors.modbus.codec import Table

# Function codes (6.x) to the table they address and whether they write.
_FUNCTIONS: dict[int, tuple[Table, bool]] = {
    1: (Table.COIL, False),
    2: (Table.DISCRETE_INPUT, False),
    3: (Table.HOLDING_REGISTER, False),
    4: (Table.INPUT_REGISTER, False),
    5: (Table.COIL, True),
    6: (Table.HOLDING_REGISTER, True),
    15: (Table.COIL, True),
    16: (Table.HOLDING_REGISTER, True),
    22: (Table.HOLDING_REGISTER, True),  # mask write
    23: (Table.HOLDING_REGISTER, True),  # read/write multiple
}


class RegisterImage:
    """The registers and bits of some Modbus devices, by unit id."""

    def __init__(self) -> None:
        self._data: dict[tuple[int, Table], dict[int, int]] = {}
        self.writes: list[tuple[int, Table, int, list[int]]] = []  # (unit, table, address, values)

    def define(self, unit: int, table: Table, address: int, count: int, value: int = 0) -> None:
        """Make `count` addresses from `address` exist, all `value`."""
        cells = self._data.setdefault((unit, table), {})
        for a in range(address, address + count):
            cells[a] = value

    def set(self, unit: int, table: Table, address: int, values: Iterable[int]) -> None:
        """Write words (or 0/1 bits) at `address`, defining the addresses if needed."""
        cells = self._data.setdefault((unit, table), {})
        for i, v in enumerate(values):
            cells[address + i] = int(v)

    def get(self, unit: int, table: Table, address: int, count: int = 1) -> list[int]:
        cells = self._data.get((unit, table), {})
        return [cells[a] for a in range(address, address + count)]

    # -- the pymodbus datastore interface ------------------------------------------------

    def device_ids(self) -> list[int]:
        return sorted({unit for unit, _ in self._data})

    async def async_getValues(  # the name pymodbus calls
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        entry = _FUNCTIONS.get(func_code)
        if entry is None:
            return ExcCodes.ILLEGAL_FUNCTION
        table, _ = entry
        cells = self._data.get((device_id, table))
        if cells is None or any(a not in cells for a in range(address, address + count)):
            return ExcCodes.ILLEGAL_ADDRESS
        words = [cells[a] for a in range(address, address + count)]
        return [bool(w) for w in words] if table.is_bit else words

    async def async_setValues(  # the name pymodbus calls
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        entry = _FUNCTIONS.get(func_code)
        if entry is None or not entry[1]:
            return ExcCodes.ILLEGAL_FUNCTION
        table = entry[0]
        cells = self._data.get((device_id, table))
        if cells is None or any(a not in cells for a in range(address, address + len(values))):
            return ExcCodes.ILLEGAL_ADDRESS
        ints = [int(v) for v in values]
        for i, v in enumerate(ints):
            cells[address + i] = v
        self.writes.append((device_id, table, address, ints))
        return None


def modbus_server(image: RegisterImage, host: str, port: int) -> ModbusTcpServer:
    """A pymodbus TCP server answering from `image` (start it with `serve_forever()`)."""
    # pymodbus wants a device definition to construct; the image then answers every request.
    server = ModbusTcpServer(SimDevice(0, simdata=[SimData(0)]), address=(host, port))
    server.context = image  # type: ignore[assignment]
    return server
