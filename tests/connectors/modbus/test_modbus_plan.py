"""The Modbus read planner: fewest requests within the protocol limits, and splitting answers."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.modbus.codec import DataType, Order, RegisterSpec, Table, Value, decode
from kiln.connectors.modbus.plan import ReadRequest, plan_reads, split

HR = Table.HOLDING_REGISTER


def u16(address: int, table: Table = HR) -> RegisterSpec:
    return RegisterSpec(table, address, DataType.UINT16)


def f32(address: int) -> RegisterSpec:
    return RegisterSpec(HR, address, DataType.FLOAT32)


def coil(address: int, table: Table = Table.COIL) -> RegisterSpec:
    return RegisterSpec(table, address, DataType.BOOL)


def shape(requests: list[ReadRequest]) -> list[tuple[str, int, int]]:
    return [(r.table.value, r.address, r.count) for r in requests]


def same(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def test_no_specs_no_requests() -> None:
    assert plan_reads([]) == []


def test_300_consecutive_registers_take_three_requests() -> None:
    requests = plan_reads(u16(a) for a in range(300))
    assert shape(requests) == [
        ("holding_register", 0, 125),
        ("holding_register", 125, 125),
        ("holding_register", 250, 50),
    ]
    assert [len(r.specs) for r in requests] == [125, 125, 50]


def test_contiguous_values_of_mixed_widths_merge() -> None:
    specs = [
        u16(0),
        f32(1),
        RegisterSpec(HR, 3, DataType.INT64),
        RegisterSpec(HR, 7, DataType.STRING, count=3),
    ]
    [request] = plan_reads(specs)
    assert (request.address, request.count) == (0, 10)
    assert request.specs == tuple(specs)
    assert [request.offset(s) for s in request.specs] == [0, 1, 3, 7]


def test_a_value_never_straddles_two_requests() -> None:
    # 124 single registers then a float32 at 124..125: the float would end at 126 > 125.
    requests = plan_reads([*(u16(a) for a in range(124)), f32(124)])
    assert shape(requests) == [("holding_register", 0, 124), ("holding_register", 124, 2)]
    # 63 float32 back to back: 62 fit in 124 registers, the 63rd starts the next request.
    requests = plan_reads(f32(a) for a in range(0, 126, 2))
    assert shape(requests) == [("holding_register", 0, 124), ("holding_register", 124, 2)]


def test_gaps_are_not_read_by_default() -> None:
    assert shape(plan_reads([u16(0), u16(2)])) == [
        ("holding_register", 0, 1),
        ("holding_register", 2, 1),
    ]
    assert shape(plan_reads([u16(0), u16(2)], max_gap=1)) == [("holding_register", 0, 3)]
    assert len(plan_reads([u16(0), u16(10)], max_gap=8)) == 2
    assert shape(plan_reads([u16(0), u16(10)], max_gap=9)) == [("holding_register", 0, 11)]


def test_a_gap_never_breaks_the_limit() -> None:
    assert shape(plan_reads([u16(0), u16(124)], max_gap=500)) == [("holding_register", 0, 125)]
    assert len(plan_reads([u16(0), u16(125)], max_gap=500)) == 2


def test_bits_merge_up_to_2000() -> None:
    requests = plan_reads(coil(a) for a in range(2500))
    assert shape(requests) == [("coil", 0, 2000), ("coil", 2000, 500)]
    inputs = [coil(0, Table.DISCRETE_INPUT), coil(100, Table.DISCRETE_INPUT)]
    assert shape(plan_reads(inputs, max_gap=99)) == [("discrete_input", 0, 101)]
    assert len(plan_reads(inputs, max_gap=98)) == 2


def test_lower_device_limits() -> None:
    assert shape(plan_reads((u16(a) for a in range(100)), max_registers=64)) == [
        ("holding_register", 0, 64),
        ("holding_register", 64, 36),
    ]
    assert shape(plan_reads((coil(a) for a in range(10)), max_bits=8)) == [
        ("coil", 0, 8),
        ("coil", 8, 2),
    ]
    with pytest.raises(ValueError, match="string at holding_register 0 is 10 wide"):
        plan_reads([RegisterSpec(HR, 0, DataType.STRING, count=10)], max_registers=8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_gap": -1}, "max_gap: must be 0 or more"),
        ({"max_registers": 0}, r"max_registers: must be 1\.\.125"),
        ({"max_registers": 126}, r"max_registers: must be 1\.\.125"),
        ({"max_bits": 2001}, r"max_bits: must be 1\.\.2000"),
    ],
)
def test_invalid_limits(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_reads([u16(0)], **kwargs)


def test_duplicates_are_read_once() -> None:
    [request] = plan_reads([u16(5), u16(5), RegisterSpec("holding_register", 5, "uint16")])  # type: ignore[arg-type]
    assert request.specs == (u16(5),)
    assert split(request, [42]) == [(u16(5), 42)]


def test_two_bits_and_the_whole_of_one_register_share_a_read() -> None:
    low = RegisterSpec(HR, 5, DataType.BOOL, bit=0)
    high = RegisterSpec(HR, 5, DataType.BOOL, bit=15)
    [request] = plan_reads([u16(5), high, low])
    assert (request.address, request.count) == (5, 1)
    assert split(request, [0x8001]) == [(low, True), (high, True), (u16(5), 0x8001)]


def test_overlapping_views_share_a_read() -> None:
    whole = RegisterSpec(HR, 10, DataType.UINT32)
    scaled = RegisterSpec(HR, 10, DataType.UINT32, word_order=Order.LITTLE, scale=0.5)
    low_word = u16(11)
    [request] = plan_reads([low_word, whole, scaled])
    assert (request.address, request.count) == (10, 2)
    assert split(request, [0x0001, 0x0002]) == [
        (whole, 0x10002),
        (scaled, 0x20001 * 0.5),
        (low_word, 2),
    ]


def test_tables_are_planned_apart_in_a_fixed_order() -> None:
    specs = [
        u16(0, Table.INPUT_REGISTER),
        u16(1, Table.INPUT_REGISTER),
        u16(0),
        coil(0, Table.DISCRETE_INPUT),
        coil(0),
        coil(1),
    ]
    assert shape(plan_reads(specs)) == [
        ("coil", 0, 2),
        ("discrete_input", 0, 1),
        ("holding_register", 0, 1),
        ("input_register", 0, 2),
    ]


def test_the_plan_does_not_depend_on_the_input_order() -> None:
    specs = [
        *(u16(a) for a in range(0, 300, 3)),
        *(RegisterSpec(HR, a, DataType.BOOL, bit=a % 16) for a in range(0, 300, 7)),
        *(f32(a) for a in range(301, 400, 2)),
        *(coil(a) for a in range(50)),
    ]
    expected = plan_reads(specs, max_gap=2)
    shuffled = list(specs)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert plan_reads(shuffled, max_gap=2) == expected


def test_split_checks_the_answer_length() -> None:
    [request] = plan_reads([u16(0), u16(1)])
    with pytest.raises(ValueError, match="a read of 2 registers returned 3"):
        split(request, [1, 2, 3])
    [bits] = plan_reads(coil(a) for a in range(10))
    values = [True, False] * 5 + [False] * 6  # bits travel in whole bytes (6.1)
    assert [v for _, v in split(bits, values)] == values[:10]
    with pytest.raises(ValueError, match="a read of 10 bits returned 9"):
        split(bits, values[:9])
    with pytest.raises(ValueError, match="a read of 10 bits returned 18"):
        split(bits, [*values, False, False])


# --- properties -----------------------------------------------------------------------------

IMAGE = 100  # addresses of the random register and bit images; specs stay below 90
SCALES = [1.0, 0.5, -2.0]


@st.composite
def specs(
    draw: st.DrawFn, tables: list[Table] | None = None, max_address: int = 80
) -> RegisterSpec:
    table = draw(st.sampled_from(tables or list(Table)))
    address = draw(st.integers(min_value=0, max_value=max_address))
    if table.is_bit:
        return RegisterSpec(table, address, DataType.BOOL)
    data_type = draw(st.sampled_from(list(DataType)))
    numeric = data_type not in (DataType.BOOL, DataType.STRING)
    return RegisterSpec(
        table,
        address,
        data_type,
        count=draw(st.integers(1, 6)) if data_type is DataType.STRING else None,
        word_order=draw(st.sampled_from(list(Order))),
        byte_order=draw(st.sampled_from(list(Order))),
        scale=draw(st.sampled_from(SCALES)) if numeric else 1.0,
        bit=draw(st.none() | st.integers(0, 15)) if data_type is DataType.BOOL else None,
    )


def limit_of(table: Table, max_registers: int, max_bits: int) -> int:
    return max_bits if table.is_bit else max_registers


def largest_hole(members: list[RegisterSpec]) -> int:
    """The longest run of addresses inside the members' span that no member covers."""
    covered = sorted((s.address, s.end) for s in members)
    hole, end = 0, covered[0][1]
    for start, stop in covered[1:]:
        hole = max(hole, start - end)
        end = max(end, stop)
    return hole


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    spec_list=st.lists(specs(), max_size=30),
    max_gap=st.integers(0, 4),
    max_registers=st.integers(6, 20),
    max_bits=st.integers(1, 20),
)
def test_every_spec_is_read_once_within_the_limits(
    data: st.DataObject,
    spec_list: list[RegisterSpec],
    max_gap: int,
    max_registers: int,
    max_bits: int,
) -> None:
    requests = plan_reads(
        spec_list, max_gap=max_gap, max_registers=max_registers, max_bits=max_bits
    )

    served = [s for r in requests for s in r.specs]
    assert sorted(served, key=repr) == sorted(set(spec_list), key=repr)  # each exactly once
    order = [(list(Table).index(r.table), r.address) for r in requests]
    assert order == sorted(order)
    for r in requests:
        assert 1 <= r.count <= limit_of(r.table, max_registers, max_bits)
        assert all(s.table is r.table for s in r.specs)
        assert min(s.address for s in r.specs) == r.address  # no request reads a useless edge
        assert max(s.end for s in r.specs) == r.address + r.count
        assert largest_hole(list(r.specs)) <= max_gap
    assert (
        plan_reads(
            data.draw(st.permutations(spec_list)),
            max_gap=max_gap,
            max_registers=max_registers,
            max_bits=max_bits,
        )
        == requests
    )

    # Random words as a seeded image: drawing 400 values one by one would be slow to generate.
    rng = random.Random(data.draw(st.integers(0, 2**32), label="image seed"))
    images = {
        table: [rng.getrandbits(1 if table.is_bit else 16) for _ in range(IMAGE)] for table in Table
    }
    for r in requests:
        answer = images[r.table][r.address : r.address + r.count]
        for (spec, value), expected in zip(split(r, answer), r.specs, strict=True):
            assert spec is expected
            assert same(value, decode(spec, images[spec.table][spec.address : spec.end]))


