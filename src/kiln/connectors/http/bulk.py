"""Bulk uploads for backfills and migrations: Arrow IPC streams or Parquet files of points.

The table has the columns

- `path` (string): the tag's namespace path;
- `ts`: a timestamp (any unit, with or without a zone; a naive one is UTC), or an integer of
  epoch microseconds;
- `value`: double, integer, boolean or string (one type per upload; a mixed upload is several);
- `quality` (optional, unsigned 32-bit): the OPC UA StatusCode, Good when absent.

Pure: no I/O. `read_table` raises `BulkError` saying what is wrong with the upload; it never
builds an object per row, so a large backfill costs what Arrow and NumPy cost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from kiln.core.quality import Quality

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (ARROW_STREAM, ARROW_FILE, PARQUET)


class BulkError(ValueError):
    """The upload is not a table of points; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class BulkColumns:
    names: list[str]  # the distinct paths, in order of first appearance
    index: NDArray[np.int32]  # each row's path, as an index into `names`
    paths: NDArray[Any]  # each row's path (object: str)
    values: NDArray[Any]  # float64, int64, bool or object (str)
    source_us: NDArray[np.int64]
    quality: NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.paths)


def read_table(body: bytes, content_type: str) -> pa.Table:
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == PARQUET:
            return pq.read_table(io.BytesIO(body))
        if kind == ARROW_STREAM:
            return ipc.open_stream(body).read_all()
        if kind == ARROW_FILE:
            return ipc.open_file(io.BytesIO(body)).read_all()
    except (pa.ArrowException, OSError) as err:
        raise BulkError(f"the body is not a valid {kind} table: {err}") from None
    raise BulkError(
        f"Content-Type {content_type!r} is not a bulk format: send {ARROW_STREAM}, {ARROW_FILE} "
        f"or {PARQUET}"
    )


def columns(table: pa.Table) -> BulkColumns:
    """The points of `table` as NumPy columns (BulkError for a table of the wrong shape)."""
    present = set(table.column_names)
    missing = [c for c in ("path", "ts", "value") if c not in present]
    if missing:
        raise BulkError(
            f"column(s) {', '.join(missing)} missing: a bulk table has path, ts, value and "
            f"optionally quality (it has {', '.join(table.column_names) or 'none'})"
        )
    extra = present - {"path", "ts", "value", "quality"}
    if extra:
        raise BulkError(
            f"unknown column(s) {', '.join(sorted(extra))}: use path, ts, value, quality"
        )
    for name in ("path", "ts", "value"):
        if table.column(name).null_count:
            raise BulkError(f"column {name} has {table.column(name).null_count} nulls")
    path = table.column("path")
    if not pa.types.is_string(path.type) and not pa.types.is_large_string(path.type):
        raise BulkError(f"column path must be strings, not {path.type}")
    # Distinct paths found by Arrow (a backfill has millions of rows but few paths): sorting
    # millions of Python strings to find them would cost seconds.
    encoded = pc.dictionary_encode(path).combine_chunks()
    names = [str(n) for n in encoded.dictionary.to_pylist()]
    index = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    return BulkColumns(
        names=names,
        index=index,
        paths=np.asarray(names, dtype=object)[index],
        values=_values(table.column("value")),
        source_us=_micros(table.column("ts")),
        quality=_quality(table),
    )


def _values(col: pa.ChunkedArray) -> NDArray[Any]:
    t = col.type
    if pa.types.is_floating(t):
        return np.asarray(col.cast(pa.float64()).to_numpy(), dtype=np.float64)
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t) and len(col) and pc.max(col).as_py() >= 2**63:
            raise BulkError("column value has unsigned integers beyond the int64 range")
        return np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.int64)
    if pa.types.is_boolean(t):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    raise BulkError(f"column value must be double, integer, boolean or string, not {t}")


def _micros(col: pa.ChunkedArray) -> NDArray[np.int64]:
    t = col.type
    if pa.types.is_timestamp(t):
        micros = col.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
        return np.asarray(micros.to_numpy(), dtype=np.int64)
    if pa.types.is_integer(t):
        return np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.int64)
    raise BulkError(f"column ts must be a timestamp or integer microseconds, not {t}")


def _quality(table: pa.Table) -> NDArray[np.uint32]:
    if "quality" not in table.column_names:
        return np.full(table.num_rows, int(Quality.GOOD), dtype=np.uint32)
    col = table.column("quality")
    if not pa.types.is_integer(col.type) or col.null_count:
        raise BulkError("column quality must be unsigned integers (OPC UA StatusCodes), no nulls")
    try:
        return np.asarray(col.cast(pa.uint32()).to_numpy(), dtype=np.uint32)
    except pa.ArrowInvalid:
        raise BulkError("column quality has values outside 0..4294967295") from None
