"""Modbus register values: where a tag lives in a device's tables, and how its bits are laid out.

Pure: stdlib `struct` only, no sockets. Clause numbers refer to the MODBUS Application Protocol
Specification V1.1b3 (modbus.org, 2012).

Addresses are the 0-based addresses carried in the PDU (4.4), not the 1-based "register numbers"
of device manuals: holding register "40001" is `RegisterSpec(Table.HOLDING_REGISTER, 0, ...)`.

The protocol sends every register big-endian (4.2) but says nothing about values wider than 16
bits, and devices disagree. Two settings describe any of them:

- `word_order`: BIG puts the most significant 16-bit word at the lowest address, LITTLE the least
  significant one. A single register has no word order; it is ignored there.
- `byte_order`: BIG keeps each register's two bytes as sent, LITTLE swaps them in every register.

With A the most significant byte, a 32-bit value is ABCD (big, big; the default), CDAB (little,
big), BADC (big, little) or DCBA (little, little); a 64-bit one ABCDEFGH, GHEFCDAB, BADCFEHG or
HGFEDCBA. Strings follow the same rule with the first character as the most significant byte, so
byte order LITTLE is the common "byte-swapped string" (this matches pymodbus' `word_order`).

Scaling: engineering value = raw * scale + offset. With the identity (scale 1, offset 0) an
integer type decodes to `int`; any other scale or offset decodes to `float`, so a tag's value
type never changes between reads. Encoding inverts it and rounds to the nearest integer (half to
even) for integer types; a value outside the raw type's range is a `ValueError`, never wrapped.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, TypeVar

# Request limits (quantities per PDU).
MAX_READ_BITS: Final = 2000  # 6.1 Read Coils, 6.2 Read Discrete Inputs: 1 to 2000 (0x7D0)
MAX_READ_REGISTERS: Final = 125  # 6.3 Read Holding Registers, 6.4 Read Input Registers: 1 to 125
MAX_WRITE_COILS: Final = 1968  # 6.11 Write Multiple Coils: 1 to 1968 (0x7B0)
MAX_WRITE_REGISTERS: Final = 123  # 6.12 Write Multiple Registers: 1 to 123 (0x7B)
MAX_ADDRESS: Final = 0xFFFF  # 4.4: each table is addressed from 0 to 65535

Value = bool | int | float | str


class Table(StrEnum):
    """The four primary tables of the data model (4.3)."""

    COIL = "coil"  # single bit, read-write
    DISCRETE_INPUT = "discrete_input"  # single bit, read-only
    HOLDING_REGISTER = "holding_register"  # 16-bit word, read-write
    INPUT_REGISTER = "input_register"  # 16-bit word, read-only

    @property
    def is_bit(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        return self in (Table.COIL, Table.HOLDING_REGISTER)

    @property
    def max_read(self) -> int:
        """Most addresses of this table one read request may cover."""
        return MAX_READ_BITS if self.is_bit else MAX_READ_REGISTERS


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


_FORMAT: Final[dict[DataType, str]] = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
_WIDTH: Final[dict[DataType, int]] = {
    DataType.BOOL: 1,
    **{dt: struct.calcsize(fmt) // 2 for dt, fmt in _FORMAT.items()},
}
_INT_RANGE: Final[dict[DataType, tuple[int, int]]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
_ENCODINGS: Final = ("latin-1", "ascii")
_LAYOUTS: Final[dict[str, tuple[Order, Order]]] = {
    name: orders
    for names, orders in (
        (("AB", "ABCD", "ABCDEFGH"), (Order.BIG, Order.BIG)),
        (("CDAB", "GHEFCDAB"), (Order.LITTLE, Order.BIG)),
        (("BA", "BADC", "BADCFEHG"), (Order.BIG, Order.LITTLE)),
        (("DCBA", "HGFEDCBA"), (Order.LITTLE, Order.LITTLE)),
    )
    for name in names
}

_E = TypeVar("_E", bound=StrEnum)


def parse_layout(name: str) -> tuple[Order, Order]:
    """(word_order, byte_order) for a device manual's layout name such as "CDAB" or "BADCFEHG"."""
    try:
        return _LAYOUTS[name.strip().upper()]
    except KeyError:
        raise ValueError(
            f"layout {name!r} is not one of {', '.join(_LAYOUTS)} (A = most significant byte)"
        ) from None


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where one value lives on a device and how it is encoded; validated on construction.

    `count` is the number of registers: required for a string (at most 125, so that one read
    request fetches it, 6.3), derived for every other type and, if given, checked against it.
    `bit` (0 = least significant) picks one bit of a register for a bool; the register is first
    read with `byte_order`. A bool from a register without `bit` is "register is not zero".
    Strings are padded with NUL on encoding; decoding stops at the first NUL and drops trailing
    spaces. Equal specs are interchangeable: the planner reads each distinct spec once.
    """

    table: Table
    address: int
    data_type: DataType
    count: int | None = None
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    encoding: str = "latin-1"

    def __post_init__(self) -> None:
        # Coerce names from configuration ("holding_register", "float32", "little") to enums.
        table = _coerce(Table, self.table, "table")
        data_type = _coerce(DataType, self.data_type, "data_type")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "data_type", data_type)
        object.__setattr__(self, "word_order", _coerce(Order, self.word_order, "word_order"))
        object.__setattr__(self, "byte_order", _coerce(Order, self.byte_order, "byte_order"))
        if not _is_int(self.address) or not 0 <= self.address <= MAX_ADDRESS:
            raise ValueError(f"address: must be an integer 0..{MAX_ADDRESS}, not {self.address!r}")
        for name in ("scale", "offset"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"{name}: must be a number, not {number!r}")
            try:
                finite = math.isfinite(number)
            except OverflowError:  # an int too large to be a float
                finite = False
            if not finite:
                raise ValueError(f"{name}: must be finite, not {_short(number)}")
        if self.scale == 0:
            raise ValueError("scale: must not be zero")
        if self.count is not None and (not _is_int(self.count) or self.count < 1):
            raise ValueError(f"count: must be a positive integer, not {self.count!r}")
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"encoding: must be one of {', '.join(_ENCODINGS)}")
        if table.is_bit:
            self._check_bit_table()
        else:
            self._check_register_table()
        width = self.count if data_type is DataType.STRING else _WIDTH[data_type]
        assert width is not None  # _check_register_table requires a string's count
        if self.address + width - 1 > MAX_ADDRESS:
            raise ValueError(
                f"address: {data_type} of {width} register(s) at {self.address} runs past "
                f"address {MAX_ADDRESS}"
            )
        object.__setattr__(self, "count", width)

    def _check_bit_table(self) -> None:
        table = self.table
        if self.data_type is not DataType.BOOL:
            raise ValueError(f"data_type: a {table} carries only bool, not {self.data_type}")
        if self.count not in (None, 1):
            raise ValueError(f"count: a {table} is one bit; read more bits as more specs")
        if self.bit is not None:
            raise ValueError(f"bit: a {table} is already a single bit; bit is for registers")
        for name in ("word_order", "byte_order"):
            if getattr(self, name) is not Order.BIG:
                raise ValueError(f"{name}: does not apply to a {table}, which is a single bit")
        self._check_unscaled()
        self._check_no_encoding()

    def _check_register_table(self) -> None:
        data_type = self.data_type
        if self.bit is not None and (data_type is not DataType.BOOL):
            raise ValueError(f"bit: only a bool picks a bit of a register, not {data_type}")
        if self.bit is not None and (not _is_int(self.bit) or not 0 <= self.bit <= 15):
            raise ValueError(f"bit: must be 0..15 (0 = least significant), not {self.bit!r}")
        if data_type is DataType.STRING:
            if self.count is None:
                raise ValueError("count: a string needs its length in registers (2 bytes each)")
            if self.count > MAX_READ_REGISTERS:
                raise ValueError(
                    f"count: a string of {self.count} registers does not fit in one read "
                    f"request of at most {MAX_READ_REGISTERS} (6.3)"
                )
            self._check_unscaled()
            return
        width = _WIDTH[data_type]
        if self.count is not None and self.count != width:
            raise ValueError(f"count: {data_type} occupies {width} register(s), not {self.count}")
        if data_type is DataType.BOOL:
            self._check_unscaled()
        self._check_no_encoding()

    def _check_unscaled(self) -> None:
        if not self.is_identity:
            raise ValueError(f"scale: {self.data_type} cannot be scaled or offset")

    def _check_no_encoding(self) -> None:
        if self.encoding != "latin-1":
            raise ValueError(f"encoding: only a string has an encoding, not {self.data_type}")

    @property
    def width(self) -> int:
        """Registers (or bits, in a bit table) the value occupies."""
        return self.count if self.count is not None else _WIDTH[self.data_type]

    @property
    def end(self) -> int:
        """The address just past the value."""
        return self.address + self.width

    @property
    def is_identity(self) -> bool:
        return self.scale == 1 and self.offset == 0


def decode(spec: RegisterSpec, registers: Sequence[int]) -> Value:
    """The value of `spec` from exactly its registers (or bits); never raises for numbers.

    Raises ValueError when the words are not `spec.width` 16-bit unsigned integers (bits: 0 or
    1), or when a string is not valid in `spec.encoding` (latin-1, the default, never fails).
    """
    _check_words(spec, registers)
    if spec.table.is_bit:
        return bool(registers[0])
    data_type = spec.data_type
    if data_type is DataType.BOOL:
        if spec.bit is None:
            return registers[0] != 0
        word = int.from_bytes(_to_bytes(spec, registers), "big")
        return bool(word >> spec.bit & 1)
    data = _to_bytes(spec, registers)
    if data_type is DataType.STRING:
        try:
            return data.split(b"\0", 1)[0].decode(spec.encoding).rstrip(" ")
        except UnicodeDecodeError as err:
            raise ValueError(f"{_where(spec)}: not {spec.encoding} text: {err.reason}") from None
    raw: int | float = struct.unpack(">" + _FORMAT[data_type], data)[0]
    if spec.is_identity:
        return raw
    return float(raw * spec.scale + spec.offset)


def encode(spec: RegisterSpec, value: Value) -> list[int] | list[bool]:
    """The registers (or, for a coil or discrete input, bits) that hold `value` under `spec`."""
    if spec.table.is_bit:
        return encode_bits(spec, value)
    return encode_registers(spec, value)


def encode_bits(spec: RegisterSpec, value: Value) -> list[bool]:
    """`[value]` for a coil or discrete input; accepts a bool or the integers 0 and 1."""
    if not spec.table.is_bit:
        raise ValueError(f"{_where(spec)} holds registers: use encode_registers")
    return [_as_bool(spec, value)]


def encode_registers(spec: RegisterSpec, value: Value) -> list[int]:
    """The 16-bit registers that hold `value` under `spec`, lowest address first.

    Raises ValueError for a value of the wrong kind, out of range for the raw type after
    scaling, or a string that does not fit; and for a single bit of a register, which cannot be
    written on its own (see `bit_masks`).
    """
    if spec.table.is_bit:
        raise ValueError(f"{_where(spec)} holds bits: use encode_bits")
    data_type = spec.data_type
    if data_type is DataType.BOOL:
        if spec.bit is not None:
            raise ValueError(
                f"{_where(spec)}: bit {spec.bit} cannot be written without the rest of its "
                "register; use bit_masks with Mask Write Register (6.16)"
            )
        return [int(_as_bool(spec, value))]
    if data_type is DataType.STRING:
        return _to_words(spec, _string_bytes(spec, value))
    raw = _raw(spec, value)
    try:
        data = struct.pack(">" + _FORMAT[data_type], raw)
    except OverflowError:
        raise ValueError(f"{_where(spec)}: {value!r} is outside the {data_type} range") from None
    return _to_words(spec, data)


def bit_masks(spec: RegisterSpec, value: bool) -> tuple[int, int]:
    """(And_Mask, Or_Mask) of Mask Write Register (6.16) setting `spec`'s bit to `value`.

    The server computes (current AND And_Mask) OR (Or_Mask AND (NOT And_Mask)), so the other 15
    bits of the register keep their value.
    """
    if spec.table.is_bit or spec.bit is None:
        raise ValueError(f"{_where(spec)}: bit_masks is for a bool with a bit of a register")
    position = spec.bit if spec.byte_order is Order.BIG else spec.bit ^ 8
    mask = 1 << position
    return 0xFFFF & ~mask, mask if _as_bool(spec, value) else 0


def _coerce(enum: type[_E], value: object, name: str) -> _E:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    choices = ", ".join(member.value for member in enum)
    raise ValueError(f"{name}: {value!r} is not one of {choices}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _where(spec: RegisterSpec) -> str:
    return f"{spec.data_type} at {spec.table} {spec.address}"


def _check_words(spec: RegisterSpec, registers: Sequence[int]) -> None:
    if len(registers) != spec.width:
        raise ValueError(f"{_where(spec)} needs {spec.width} word(s), got {len(registers)}")
    top = 1 if spec.table.is_bit else 0xFFFF
    for word in registers:
        if not isinstance(word, int) or not 0 <= word <= top:
            kind = "a bit is 0 or 1" if top == 1 else "a register is 0..65535"
            raise ValueError(f"{_where(spec)}: {word!r} is not valid, {kind}")


def _to_bytes(spec: RegisterSpec, registers: Sequence[int]) -> bytes:
    """The value's bytes, most significant first, from its registers in address order."""
    words = reversed(registers) if spec.word_order is Order.LITTLE else registers
    byte_order: Literal["big", "little"] = "big" if spec.byte_order is Order.BIG else "little"
    return b"".join(word.to_bytes(2, byte_order) for word in words)


