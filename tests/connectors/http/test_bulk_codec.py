"""The bulk codec on its own: timestamps of every unit against the admission window (with
Python's integers as the oracle), NaN rules equal to `value_problem`, and limits found in the
Arrow IPC headers before any buffer is decompressed."""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.http import bulk
from kiln.connectors.http.bulk import (
    ARROW_FILE,
    ARROW_STREAM,
    PARQUET,
    BulkError,
    BulkLimits,
    BulkTooLarge,
    columns,
    read_columns,
)
from kiln.core.admission import TimeWindow, value_problem

NOW_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
WINDOW = TimeWindow.at(NOW_US, 600)
ROOMY = BulkLimits(max_rows=10_000_000, max_inflated_bytes=1 << 30)
I64 = st.integers(-(2**63), 2**63 - 1)
T = TypeVar("T")
UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def table(ts: pa.Array, values: object = None, quality: object = None) -> pa.Table:
    n = len(ts)
    cols: dict[str, object] = {
        "path": ["a/b"] * n,
        "ts": ts,
        "value": values if values is not None else [1.0] * n,
    }
    if quality is not None:
        cols["quality"] = pa.array(quality, pa.uint32())
    return pa.table(cols)


def exact_us(raw: int, unit: str) -> int:
    per = UNITS[unit]
    return raw // 1000 if per is None else raw * per


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_every_unit_is_floored_to_microseconds(unit: str, tz: str | None) -> None:
    per = UNITS[unit]
    raw = NOW_US * 1000 - 1 if per is None else NOW_US // per - 3
    cols = columns(table(pa.array([raw], pa.timestamp(unit, tz))), WINDOW)
    assert cols.source_us.tolist() == [exact_us(raw, unit)]
    assert cols.refused == {}


def test_nanoseconds_floor_below_the_epoch_is_refused_not_rounded_up() -> None:
    cols = columns(table(pa.array([-1], pa.timestamp("ns"))), WINDOW)
    assert cols.refused["a/b"].startswith("row 0: timestamp ")
    assert "before 1970-01-01T00:00:00Z" in cols.refused["a/b"]


