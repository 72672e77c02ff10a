"""The Modbus register codec: golden words, pymodbus as an oracle, round-trip properties."""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from kiln.connectors.modbus.codec import (
    MAX_ADDRESS,
    DataType,
    Order,
    RegisterSpec,
    Table,
    Value,
    bit_masks,
    decode,
    encode,
    encode_bits,
    encode_registers,
    parse_layout,
)

HR = Table.HOLDING_REGISTER
BIG, LITTLE = Order.BIG, Order.LITTLE
INTEGERS = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
FLOATS: dict[DataType, Literal[32, 64]] = {DataType.FLOAT32: 32, DataType.FLOAT64: 64}
NUMERIC = [*INTEGERS, *FLOATS]
ORDERS = [(w, b) for w in (BIG, LITTLE) for b in (BIG, LITTLE)]
PYMODBUS = ModbusClientMixin.DATATYPE
ORACLE_TYPE = {dt: getattr(PYMODBUS, dt.name) for dt in NUMERIC}

orders = st.sampled_from(ORDERS)
words = st.integers(min_value=0, max_value=0xFFFF)


def spec(data_type: DataType, layout: str = "ABCD", **kwargs: Any) -> RegisterSpec:
    word_order, byte_order = parse_layout(layout)
    return RegisterSpec(HR, 100, data_type, word_order=word_order, byte_order=byte_order, **kwargs)


