"""Fuzzing Modbus register specs, register decoding and encoding, and read plans.

Properties, for specs of every table, data type, word and byte order, bit, scale and offset:

- building a `RegisterSpec` from any field values raises `ValueError` and nothing else;
- any words of the right width decode without an exception (only a string in ASCII may be a
  `ValueError`), and anything else given as words is a `ValueError`;
- encoding any Python value gives registers or a `ValueError`; a finite value never reaches
  the device as an infinity, and what is encoded decodes back to the value (exactly for integer
  types without scaling, to the nearest float32 for float32);
- a read plan's responses, of any length and content, split into values or a `ValueError`.

Hypothesis, not atheris; see `fuzz_budget`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from fuzz_budget import fuzz
from hypothesis import example, given, target
from hypothesis import strategies as st

from kiln.connectors.modbus.codec import (
    DataType,
    Order,
    RegisterSpec,
    Table,
    decode,
    encode,
)
from kiln.connectors.modbus.plan import plan_reads, split

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.just(10**400),
)
WIDTH = {DataType.BOOL: 1, DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2,
         DataType.UINT32: 2, DataType.FLOAT32: 2, DataType.INT64: 4, DataType.UINT64: 4,
         DataType.FLOAT64: 4}  # fmt: skip
SCALES = st.one_of(
    st.just(1.0), st.floats(-1e6, 1e6).filter(lambda x: x != 0), st.sampled_from([1e-320, 1e300])
)


@st.composite
def specs(draw: st.DrawFn) -> RegisterSpec:
    """A valid spec: every table, type, order, bit, scale and offset a device map may have."""
    table = draw(st.sampled_from(Table))
    if table.is_bit:
        return RegisterSpec(table, draw(st.integers(0, 0xFFFF)), DataType.BOOL)
    data_type = draw(st.sampled_from(DataType))
    count = draw(st.integers(1, 125)) if data_type is DataType.STRING else None
    width = count if count is not None else WIDTH[data_type]
    fields: dict[str, Any] = {
        "count": count,
        "word_order": draw(st.sampled_from(Order)),
        "byte_order": draw(st.sampled_from(Order)),
    }
    if data_type is DataType.BOOL:
        fields["bit"] = draw(st.none() | st.integers(0, 15))
    elif data_type is DataType.STRING:
        fields["encoding"] = draw(st.sampled_from(["latin-1", "ascii"]))
    elif draw(st.booleans()):
        fields["scale"] = draw(SCALES)
        fields["offset"] = draw(st.floats(-1e6, 1e6) | st.sampled_from([0.0, 1e300]))
    address = draw(st.integers(0, 0x10000 - width))
    return RegisterSpec(table, address, data_type, **fields)


@fuzz(500)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "table": st.sampled_from(Table) | ANYTHING,
            "address": ANYTHING,
            "data_type": st.sampled_from(DataType) | ANYTHING,
            "count": ANYTHING,
            "word_order": st.sampled_from(Order) | ANYTHING,
            "byte_order": st.sampled_from(Order) | ANYTHING,
            "scale": ANYTHING,
            "offset": ANYTHING,
            "bit": ANYTHING,
            "encoding": st.sampled_from(["latin-1", "ascii", "utf-8"]) | ANYTHING,
        },
    )
)
# Found by this test: a scale or offset too large for a float raised OverflowError.
@example({"table": Table.HOLDING_REGISTER, "address": 0, "data_type": "int16", "scale": 10**400})
def test_specs_are_valid_or_a_value_error(fields: dict[str, Any]) -> None:
    fields = {"table": Table.HOLDING_REGISTER, "address": 0, "data_type": DataType.INT16, **fields}
    try:
        RegisterSpec(**fields)
    except ValueError:
        return


@fuzz(600)
@given(specs(), st.data())
def test_any_words_decode(spec: RegisterSpec, data: st.DataObject) -> None:
    top = 1 if spec.table.is_bit else 0xFFFF
    words = data.draw(st.lists(st.integers(0, top), min_size=spec.width, max_size=spec.width))
    try:
        value = decode(spec, words)
    except ValueError:
        assert spec.data_type is DataType.STRING and spec.encoding == "ascii"
        return
    assert isinstance(value, bool | int | float | str)


@fuzz(400)
@given(specs(), st.lists(ANYTHING, max_size=6))
def test_anything_else_as_words_is_a_value_error(spec: RegisterSpec, words: list[Any]) -> None:
    top = 1 if spec.table.is_bit else 0xFFFF
    valid = len(words) == spec.width and all(isinstance(w, int) and 0 <= w <= top for w in words)
    try:
        decode(spec, words)
    except ValueError:
        assert not valid or spec.data_type is DataType.STRING
        return
    assert valid


@fuzz(800)
@given(specs(), ANYTHING)
# Found by this test: with a tiny scale a finite value was written as +inf.
@example(RegisterSpec(Table.HOLDING_REGISTER, 0, DataType.FLOAT32, scale=1e-320), 1e300)
def test_encoding_gives_registers_or_a_value_error(spec: RegisterSpec, value: Any) -> None:
    try:
        words = encode(spec, value)
    except ValueError:
        return
    target(float(len(words)), label="registers written")
    assert len(words) == spec.width
    top = 1 if spec.table.is_bit else 0xFFFF
    assert all(0 <= int(w) <= top for w in words)
    if spec.table.is_bit or spec.data_type is DataType.STRING:
        return
    back = decode(spec, [int(w) for w in words])
    if isinstance(value, float) and not math.isfinite(value):
        return  # a non-finite value was asked for (the API refuses it before this)
    assert not isinstance(back, float) or math.isfinite(back), (value, words, back)


NUMBERS = {
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.UINT16: st.integers(0, 2**16 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.UINT32: st.integers(0, 2**32 - 1),
    DataType.INT64: st.integers(-(2**63), 2**63 - 1),
    DataType.UINT64: st.integers(0, 2**64 - 1),
    DataType.FLOAT32: st.floats(width=32, allow_nan=False),
    DataType.FLOAT64: st.floats(allow_nan=False),
}


@fuzz(600)
@given(
    st.sampled_from(sorted(NUMBERS)).flatmap(lambda t: st.tuples(st.just(t), NUMBERS[t])),
    st.sampled_from(Order),
    st.sampled_from(Order),
)
def test_every_type_in_every_order_round_trips(
    typed: tuple[DataType, Any], word_order: Order, byte_order: Order
) -> None:
    data_type, value = typed
    spec = RegisterSpec(
        Table.HOLDING_REGISTER, 0, data_type, word_order=word_order, byte_order=byte_order
    )
    words = encode(spec, value)
    assert decode(spec, words) == value
    if data_type is DataType.FLOAT32:
        assert struct.unpack(">f", struct.pack(">f", value))[0] == value


@fuzz(300)
@given(st.lists(specs(), max_size=8), st.integers(0, 4), st.data())
def test_plans_split_any_response_into_values_or_a_value_error(
    spec_list: list[RegisterSpec], max_gap: int, data: st.DataObject
) -> None:
    for request in plan_reads(spec_list, max_gap=max_gap):
        top = 1 if request.table.is_bit else 0xFFFF
        size = data.draw(st.integers(max(0, request.count - 2), request.count + 9))
        words = data.draw(st.lists(st.integers(0, top), min_size=size, max_size=size))
        try:
            values = split(request, words)
        except ValueError:
            continue
        assert [spec for spec, _ in values] == list(request.specs)
