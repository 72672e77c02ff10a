"""Protocol Buffers wire format written by hand, field by field (protobuf's encoding guide).

For tests that must build messages no generated encoder would produce: another
implementation's bytes, invalid UTF-8 in a string field, fields in an odd order.
"""

from __future__ import annotations

import struct


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def vint(number: int, value: int) -> bytes:  # wire type 0: varint
    return key(number, 0) + varint(value)


def blob(number: int, data: bytes) -> bytes:  # wire type 2: length-delimited
    return key(number, 2) + varint(len(data)) + data


def f32(number: int, value: float) -> bytes:  # wire type 5
    return key(number, 5) + struct.pack("<f", value)


def f64(number: int, value: float) -> bytes:  # wire type 1
    return key(number, 1) + struct.pack("<d", value)
