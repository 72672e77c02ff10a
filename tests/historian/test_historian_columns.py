"""The pure column functions of the writer's hot path."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.historian.maths.columns import (
    Columns,
    decode,
    encode_values,
    kind_of,
    last_of_each_series,
    order_and_dedupe,
)


def columns(series: list[int], ts: list[int], values: list[float] | None = None) -> Columns:
    n = len(series)
    return Columns(
        series=np.asarray(series, dtype=np.int32),
        ts=np.asarray(ts, dtype=np.int64),
        value=np.asarray(values if values is not None else range(n), dtype=np.float64),
        text=None,
        quality=np.zeros(n, dtype=np.uint32),
        recv=np.zeros(n, dtype=np.int64),
        historical=np.zeros(n, dtype=np.bool_),
    )


def test_order_and_dedupe_sorts_by_series_then_time_and_keeps_the_last() -> None:
    cols = columns([2, 0, 2, 0, 1, 0], [5, 9, 1, 3, 7, 9], [0, 1, 2, 3, 4, 5])
    out, dropped = order_and_dedupe(cols)
    assert dropped == 1
    assert out.series.tolist() == [0, 0, 1, 2, 2]
    assert out.ts.tolist() == [3, 9, 7, 1, 5]
    assert out.value.tolist() == [3, 5, 4, 2, 0]  # (0, 9): the later value 5 wins


def test_order_and_dedupe_with_a_time_span_too_wide_for_one_key() -> None:
    big = 2**62
    cols = columns([1, 1, 0, 1], [big, -big, 0, big], [0, 1, 2, 3])
    out, dropped = order_and_dedupe(cols)
    assert dropped == 1
    assert out.ts.tolist() == [0, -big, big]
    assert out.value.tolist() == [2, 1, 3]


def test_last_of_each_series() -> None:
    ids = np.asarray([0, 0, 3, 5, 5, 5], dtype=np.int32)
    assert last_of_each_series(ids).tolist() == [False, True, True, False, False, True]


def test_encode_numbers_bools_and_text() -> None:
    enc = encode_values([1, 2.5, True, "on"])
    assert enc.numbers[:3].tolist() == [1.0, 2.5, 1.0]
    assert enc.text is not None
    assert enc.text.tolist() == [None, None, None, "on"]
    assert enc.dtype_kind is None


def test_encode_a_numpy_column_keeps_its_kind() -> None:
    enc = encode_values(np.asarray([1, 2], dtype=np.int16))
    assert enc.dtype_kind == "int"
    assert enc.text is None
    assert enc.numbers.dtype == np.float64


@pytest.mark.parametrize("bad", [None, object(), [1, 2], 10**400])
def test_encode_rejects_values_of_no_kind(bad: object) -> None:
    with pytest.raises(ValueError, match="value 1"):
        encode_values([1.0, bad])


def test_kind_of_first_values() -> None:
    assert [kind_of(v) for v in (True, np.bool_(False), 3, np.int64(3), 1.5, "x")] == [
        "bool",
        "bool",
        "int",
        "int",
        "float",
        "string",
    ]


def test_decode_by_kind() -> None:
    assert decode("int", 3.0, None) == 3
    assert type(decode("int", 3.0, None)) is int
    assert decode("int", 3.5, None) == 3.5  # not silently truncated
    assert decode("bool", 0.0, None) is False
    assert decode("string", 2.0, None) == "2"
    assert decode("float", None, "fault") == "fault"