def same(a: Value, b: Value) -> bool:
    """Equal, of the same type, NaN equal to NaN and 0.0 not equal to -0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def swap_bytes(registers: list[int]) -> list[int]:
    return [(word & 0xFF) << 8 | word >> 8 for word in registers]


@st.composite
def numbers(draw: st.DrawFn, data_type: DataType) -> int | float:
    if data_type in INTEGERS:
        low, high = INTEGERS[data_type]
        return draw(st.integers(min_value=low, max_value=high))
    return draw(st.floats(width=FLOATS[data_type]))  # NaN and infinities included


# --- golden words: computed by hand from the IEEE 754 / two's complement bytes --------------

GOLDEN = [
    # float32 123.456 = 0x42F6E979
    (DataType.FLOAT32, 123.456, "ABCD", [0x42F6, 0xE979]),
    (DataType.FLOAT32, 123.456, "CDAB", [0xE979, 0x42F6]),
    (DataType.FLOAT32, 123.456, "BADC", [0xF642, 0x79E9]),
    (DataType.FLOAT32, 123.456, "DCBA", [0x79E9, 0xF642]),
    (DataType.FLOAT32, 1.0, "ABCD", [0x3F80, 0x0000]),
    (DataType.FLOAT32, -0.0, "ABCD", [0x8000, 0x0000]),
    (DataType.FLOAT32, math.inf, "CDAB", [0x0000, 0x7F80]),
    # float64 123.456 = 0x405EDD2F1A9FBE77
    (DataType.FLOAT64, 123.456, "ABCDEFGH", [0x405E, 0xDD2F, 0x1A9F, 0xBE77]),
    (DataType.FLOAT64, 123.456, "GHEFCDAB", [0xBE77, 0x1A9F, 0xDD2F, 0x405E]),
    (DataType.FLOAT64, 123.456, "BADCFEHG", [0x5E40, 0x2FDD, 0x9F1A, 0x77BE]),
    (DataType.FLOAT64, 123.456, "HGFEDCBA", [0x77BE, 0x9F1A, 0x2FDD, 0x5E40]),
    # int32 -2 = 0xFFFFFFFE
    (DataType.INT32, -2, "ABCD", [0xFFFF, 0xFFFE]),
    (DataType.INT32, -2, "CDAB", [0xFFFE, 0xFFFF]),
    (DataType.INT32, -2, "BADC", [0xFFFF, 0xFEFF]),
    (DataType.INT32, -2, "DCBA", [0xFEFF, 0xFFFF]),
    (DataType.UINT32, 0x12345678, "ABCD", [0x1234, 0x5678]),
    (DataType.UINT32, 0x12345678, "CDAB", [0x5678, 0x1234]),
    (DataType.UINT32, 0x12345678, "BADC", [0x3412, 0x7856]),
    (DataType.UINT32, 0x12345678, "DCBA", [0x7856, 0x3412]),
    (DataType.INT16, -2, "AB", [0xFFFE]),
    (DataType.INT16, -2, "BA", [0xFEFF]),
    (DataType.INT16, -32768, "AB", [0x8000]),
    (DataType.UINT16, 0x1234, "AB", [0x1234]),
    (DataType.UINT16, 0x1234, "BA", [0x3412]),
    (DataType.UINT16, 0x1234, "DCBA", [0x3412]),  # a single register has no word order
    (DataType.INT64, -2, "ABCDEFGH", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]),
    (DataType.INT64, -2, "GHEFCDAB", [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF]),
    (DataType.UINT64, 0x0102030405060708, "ABCDEFGH", [0x0102, 0x0304, 0x0506, 0x0708]),
    (DataType.UINT64, 0x0102030405060708, "GHEFCDAB", [0x0708, 0x0506, 0x0304, 0x0102]),
    (DataType.UINT64, 0x0102030405060708, "BADCFEHG", [0x0201, 0x0403, 0x0605, 0x0807]),
    (DataType.UINT64, 0x0102030405060708, "HGFEDCBA", [0x0807, 0x0605, 0x0403, 0x0201]),
]


@pytest.mark.parametrize(("data_type", "value", "layout", "registers"), GOLDEN)
def test_golden_words(
    data_type: DataType, value: int | float, layout: str, registers: list[int]
) -> None:
    s = spec(data_type, layout)
    assert encode(s, value) == registers
    if data_type is DataType.FLOAT32:
        value = struct.unpack(">f", struct.pack(">f", value))[0]  # the nearest float32
    assert same(decode(s, registers), value)


def test_golden_float32_decodes_to_the_nearest_float32() -> None:
    assert decode(spec(DataType.FLOAT32), [0x42F6, 0xE979]) == pytest.approx(123.456, rel=1e-7)
    assert math.isnan(decode(spec(DataType.FLOAT32), [0x7FC0, 0x0000]))  # type: ignore[arg-type]
    assert decode(spec(DataType.FLOAT32, "DCBA"), [0x0000, 0x80FF]) == -math.inf


@pytest.mark.parametrize(
    ("layout", "registers"),
    [
        ("ABCD", [0x4142, 0x4300]),
        ("BADC", [0x4241, 0x0043]),
        ("CDAB", [0x4300, 0x4142]),
        ("DCBA", [0x0043, 0x4241]),
    ],
)
def test_golden_string(layout: str, registers: list[int]) -> None:
    s = spec(DataType.STRING, layout, count=2)
    assert encode(s, "ABC") == registers
    assert decode(s, registers) == "ABC"


def test_string_padding_and_truncation() -> None:
    s = spec(DataType.STRING, count=3)
    assert encode(s, "") == [0, 0, 0]
    assert decode(s, [0x4142, 0x2020, 0x2020]) == "AB"  # space padded
    assert decode(s, [0x4142, 0x0047, 0x4142]) == "AB"  # a NUL ends the string
    assert decode(s, [0x2041, 0x2042, 0x0000]) == " A B"  # leading and inner spaces stay
    assert decode(s, [0xE9E8, 0, 0]) == "éè"  # latin-1 decodes every byte
    with pytest.raises(ValueError, match="not ascii text"):
        decode(spec(DataType.STRING, count=1, encoding="ascii"), [0xE941])


@pytest.mark.parametrize(
    ("data_type", "scale", "offset", "raw", "value"),
    [
        (DataType.INT16, 0.1, 0.0, [1234], 123.4),
        (DataType.INT16, 0.1, 0.0, [0xFFF6], -1.0),
        (DataType.UINT16, 0.1, -40.0, [650], 25.0),
        (DataType.UINT32, 0.001, 0.0, [0x0001, 0xE240], 123.456),
        (DataType.INT16, 10, 0, [-5 & 0xFFFF], -50.0),
        (DataType.FLOAT32, 2.0, 1.0, [0x3F80, 0x0000], 3.0),
    ],
)
def test_scale_and_offset(
    data_type: DataType, scale: float, offset: float, raw: list[int], value: float
) -> None:
    s = spec(data_type, scale=scale, offset=offset)
    decoded = decode(s, raw)
    assert type(decoded) is float
    assert decoded == pytest.approx(value)
    assert encode(s, value) == raw


def test_identity_keeps_integers_exact() -> None:
    big = spec(DataType.UINT64)
    assert decode(big, [0xFFFF] * 4) == 2**64 - 1
    assert type(decode(big, [0, 0, 0, 1])) is int
    assert encode(big, 2**64 - 1) == [0xFFFF] * 4
    assert encode(spec(DataType.INT16), 2.5) == [2]  # rounds half to even
    assert encode(spec(DataType.INT16), 3.5) == [4]
    assert encode(spec(DataType.INT16), -7.0) == [0xFFF9]


# --- pymodbus as an independent oracle (it knows word order; byte order is swapped here) ----


@settings(max_examples=300, deadline=None)
@given(data=st.data(), data_type=st.sampled_from(NUMERIC), orders=orders)
def test_numbers_match_pymodbus(data: st.DataObject, data_type: DataType, orders: Any) -> None:
    word_order, byte_order = orders
    value = data.draw(numbers(data_type))
    s = RegisterSpec(HR, 0, data_type, word_order=word_order, byte_order=byte_order)
    oracle = ModbusClientMixin.convert_to_registers(
        value, ORACLE_TYPE[data_type], word_order=word_order.value
    )
    if byte_order is LITTLE:
        oracle = swap_bytes(oracle)
    assert encode(s, value) == oracle
    registers = data.draw(st.lists(words, min_size=s.width, max_size=s.width))
    raw = swap_bytes(registers) if byte_order is LITTLE else registers
    expected = ModbusClientMixin.convert_from_registers(
        raw, ORACLE_TYPE[data_type], word_order=word_order.value
    )
    assert same(decode(s, registers), expected)  # type: ignore[arg-type]


latin1_text = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=40)


@settings(max_examples=200, deadline=None)
@given(text=latin1_text, word_order=st.sampled_from([BIG, LITTLE]))
def test_strings_match_pymodbus(text: str, word_order: Order) -> None:
    s = RegisterSpec(
        HR, 0, DataType.STRING, count=max(1, (len(text) + 1) // 2), word_order=word_order
    )
    order: Literal["big", "little"] = "big" if word_order is BIG else "little"
    if text:
        oracle = ModbusClientMixin.convert_to_registers(text, PYMODBUS.STRING, order, "latin-1")
        assert encode(s, text) == oracle
    if not text.endswith(" "):  # pymodbus strips only NULs; Kiln also strips space padding
        registers = encode_registers(s, text)
        assert decode(s, registers) == ModbusClientMixin.convert_from_registers(
            registers, PYMODBUS.STRING, order, "latin-1"
        )


# --- round-trip properties ------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(data=st.data(), data_type=st.sampled_from(NUMERIC), orders=orders)
def test_numbers_round_trip_in_every_order(
    data: st.DataObject, data_type: DataType, orders: Any
) -> None:
    word_order, byte_order = orders
    value = data.draw(numbers(data_type))
    s = RegisterSpec(HR, 7, data_type, word_order=word_order, byte_order=byte_order)
    registers = encode_registers(s, value)
    assert len(registers) == s.width
    assert all(0 <= word <= 0xFFFF for word in registers)
    assert same(decode(s, registers), value)  # NaN round-trips as NaN, -0.0 as -0.0


@settings(max_examples=200, deadline=None)
@given(text=latin1_text, orders=orders, spare=st.integers(min_value=0, max_value=3))
def test_strings_round_trip(text: str, orders: Any, spare: int) -> None:
    word_order, byte_order = orders
    count = (len(text) + 1) // 2 + spare or 1
    s = RegisterSpec(
        HR, 0, DataType.STRING, count=count, word_order=word_order, byte_order=byte_order
    )
    assert decode(s, encode_registers(s, text)) == text.rstrip(" ")  # trailing spaces are padding


scales = st.sampled_from([0.1, 0.01, 0.001, 2.5, 10.0, -0.5, 1 / 3]) | st.floats(
    min_value=1e-3, max_value=1e3
)
offsets = st.floats(min_value=-1e3, max_value=1e3)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    data_type=st.sampled_from(list(INTEGERS)),
    scale=scales,
    offset=offsets,
    fraction=st.floats(min_value=-0.49, max_value=0.49),
)
def test_scaled_integers_round_trip_within_half_a_step(
    data: st.DataObject, data_type: DataType, scale: float, offset: float, fraction: float
) -> None:
    low, high = INTEGERS[data_type]
    # Scaling is float arithmetic: keep raw values where a float still resolves a fraction.
    raw = data.draw(st.integers(min_value=max(low, -(2**40)), max_value=min(high, 2**40)))
    s = spec(data_type, scale=scale, offset=offset)
    value = (raw + fraction) * scale + offset
    registers = encode_registers(s, value)
    assert decode(s, registers) == pytest.approx(value, abs=abs(scale) / 2 + 1e-9 * abs(value))
    assert decode(s, encode_registers(s, raw * scale + offset)) == pytest.approx(
        raw * scale + offset
    )


@settings(max_examples=200, deadline=None)
@given(
    data_type=st.sampled_from(list(FLOATS)),
    scale=scales,
    offset=offsets,
    value=st.floats(min_value=-1e6, max_value=1e6),
)
def test_scaled_floats_round_trip(
    data_type: DataType, scale: float, offset: float, value: float
) -> None:
    s = spec(data_type, scale=scale, offset=offset)
    decoded = decode(s, encode_registers(s, value))
    tolerance = (abs(value) + abs(offset)) * 2.0**-22 + 1e-9
    assert decoded == pytest.approx(value, abs=tolerance)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    data_type=st.sampled_from(list(DataType)),
    orders=orders,
    scale=st.floats(allow_nan=False, allow_infinity=False).filter(bool),
    offset=st.floats(allow_nan=False, allow_infinity=False),
)
def test_decoding_any_words_never_raises(
    data: st.DataObject, data_type: DataType, orders: Any, scale: float, offset: float
) -> None:
    word_order, byte_order = orders
    scaled = data_type in NUMERIC
    s = RegisterSpec(
        HR,
        0,
        data_type,
        count=data.draw(st.integers(1, 8)) if data_type is DataType.STRING else None,
        word_order=word_order,
        byte_order=byte_order,
        scale=scale if scaled else 1.0,
        offset=offset if scaled else 0.0,
        bit=data.draw(st.none() | st.integers(0, 15)) if data_type is DataType.BOOL else None,
    )
    value = decode(s, data.draw(st.lists(words, min_size=s.width, max_size=s.width)))
    assert isinstance(value, float if scaled and not s.is_identity else (bool, int, float, str))


# --- bits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [Table.COIL, Table.DISCRETE_INPUT])
def test_bits(table: Table) -> None:
    s = RegisterSpec(table, 3, DataType.BOOL)
    assert decode(s, [1]) is True
    assert decode(s, [False]) is False
    assert encode(s, True) == [True]
    assert encode_bits(s, 0) == [False]


@pytest.mark.parametrize(
    ("bit", "byte_order", "register", "value"),
    [
        (0, BIG, 0x0001, True),
        (15, BIG, 0x8000, True),
        (8, BIG, 0x0100, True),
        (0, BIG, 0xFFFE, False),
        (0, LITTLE, 0x0100, True),  # the device's low byte travels second
        (15, LITTLE, 0x0080, True),
        (0, LITTLE, 0x0001, False),
    ],
)
def test_bit_of_a_register(bit: int, byte_order: Order, register: int, value: bool) -> None:
    s = RegisterSpec(HR, 0, DataType.BOOL, bit=bit, byte_order=byte_order)
    assert decode(s, [register]) is value


def test_bool_from_a_whole_register() -> None:
    s = RegisterSpec(Table.INPUT_REGISTER, 0, DataType.BOOL)
    assert decode(s, [0]) is False
    assert decode(s, [0x0100]) is True
    assert encode(s, True) == [1]


@settings(max_examples=200, deadline=None)
@given(
    bit=st.integers(0, 15),
    byte_order=st.sampled_from([BIG, LITTLE]),
    current=words,
    value=st.booleans(),
)
def test_bit_masks_change_only_their_bit(
    bit: int, byte_order: Order, current: int, value: bool
) -> None:
    s = RegisterSpec(HR, 0, DataType.BOOL, bit=bit, byte_order=byte_order)
    and_mask, or_mask = bit_masks(s, value)
    result = (current & and_mask) | (or_mask & ~and_mask & 0xFFFF)  # 6.16
    assert decode(s, [result]) is value
    whole = RegisterSpec(HR, 0, DataType.UINT16, byte_order=byte_order)
    changed = decode(whole, [result]) ^ decode(whole, [current])  # type: ignore[operator]
    assert changed & ~(1 << bit) == 0


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_type": "float32", "count": 1}, "count: float32 occupies 2 register"),
        ({"data_type": "int64", "count": 2}, "count: int64 occupies 4 register"),
        ({"table": "coil", "data_type": "int16"}, "data_type: a coil carries only bool"),
        ({"table": "discrete_input", "count": 8}, "count: a discrete_input is one bit"),
        ({"table": "coil", "bit": 1}, "bit: a coil is already a single bit"),
        ({"table": "coil", "byte_order": "little"}, "byte_order: does not apply to a coil"),
        ({"table": "coil", "scale": 2}, "scale: bool cannot be scaled"),
        ({"address": -1}, r"address: must be an integer 0\.\.65535"),
        ({"address": 65536}, r"address: must be an integer 0\.\.65535"),
        ({"address": True}, "address: must be an integer"),
        ({"address": 1.0}, "address: must be an integer"),
        ({"address": 65535, "data_type": "float32"}, "address: .* runs past address 65535"),
        ({"data_type": "string"}, "count: a string needs its length"),
        ({"data_type": "string", "count": 126}, "count: .* at most 125"),
        ({"data_type": "string", "count": 0}, "count: must be a positive integer"),
        ({"data_type": "string", "count": 2, "scale": 0.1}, "scale: string cannot be scaled"),
        (
            {"data_type": "uint16", "bit": 3},
            "bit: only a bool picks a bit of a register, not uint16",
        ),
        ({"bit": 16}, r"bit: must be 0\.\.15"),
        ({"bit": -1}, r"bit: must be 0\.\.15"),
        ({"bit": 2, "offset": 1}, "scale: bool cannot be scaled"),
        ({"data_type": "int16", "scale": 0}, "scale: must not be zero"),
        ({"data_type": "int16", "scale": math.nan}, "scale: must be finite"),
        ({"data_type": "int16", "offset": math.inf}, "offset: must be finite"),
        ({"data_type": "int16", "scale": "2"}, "scale: must be a number"),
        ({"data_type": "string", "count": 1, "encoding": "utf-8"}, "encoding: must be one of"),
        ({"data_type": "int16", "encoding": "ascii"}, "encoding: only a string"),
        ({"table": "holding"}, "table: 'holding' is not one of coil, discrete_input"),
        ({"data_type": "float"}, "data_type: 'float' is not one of bool, int16"),
        ({"word_order": "middle"}, "word_order: 'middle' is not one of big, little"),
        ({"byte_order": 1}, "byte_order: 1 is not one of big, little"),
    ],
)
def test_invalid_specs_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"table": "holding_register", "address": 0, "data_type": "bool"}
    with pytest.raises(ValueError, match=message):
        RegisterSpec(**(fields | kwargs))


def test_specs_from_configuration_names() -> None:
    from_names = RegisterSpec("input_register", 5, "float32", word_order="little")  # type: ignore[arg-type]
    typed = RegisterSpec(Table.INPUT_REGISTER, 5, DataType.FLOAT32, word_order=LITTLE)
    assert from_names == typed
    assert hash(from_names) == hash(typed)
    assert typed.count == typed.width == 2
    assert typed.end == 7
    assert RegisterSpec(HR, MAX_ADDRESS - 3, DataType.UINT64).end == MAX_ADDRESS + 1
    assert not typed.table.writable
    assert Table.COIL.writable
    assert Table.COIL.max_read == 2000
    assert HR.max_read == 125


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ABCD", (BIG, BIG)),
        ("cdab", (LITTLE, BIG)),
        ("BADC", (BIG, LITTLE)),
        ("DCBA", (LITTLE, LITTLE)),
        ("GHEFCDAB", (LITTLE, BIG)),
        ("BA", (BIG, LITTLE)),
    ],
)
def test_parse_layout(name: str, expected: tuple[Order, Order]) -> None:
    assert parse_layout(name) == expected


def test_parse_layout_rejects_unknown_layouts() -> None:
    with pytest.raises(ValueError, match="layout 'ACBD' is not one of AB, ABCD"):
        parse_layout("ACBD")


@pytest.mark.parametrize(
    ("s", "value", "message"),
    [
        (spec(DataType.INT16), 70000, r"70000 is outside the int16 range -32768\.\.32767"),
        (spec(DataType.UINT16), -1, "outside the uint16 range"),
        (spec(DataType.UINT64), 2**64, "outside the uint64 range"),
        (spec(DataType.UINT16, scale=0.1), 6553.6, "raw 65536 after scale and offset"),
        (spec(DataType.INT16), math.nan, "has no int16 value"),
        (spec(DataType.INT32, scale=0.5), math.inf, "has no int32 value"),
        (spec(DataType.INT16), True, "needs a number, not bool"),
        (spec(DataType.FLOAT32), "1.5", "needs a number, not str"),
        (spec(DataType.FLOAT32), 1e39, "outside the float32 range"),
        (spec(DataType.FLOAT64), 10**400, "outside the float64 range"),
        (spec(DataType.STRING, count=1), "ABC", "3 bytes do not fit in 1 register"),
        (spec(DataType.STRING, count=2), "A\0B", "NUL ends a string"),
        (spec(DataType.STRING, count=2), 12, "needs a str, not int"),
        (spec(DataType.STRING, count=2, encoding="ascii"), "é", "is not ascii"),
        (spec(DataType.STRING, count=2), "€", "is not latin-1"),
        (spec(DataType.BOOL, bit=3), True, "use bit_masks with Mask Write Register"),
        (spec(DataType.BOOL), 2, r"needs a bool \(or 0 or 1\)"),
        (RegisterSpec(Table.COIL, 0, DataType.BOOL), "on", "needs a bool"),
    ],
)
def test_encoding_errors_are_clear(s: RegisterSpec, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode(s, value)


def test_encoders_check_the_table() -> None:
    coil = RegisterSpec(Table.COIL, 0, DataType.BOOL)
    with pytest.raises(ValueError, match="holds bits: use encode_bits"):
        encode_registers(coil, True)
    with pytest.raises(ValueError, match="holds registers: use encode_registers"):
        encode_bits(spec(DataType.BOOL), True)
    with pytest.raises(ValueError, match="bit_masks is for a bool with a bit"):
        bit_masks(spec(DataType.BOOL), True)


@pytest.mark.parametrize(
    ("s", "registers", "message"),
    [
        (spec(DataType.FLOAT32), [0x42F6], "needs 2 word"),
        (spec(DataType.UINT16), [1, 2], "needs 1 word"),
        (spec(DataType.UINT16), [0x10000], "65536 is not valid, a register is 0..65535"),
        (spec(DataType.INT32), [0, -1], "-1 is not valid"),
        (spec(DataType.UINT16), [1.0], "1.0 is not valid"),
        (RegisterSpec(Table.COIL, 0, DataType.BOOL), [2], "2 is not valid, a bit is 0 or 1"),
    ],
)
def test_decoding_checks_the_words(s: RegisterSpec, registers: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(s, registers)