def fewest_requests(members: list[RegisterSpec], limit: int, max_gap: int) -> int:
    """By brute force over all groupings: the fewest valid requests that read `members`."""
    n = len(members)
    valid = [False] * (1 << n)
    for mask in range(1, 1 << n):
        group = [members[i] for i in range(n) if mask >> i & 1]
        span = max(s.end for s in group) - min(s.address for s in group)
        valid[mask] = span <= limit and largest_hole(group) <= max_gap
    best = [0] + [n + 1] * ((1 << n) - 1)
    for mask in range(1, 1 << n):
        lowest = mask & -mask
        sub = mask
        while sub:
            if sub & lowest and valid[sub]:
                best[mask] = min(best[mask], best[mask ^ sub] + 1)
            sub = (sub - 1) & mask
    return best[(1 << n) - 1]


@settings(max_examples=200, deadline=None)
@given(
    spec_list=st.lists(specs([HR], max_address=16), min_size=1, max_size=7, unique=True),
    max_gap=st.integers(0, 3),
    max_registers=st.integers(6, 12),
)
def test_the_greedy_plan_is_the_fewest_requests(
    spec_list: list[RegisterSpec], max_gap: int, max_registers: int
) -> None:
    requests = plan_reads(spec_list, max_gap=max_gap, max_registers=max_registers)
    assert len(requests) == fewest_requests(spec_list, max_registers, max_gap)