@settings(max_examples=300, deadline=None)
@given(raws=st.lists(I64, min_size=1, max_size=5), unit=st.sampled_from(list(UNITS)))
def test_the_window_is_applied_as_python_integers_would(raws: list[int], unit: str) -> None:
    edges = [WINDOW.newest_us, WINDOW.newest_us + 1, 0, -1]
    per = UNITS[unit]
    raws += [e * 1000 + 999 if per is None else e // per for e in edges]
    cols = columns(table(pa.array(raws, pa.timestamp(unit))), WINDOW)
    expected = [WINDOW.problem(exact_us(r, unit)) for r in raws]
    bad = [i for i, p in enumerate(expected) if p is not None]
    if not bad:
        assert cols.refused == {}
        assert cols.source_us.tolist() == [exact_us(r, unit) for r in raws]
    else:
        assert cols.refused["a/b"].startswith(f"row {bad[0]}: {expected[bad[0]]} ")
        assert f"{len(bad)} of its {len(raws)} rows" in cols.refused["a/b"]


@given(raw=st.integers(0, 2**64 - 1))
def test_unsigned_microseconds_never_overflow(raw: int) -> None:
    cols = columns(table(pa.array([raw], pa.uint64())), WINDOW)
    problem = WINDOW.problem(raw)
    assert (cols.refused.get("a/b") is None) == (problem is None)
    if problem is not None:
        assert problem in cols.refused["a/b"]


@given(
    values=st.lists(
        st.sampled_from([0.0, 1.5, float("nan"), float("inf"), float("-inf")]),
        min_size=1,
        max_size=6,
    ),
    quality=st.lists(
        st.sampled_from([0, 0x40000000, 0x80000000, 0xC0000000, 0x808A0000]),
        min_size=6,
        max_size=6,
    ),
)
def test_non_finite_values_follow_value_problem(values: list[float], quality: list[int]) -> None:
    n = len(values)
    cols = columns(table(pa.array([NOW_US] * n, pa.int64()), values, quality[:n]), WINDOW)
    expected = [value_problem(v, q) for v, q in zip(values, quality, strict=False)]
    bad = [i for i, p in enumerate(expected) if p is not None]
    if bad:
        assert cols.refused["a/b"].startswith(f"row {bad[0]}: {expected[bad[0]]} ")
    else:
        assert cols.refused == {}


def test_encodings_pandas_and_arrow_produce_are_read() -> None:
    n = 4
    t = pa.table({
        "path": pa.array(["a/b", "a/c", "a/b", "a/c"]).dictionary_encode(),
        "ts": pa.array([NOW_US] * n, pa.timestamp("us")),
        "value": pa.array(["x", "y", "x", "z"], pa.string_view()).cast(pa.string()).dictionary_encode(),
    })  # fmt: skip
    cols = columns(t, WINDOW)
    assert cols.names == ["a/b", "a/c"]
    assert cols.paths.tolist() == ["a/b", "a/c", "a/b", "a/c"]
    assert cols.values.tolist() == ["x", "y", "x", "z"]
    assert cols.counts.tolist() == [2, 2] and cols.first.tolist() == [0, 1]
    views = pa.table({
        "path": pa.array(["a/b"], pa.string_view()),
        "ts": pa.array([NOW_US], pa.int64()),
        "value": pa.array(["on"], pa.large_string()),
    })  # fmt: skip
    assert columns(views, WINDOW).paths.tolist() == ["a/b"]


def _ipc(t: pa.Table, kind: str, compression: str | None, chunk: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    new = pa.ipc.new_stream if kind == ARROW_STREAM else pa.ipc.new_file
    with new(sink, t.schema, options=options) as writer:
        writer.write_table(t, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


def _constant(n: int) -> pa.Table:
    return pa.table({
        "path": pa.array(["a/b"] * n).dictionary_encode(),
        "ts": pa.array(np.full(n, NOW_US, dtype=np.int64)),
        "value": pa.array(np.zeros(n)),
    })  # fmt: skip


@pytest.mark.parametrize("kind", [ARROW_STREAM, ARROW_FILE])
def test_ipc_limits_are_read_from_the_headers_before_decompressing(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _ipc(_constant(1_000_000), kind, "zstd")  # 16 MB of columns, a few KiB sent
    assert len(body) < 100_000

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("the table was read before the limits were checked")

    monkeypatch.setattr(bulk.ipc, "open_stream", no_reading)
    monkeypatch.setattr(bulk.ipc, "open_file", no_reading)
    inflated = BulkLimits(max_rows=10_000_000, max_inflated_bytes=1 << 20)
    with pytest.raises(BulkTooLarge, match=r"inflates to at least \d+ bytes; at most 1048576"):
        read_columns(body, kind, inflated, WINDOW)
    rows = BulkLimits(max_rows=999_999, max_inflated_bytes=1 << 30)
    with pytest.raises(BulkTooLarge, match="1000000 rows; at most 999999 per upload"):
        read_columns(body, kind, rows, WINDOW)


@pytest.mark.parametrize("kind", [ARROW_STREAM, ARROW_FILE])
@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_ipc_counting_matches_what_arrow_allocates(kind: str, compression: str | None) -> None:
    t = _constant(50_000)
    body = _ipc(t, kind, compression, chunk=7_000)
    cols = read_columns(body, kind, ROOMY, WINDOW)
    assert len(cols) == 50_000
    counted = 0
    for message in bulk._messages(body, kind):
        if message.metadata is not None:
            empty = memoryview(b"")
            content = memoryview(message.body) if message.body is not None else empty
            counted += bulk._message_cost(memoryview(message.metadata), content)[1]
    assert counted >= t.nbytes  # never less than the table takes once read


def test_a_parquet_over_the_limits_is_refused_from_its_footer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = io.BytesIO()
    noisy = _constant(200_000).set_column(
        2, "value", pa.array(np.random.default_rng(1).random(200_000))
    )
    pq.write_table(noisy, sink, compression="zstd", row_group_size=50_000)
    body = sink.getvalue()
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", None)  # reading would fail
    with pytest.raises(BulkTooLarge, match="200000 rows; at most 100000 per upload"):
        read_columns(body, PARQUET, BulkLimits(100_000, 1 << 30), WINDOW)
    with pytest.raises(
        BulkTooLarge, match=r"ingest\.max_inflated_bytes and ingest\.bulk_max_bytes"
    ):
        read_columns(body, PARQUET, BulkLimits(1_000_000, 1 << 20), WINDOW)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(data=st.data(), kind=st.sampled_from([ARROW_STREAM, ARROW_FILE]))
def test_corrupted_ipc_is_a_bulk_error_or_a_table(data: st.DataObject, kind: str) -> None:
    body = bytearray(_ipc(_constant(100), kind, "zstd", chunk=40))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    with contextlib.suppress(BulkError):
        read_columns(bytes(body[:cut]), kind, BulkLimits(1_000, 1 << 20), WINDOW)


def test_invalid_utf8_in_an_ipc_string_column_is_a_bulk_error() -> None:
    """Arrow's IPC reader does not check UTF-8 (the fuzz test above found the decode error
    escaping as a 500); the full validation after reading turns it into the upload's fault."""
    data = pa.py_buffer(b"a/b\xc0\xff")
    offsets = pa.py_buffer(np.array([0, 5], dtype=np.int32).tobytes())
    path = pa.Array.from_buffers(pa.string(), 1, [None, offsets, data])
    table = pa.table({"path": path, "ts": pa.array([NOW_US]), "value": pa.array([1.0])})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(BulkError, match=r"(?i)invalid utf-?8"):
        read_columns(sink.getvalue().to_pybytes(), ARROW_STREAM, ROOMY, WINDOW)


_POOLS: list[pa.MemoryPool] = []  # buffers outlive the measurement: so must their pool


def _peak_arrow_bytes(read: Callable[[], T]) -> tuple[T, int]:
    """`read()`'s result, and the most Arrow memory held at once while it ran."""
    previous = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(previous)
    _POOLS.append(pool)
    pa.set_memory_pool(pool)
    try:
        return read(), pool.max_memory()
    finally:
        pa.set_memory_pool(previous)


def test_a_parquet_string_bomb_stays_dictionary_encoded() -> None:
    """One long string repeated: Parquet stores it once; reading it must not copy it per row."""
    n = 200_000
    one = pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), ["x" * 1_000])
    t = pa.table({
        "path": pa.array(["a/b"] * n),
        "ts": pa.array(np.full(n, NOW_US, dtype=np.int64)),
        "value": one,  # 200 MB once decoded
    })  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(t, sink, compression="zstd", store_schema=False)  # as a foreign writer would
    assert len(sink.getvalue()) < 100_000
    cols, peak = _peak_arrow_bytes(
        lambda: read_columns(sink.getvalue(), PARQUET, BulkLimits(1_000_000, 64 << 20), WINDOW)
    )
    assert len(cols) == n and cols.values[0] == "x" * 1_000
    assert peak < 16 << 20, f"{peak} bytes of Arrow memory at the peak"


@pytest.mark.parametrize(("column", "fragment"), [
    ("value", "column value must be double"),
    ("path", "column path must be strings"),
    ("ts", "column ts must be a timestamp"),
])  # fmt: skip
def test_a_nested_parquet_column_is_refused_before_it_is_read(
    column: str, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = _constant(10).set_column(
        _constant(10).schema.get_field_index(column), column, pa.array([[1.0] * 1000] * 10)
    )
    sink = io.BytesIO()
    pq.write_table(t, sink)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", None)
    with pytest.raises(BulkError, match=fragment):
        read_columns(sink.getvalue(), PARQUET, ROOMY, WINDOW)


def test_a_negative_stated_buffer_length_cannot_cancel_the_memory_limit() -> None:
    """Each compressed IPC buffer states its inflated length; -1 means "not compressed". A
    more negative one was added to the total and let other buffers inflate past the limit."""
    n = 100_000
    body = bytearray(_ipc(_constant(n), ARROW_STREAM, "zstd"))
    stated = struct.pack("<q", 8 * n)  # the ts column: n int64 values inflated
    at = body.index(stated)
    body[at : at + 8] = struct.pack("<q", -(10**12))
    with pytest.raises(BulkError, match="negative length"):
        read_columns(bytes(body), ARROW_STREAM, BulkLimits(1_000_000, 1 << 20), WINDOW)
