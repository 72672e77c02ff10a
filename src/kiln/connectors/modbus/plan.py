"""The fewest read requests that fetch a set of register specs from one device (one unit id).

Pure. Specs are grouped by table, sorted by address and merged left to right: a spec joins the
current request when it starts at most `max_gap` addresses after the request's end (or overlaps
it) and the request stays within the per-request limit; otherwise it opens the next request. A
value is never split between two requests. Because every value fits in one request, this greedy
scan gives the fewest requests for the given gap and limit (the tests check it against brute force).

Why `max_gap` defaults to 0: many devices answer a read that touches an address they do not map
with exception 02 ILLEGAL DATA ADDRESS (7), which fails the whole request and every tag in it.
Reading only mapped addresses is the safe default; a device whose map is known to be dense can be
read in fewer requests with a larger gap (the unused words cost 2 bytes each, a round trip costs
far more).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kiln.connectors.modbus.codec import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    RegisterSpec,
    Table,
    Value,
    decode,
)

_TABLES = tuple(Table)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of `count` consecutive addresses of `table` from `address` on, serving `specs`.

    `specs` are distinct and sorted by address; several may share registers (two bits of one
    register, a uint32 and a view of its high word).
    """

    table: Table
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]

    def offset(self, spec: RegisterSpec) -> int:
        """Index of the spec's first register (or bit) in this request's response."""
        return spec.address - self.address


def plan_reads(
    specs: Iterable[RegisterSpec],
    *,
    max_gap: int = 0,
    max_registers: int = MAX_READ_REGISTERS,
    max_bits: int = MAX_READ_BITS,
) -> list[ReadRequest]:
    """The requests that read every distinct spec exactly once, in table then address order.

    `max_gap` is the largest run of unrequested addresses (registers, or bits in a bit table) a
    request may read to avoid another request. `max_registers` and `max_bits` lower the
    protocol limits (6.1 to 6.4) for devices that accept less; a spec wider than the limit is a
    ValueError. The result depends only on the set of specs, not on their order.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap: must be 0 or more, not {max_gap}")
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers: must be 1..{MAX_READ_REGISTERS} (6.3, 6.4)")
    if not 1 <= max_bits <= MAX_READ_BITS:
        raise ValueError(f"max_bits: must be 1..{MAX_READ_BITS} (6.1, 6.2)")
    requests: list[ReadRequest] = []
    for table, group in itertools.groupby(sorted(set(specs), key=_sort_key), key=_table):
        limit = max_bits if table.is_bit else max_registers
        members: list[RegisterSpec] = []
        start = end = 0
        for spec in group:
            if spec.width > limit:
                raise ValueError(
                    f"{spec.data_type} at {table} {spec.address} is {spec.width} wide, more "
                    f"than one request may read ({limit})"
                )
            if members and spec.address - end <= max_gap and max(end, spec.end) - start <= limit:
                members.append(spec)
                end = max(end, spec.end)
                continue
            if members:
                requests.append(ReadRequest(table, start, end - start, tuple(members)))
            members, start, end = [spec], spec.address, spec.end
        requests.append(ReadRequest(table, start, end - start, tuple(members)))
    return requests


def split(request: ReadRequest, registers: Sequence[int]) -> list[tuple[RegisterSpec, Value]]:
    """Each spec of `request` with its value decoded from the response's registers (or bits).

    A bit response may carry up to 7 padding bits after `count`, since bits travel packed in
    whole bytes (6.1, 6.2); a register response must have exactly `count` registers.
    """
    size = len(registers)
    if request.table.is_bit:
        if not request.count <= size < request.count + 8:
            raise ValueError(f"a read of {request.count} bits returned {size}")
    elif size != request.count:
        raise ValueError(f"a read of {request.count} registers returned {size}")
    return [
        (spec, decode(spec, registers[request.offset(spec) : request.offset(spec) + spec.width]))
        for spec in request.specs
    ]


def _table(spec: RegisterSpec) -> Table:
    return spec.table


def _sort_key(spec: RegisterSpec) -> tuple[object, ...]:
    # Every field takes part, so that equal keys mean equal specs and the order is total.
    return (
        _TABLES.index(spec.table),
        spec.address,
        spec.end,
        spec.data_type,
        -1 if spec.bit is None else spec.bit,
        spec.word_order,
        spec.byte_order,
        spec.scale,
        spec.offset,
        spec.encoding,
    )