def _to_words(spec: RegisterSpec, data: bytes) -> list[int]:
    """The inverse of `_to_bytes`."""
    byte_order: Literal["big", "little"] = "big" if spec.byte_order is Order.BIG else "little"
    words = [int.from_bytes(data[i : i + 2], byte_order) for i in range(0, len(data), 2)]
    if spec.word_order is Order.LITTLE:
        words.reverse()
    return words


def _as_bool(spec: RegisterSpec, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{_where(spec)}: needs a bool (or 0 or 1), not {value!r}")


def _string_bytes(spec: RegisterSpec, value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{_where(spec)}: needs a str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{_where(spec)}: NUL ends a string on the device; it cannot be sent")
    try:
        data = value.encode(spec.encoding)
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{_where(spec)}: {value!r} is not {spec.encoding}: {err.reason}"
        ) from None
    size = 2 * spec.width
    if len(data) > size:
        raise ValueError(
            f"{_where(spec)}: {len(data)} bytes do not fit in {spec.width} register(s) "
            f"({size} bytes)"
        )
    return data.ljust(size, b"\0")


def _raw(spec: RegisterSpec, value: object) -> int | float:
    """The raw number for `value`: scaling inverted, rounded and range-checked for integers."""
    data_type = spec.data_type
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{_where(spec)}: needs a number, not {type(value).__name__}")
    raw: int | float
    try:
        raw = value if spec.is_identity else (value - spec.offset) / spec.scale
        if data_type in (DataType.FLOAT32, DataType.FLOAT64):
            number = float(raw)
            # A finite value must not reach the device as an infinity (a tiny scale overflows).
            if math.isfinite(value) and not math.isfinite(number):
                raise OverflowError
            return number
    except OverflowError:
        raise ValueError(f"{_where(spec)}: {value!r} is outside the {data_type} range") from None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError(f"{_where(spec)}: {value!r} has no {data_type} value")
        raw = round(raw)
    low, high = _INT_RANGE[data_type]
    if not low <= raw <= high:
        scaled = "" if spec.is_identity else f" (raw {raw} after scale and offset)"
        raise ValueError(
            f"{_where(spec)}: {value!r}{scaled} is outside the {data_type} range {low}..{high}"
        )
    return raw
