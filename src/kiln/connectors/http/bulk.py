"""Bulk uploads for backfills and migrations: Arrow IPC streams or Parquet files of points.

The table has the columns

- `path` (string, large string, string view, or dictionary-encoded strings such as a pandas
  category): the tag's namespace path;
- `ts`: a timestamp of any unit (s, ms, µs, ns; with or without a zone, a naive one is UTC), or
  an integer of epoch microseconds. Kiln keeps microseconds: finer digits are dropped (floor,
  as line protocol does with nanoseconds);
- `value`: double, integer, boolean or string (one type per upload; a mixed upload is several);
- `quality` (optional, unsigned 32-bit): the OPC UA StatusCode, Good when absent.

Limits are checked before the work they bound: the row count and the inflated size come from
the Parquet footer, or from each Arrow IPC message's header (a compressed buffer states its
inflated length in its first 8 bytes), before any page or buffer is decompressed.

Rows follow the rules of `kiln.core.admission` (timestamps in the acceptance window, finite
values unless Bad); a path with a row outside them is left out whole, with the first such row
named, so a path's series is either stored as sent or not at all.

Pure: no I/O. Meant to run in a worker thread: Arrow and NumPy release the GIL for the bulk
of the work, and nothing here builds an object per row except the paths column.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from kiln.core.admission import MAX_TEXT, TimeWindow, value_problem
from kiln.core.quality import Quality

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (ARROW_STREAM, ARROW_FILE, PARQUET)
COLUMNS = ("path", "ts", "value", "quality")


class BulkError(ValueError):
    """The upload is not a table of points; the message says what to fix (400)."""


class BulkTooLarge(BulkError):
    """The upload is over a limit, found before the work it bounds (413)."""


@dataclass(frozen=True, slots=True)
class BulkLimits:
    max_rows: int  # ingest.bulk_max_rows
    max_inflated_bytes: int  # what the table may take once decompressed


@dataclass(frozen=True, slots=True)
class BulkColumns:
    names: list[str]  # the distinct paths, in order of first appearance
    index: NDArray[np.int32]  # each row's path, as an index into `names`
    paths: NDArray[Any]  # each row's path (object: str)
    values: NDArray[Any]  # float64, int64, bool or object (str)
    source_us: NDArray[np.int64]
    quality: NDArray[np.uint32]
    first: NDArray[np.intp]  # each path's first row
    counts: NDArray[np.intp]  # each path's number of rows
    refused: dict[str, str] = field(default_factory=dict)  # path: its first row outside the rules

    def __len__(self) -> int:
        return len(self.paths)

    def keep(self, left_out: set[str]) -> BulkColumns:
        """The rows of the paths not in `left_out` (names and counts are kept as they are)."""
        if not left_out:
            return self
        refused = np.array([p in left_out for p in self.names], dtype=bool)
        rows = np.flatnonzero(~refused[self.index])
        values = self.values
        return BulkColumns(
            self.names,
            self.index[rows],
            _take(self.paths, rows),
            _take(values, rows) if values.dtype == object else values[rows],
            self.source_us[rows],
            self.quality[rows],
            self.first,
            self.counts,
            self.refused,
        )


def read_columns(
    body: bytes | list[bytes], content_type: str, limits: BulkLimits, window: TimeWindow
) -> BulkColumns:
    """The points of an upload (BulkTooLarge over a limit, BulkError for anything else wrong).

    `body` may be the chunks as received: joining hundreds of megabytes is a copy that holds
    the GIL, so it is done here, in the worker, not on the event loop.
    """
    if isinstance(body, list):
        body = b"".join(body)
    table = read_table(body, content_type, limits)
    try:
        return columns(table, window)
    except pa.ArrowException as err:
        # Arrow refusing a column is the upload's fault (an odd type or encoding): say so.
        raise BulkError(f"the table's columns could not be read as points: {err}") from None


def read_table(body: bytes, content_type: str, limits: BulkLimits) -> pa.Table:
    kind = content_type.split(";")[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise BulkError(
            f"Content-Type {content_type!r} is not a bulk format: send {ARROW_STREAM}, "
            f"{ARROW_FILE} or {PARQUET}"
        )
    try:
        if kind == PARQUET:
            table = _parquet(body, limits)
        else:
            _check_ipc(body, kind, limits)
            if kind == ARROW_STREAM:
                table = ipc.open_stream(body).read_all()
            else:
                table = ipc.open_file(pa.py_buffer(body)).read_all()
        # Arrow trusts the offsets and bytes an IPC message carries: a crafted one could make
        # a later read run past a buffer or meet invalid UTF-8. Checked here, once, in full.
        table.validate(full=True)
        return table
    except (pa.ArrowException, OSError, struct.error, IndexError, ValueError) as err:
        if isinstance(err, BulkError):
            raise
        raise BulkError(f"the body is not a valid {kind} table: {err}") from None


def _too_many_rows(rows: int, limits: BulkLimits) -> BulkTooLarge:
    return BulkTooLarge(
        f"{rows} rows; at most {limits.max_rows} per upload (ingest.bulk_max_rows): "
        "split the table into several uploads"
    )


def _too_large(inflated: int, limits: BulkLimits) -> BulkTooLarge:
    return BulkTooLarge(
        f"the table inflates to at least {inflated} bytes; at most {limits.max_inflated_bytes} "
        "per upload (the larger of ingest.max_inflated_bytes and ingest.bulk_max_bytes): split "
        "it into several uploads"
    )


def _parquet(body: bytes, limits: BulkLimits) -> pa.Table:
    pf = pq.ParquetFile(pa.BufferReader(body))
    meta = pf.metadata
    if meta.num_rows > limits.max_rows:
        raise _too_many_rows(meta.num_rows, limits)
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    inflated = sum(g.total_byte_size for g in groups)  # uncompressed, by the format's definition
    if inflated > limits.max_inflated_bytes:
        raise _too_large(inflated, limits)
    _check_schema(pf.schema_arrow)
    # Strings stay dictionary-encoded as Parquet stores them: a million copies of one long
    # string must cost a million indices, not a million strings.
    strings = [f.name for f in pf.schema_arrow if f.name in ("path", "value") and _is_text(f.type)]
    pf = pq.ParquetFile(pa.BufferReader(body), read_dictionary=strings or None)
    # The footer could lie: what is read is counted too, a row group at a time.
    tables: list[pa.Table] = []
    rows = nbytes = 0
    for i in range(len(groups)):
        table = pf.read_row_group(i)
        rows += table.num_rows
        nbytes += table.nbytes
        if rows > limits.max_rows:
            raise _too_many_rows(rows, limits)
        if nbytes > limits.max_inflated_bytes:
            raise _too_large(nbytes, limits)
        tables.append(table)
    if not tables:
        return pf.schema_arrow.empty_table()
    return pa.concat_tables(tables)


# Arrow IPC messages (format/Message.fbs, File.fbs) are FlatBuffers; the few fields needed to
# count rows and inflated bytes before decompressing are read here directly.
_RECORD_BATCH, _DICTIONARY_BATCH = 3, 2


def _u32(buf: memoryview, pos: int) -> int:
    return int(struct.unpack_from("<I", buf, pos)[0])


def _field(buf: memoryview, table: int, slot: int) -> int:
    """Position of field `slot` of the FlatBuffers table at `table`, or 0 when absent."""
    vtable = table - int(struct.unpack_from("<i", buf, table)[0])
    if 4 + 2 * slot >= struct.unpack_from("<H", buf, vtable)[0]:
        return 0
    offset = int(struct.unpack_from("<H", buf, vtable + 4 + 2 * slot)[0])
    return table + offset if offset else 0


def _child(buf: memoryview, pos: int) -> int:
    return pos + _u32(buf, pos)


def _vector(buf: memoryview, table: int, slot: int) -> tuple[int, int]:
    """(start, length) of a vector field."""
    pos = _field(buf, table, slot)
    if not pos:
        return 0, 0
    vec = _child(buf, pos)
    return vec + 4, _u32(buf, vec)


def _message_cost(meta: memoryview, body: memoryview) -> tuple[int, int]:
    """(rows, inflated bytes) of one IPC message, from its header and buffer prefixes."""
    message = _u32(meta, 0)
    kind_pos, header_pos = _field(meta, message, 1), _field(meta, message, 2)
    kind = meta[kind_pos] if kind_pos else 0
    if kind not in (_RECORD_BATCH, _DICTIONARY_BATCH) or not header_pos:
        return 0, 0
    batch = _child(meta, header_pos)
    if kind == _DICTIONARY_BATCH:
        data = _field(meta, batch, 1)
        if not data:
            return 0, 0
        batch = _child(meta, data)
    length_pos = _field(meta, batch, 0)
    rows = int(struct.unpack_from("<q", meta, length_pos)[0]) if length_pos else 0
    compressed = bool(_field(meta, batch, 3))
    start, n = _vector(meta, batch, 2)
    inflated = 0
    for i in range(n):
        offset, length = struct.unpack_from("<qq", meta, start + 16 * i)
        if offset < 0 or length < 0 or offset + length > len(body):
            raise BulkError("the body is not a valid Arrow table: a buffer lies outside its body")
        if compressed and length >= 8:
            stated = int(struct.unpack_from("<q", body, offset)[0])
            if stated < -1:  # -1 says "stored uncompressed"; less would cancel other buffers out
                raise BulkError(
                    "the body is not a valid Arrow table: a compressed buffer states a "
                    f"negative length ({stated})"
                )
            inflated += length - 8 if stated == -1 else stated
        else:
            inflated += length
    return (rows if kind == _RECORD_BATCH else 0), inflated


def _messages(body: bytes, kind: str) -> Iterator[pa.ipc.Message]:
    if kind == ARROW_STREAM:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
        while True:
            try:
                yield reader.read_next_message()
            except StopIteration:
                return
    # A file's batches are where its footer's blocks say (File.fbs: Footer, Block).
    buf = memoryview(body)
    if len(body) < 18 or body[-6:] != b"ARROW1":
        raise BulkError(f"the body is not a valid {kind} table: no Arrow file footer")
    footer_len = int(struct.unpack_from("<i", buf, len(body) - 10)[0])
    footer_start = len(body) - 10 - footer_len
    if footer_len <= 0 or footer_start < 8:
        raise BulkError(f"the body is not a valid {kind} table: bad footer length")
    footer = buf[footer_start : len(body) - 10]
    root = _u32(footer, 0)
    for slot in (2, 3):  # dictionaries, recordBatches
        start, n = _vector(footer, root, slot)
        for i in range(n):
            offset, meta_len, body_len = struct.unpack_from("<qi4xq", footer, start + 24 * i)
            if offset < 0 or meta_len < 0 or body_len < 0:
                raise BulkError(f"the body is not a valid {kind} table: bad block")
            block = pa.py_buffer(body)[offset : offset + meta_len + body_len]
            try:
                yield pa.ipc.MessageReader.open_stream(block).read_next_message()
            except StopIteration:
                # Inside a generator a StopIteration would become a RuntimeError (PEP 479).
                raise BulkError(
                    f"the body is not a valid {kind} table: a footer block points at no message"
                ) from None


def _check_ipc(body: bytes, kind: str, limits: BulkLimits) -> None:
    rows = inflated = 0
    for message in _messages(body, kind):
        if message.metadata is None:
            continue
        content = memoryview(message.body) if message.body is not None else memoryview(b"")
        n, size = _message_cost(memoryview(message.metadata), content)
        rows += n
        inflated += size
        if rows > limits.max_rows:
            raise _too_many_rows(rows, limits)
        if inflated > limits.max_inflated_bytes:
            raise _too_large(inflated, limits)


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _check_schema(schema: pa.Schema) -> None:
    """The columns and their types, checked before any row is read: a nested column could
    otherwise inflate without bound."""
    _check_names(schema.names)
    types = {f.name: f.type for f in schema}
    if not _is_text(types["path"]):
        raise BulkError(
            f"column path must be strings (or dictionary-encoded strings), not {types['path']}"
        )
    ts = types["ts"]
    if not (pa.types.is_timestamp(ts) or pa.types.is_integer(ts)):
        raise BulkError(f"column ts must be a timestamp or integer microseconds, not {ts}")
    value = types["value"]
    plain = value.value_type if pa.types.is_dictionary(value) else value
    if not (
        _is_text(plain)
        or pa.types.is_floating(plain)
        or pa.types.is_integer(plain)
        or pa.types.is_boolean(plain)
    ):
        raise BulkError(f"column value must be double, integer, boolean or string, not {value}")
    quality = types.get("quality")
    if quality is not None and not pa.types.is_integer(quality):
        raise BulkError("column quality must be unsigned integers (OPC UA StatusCodes), no nulls")


def _check_names(names: list[str]) -> None:
    present = set(names)
    missing = [c for c in ("path", "ts", "value") if c not in present]
    if missing:
        raise BulkError(
            f"column(s) {', '.join(missing)} missing: a bulk table has path, ts, value and "
            f"optionally quality (it has {', '.join(names) or 'none'})"
        )
    extra = present - set(COLUMNS)
    if extra:
        raise BulkError(
            f"unknown column(s) {', '.join(sorted(extra))}: use path, ts, value, quality"
        )


def columns(table: pa.Table, window: TimeWindow) -> BulkColumns:
    """The points of `table` as NumPy columns (BulkError for a table of the wrong shape), with
    the paths that have a row outside the rules in `refused`."""
    _check_schema(table.schema)
    for name in ("path", "ts", "value"):
        if table.column(name).null_count:
            raise BulkError(f"column {name} has {table.column(name).null_count} nulls")
    names, index, first, counts = _path_index(table.column("path"))
    values = _values(table.column("value"))
    quality = _quality(table)
    source_us, late = _micros(table.column("ts"), window)
    bad = late.copy()
    if values.dtype == np.float64:
        # value_problem's rule, over the column: a non-finite number needs a Bad quality
        bad |= ~np.isfinite(values) & ((quality >> 30) < 2)
    long = _too_long(table.column("value"))
    if long is not None:
        bad |= long
    return BulkColumns(
        names=names,
        index=index,
        paths=_take(np.asarray(names, dtype=object), index),
        values=values,
        source_us=source_us,
        quality=quality,
        first=first,
        counts=counts,
        refused=_refused(names, index, counts, bad, late, table, values, quality, window),
    )


def _refused(
    names: list[str],
    index: NDArray[np.int32],
    counts: NDArray[np.intp],
    bad: NDArray[np.bool_],
    late: NDArray[np.bool_],
    table: pa.Table,
    values: NDArray[Any],
    quality: NDArray[np.uint32],
    window: TimeWindow,
) -> dict[str, str]:
    rows = np.flatnonzero(bad)
    if not rows.size:
        return {}
    paths, at, how_many = np.unique(index[rows], return_index=True, return_counts=True)
    refused: dict[str, str] = {}
    for p, row, n in zip(paths.tolist(), rows[at].tolist(), how_many.tolist(), strict=True):
        if late[row]:
            problem = window.problem(_exact_us(table.column("ts"), row))
        elif isinstance(values[row], str):
            problem = f"a text of {len(values[row])} characters: {TEXT_LIMIT}"
        else:
            problem = value_problem(float(values[row]), int(quality[row]))
        total = int(counts[p])
        refused[names[p]] = (
            f"row {row}: {problem} ({n} of its {total} rows {'is' if n == 1 else 'are'} "
            "refused, so none of this path is stored: fix them and send the path again)"
        )
    return refused


# Object arrays are built in slices: NumPy holds the GIL through one call over Python objects,
# and a slice this size keeps each hold to a few milliseconds, so the event loop keeps its turn.
_SLICE = 1 << 16


def _take(objects: NDArray[Any], rows: NDArray[Any]) -> NDArray[Any]:
    """`objects[rows]` for an object array, without holding the GIL for long."""
    out = np.empty(len(rows), dtype=object)
    for start in range(0, len(rows), _SLICE):
        out[start : start + _SLICE] = objects[rows[start : start + _SLICE]]
    return out


def _python_strings(col: pa.ChunkedArray | pa.Array) -> NDArray[Any]:
    """A string column as an object array of Python strings, a slice at a time."""
    out = np.empty(len(col), dtype=object)
    for start in range(0, len(col), _SLICE):
        part = col.slice(start, _SLICE)
        out[start : start + len(part)] = part.to_numpy(zero_copy_only=False)
    return out


def _path_index(
    col: pa.ChunkedArray,
) -> tuple[list[str], NDArray[np.int32], NDArray[np.intp], NDArray[np.intp]]:
    """The distinct paths in order of first appearance, each row's index into them, and each
    path's first row and number of rows.

    Found by Arrow's hashing, in linear time without the GIL (a backfill has millions of rows
    but few paths): sorting them would hold the event loop's GIL for tens of milliseconds. A
    dictionary-encoded column is never decoded row by row.
    """
    if pa.types.is_dictionary(col.type):
        coded = col.unify_dictionaries().combine_chunks()
        dictionary = coded.dictionary
        if pa.types.is_string_view(dictionary.type):
            dictionary = dictionary.cast(pa.large_string())
        # A dictionary may repeat an entry or hold unused ones: rows are coded afresh, over
        # each entry's distinct string.
        distinct = pc.dictionary_encode(dictionary)
        strings = distinct.dictionary
        rows = pc.take(distinct.indices, coded.indices)
    else:
        if pa.types.is_string_view(col.type):
            col = col.cast(pa.large_string())
        encoded = pc.dictionary_encode(col).combine_chunks()
        strings, rows = encoded.dictionary, encoded.indices
    ordered = pc.dictionary_encode(rows)  # codes in order of first appearance, only used ones
    codes = np.asarray(ordered.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    used = ordered.dictionary.to_numpy(zero_copy_only=False)
    names = [str(n) for n in pc.take(strings, pa.array(used)).to_pylist()]
    if not len(codes):
        return names, codes, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    # Codes first appear in increasing order: a path's first row is where the running maximum
    # of the codes steps up.
    peak = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], peak[1:] > peak[:-1])))
    counts = np.bincount(codes, minlength=len(names))
    return names, codes, first, counts


TEXT_LIMIT = f"string values are limited to {MAX_TEXT} characters"


def _too_long(col: pa.ChunkedArray) -> NDArray[np.bool_] | None:
    """Which rows hold a text over MAX_TEXT characters (None for a column of no texts)."""
    if pa.types.is_dictionary(col.type) and _is_text(col.type.value_type):
        coded = col.unify_dictionaries().combine_chunks()
        entries = coded.dictionary
        if pa.types.is_string_view(entries.type):
            entries = entries.cast(pa.large_string())
        over = pc.greater(pc.utf8_length(entries), MAX_TEXT).to_numpy(zero_copy_only=False)
        rows = np.asarray(coded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
        return np.asarray(over, dtype=bool)[rows]
    if not _is_text(col.type):
        return None
    if pa.types.is_string_view(col.type):
        col = col.cast(pa.large_string())
    lengths = pc.utf8_length(col)
    return np.asarray(pc.greater(lengths, MAX_TEXT).to_numpy(), dtype=bool)  # chunked: copies


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """`col` without dictionary encoding (for numbers: their dictionary is no larger)."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col


def _values(col: pa.ChunkedArray) -> NDArray[Any]:
    if pa.types.is_dictionary(col.type) and _is_text(col.type.value_type):
        # Each row refers to its dictionary entry's one Python string; never decoded in Arrow.
        coded = col.unify_dictionaries().combine_chunks()
        entries = coded.dictionary
        if pa.types.is_string_view(entries.type):
            entries = entries.cast(pa.large_string())
        strings = _python_strings(entries)
        return _take(strings, np.asarray(coded.indices.to_numpy(zero_copy_only=False)))
    col = _plain(col)
    if pa.types.is_string_view(col.type):
        col = col.cast(pa.large_string())
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
        return _python_strings(col)
    raise BulkError(f"column value must be double, integer, boolean or string, not {t}")


# A raw ts of unit u is floor(raw * mul / div) microseconds.
_SCALE = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}


def _raw(col: pa.ChunkedArray) -> tuple[NDArray[Any], int, int]:
    t = col.type
    if pa.types.is_timestamp(t):
        mul, div = _SCALE[t.unit]
        return np.asarray(col.cast(pa.int64()).to_numpy(), dtype=np.int64), mul, div
    if pa.types.is_integer(t):
        unsigned = pa.types.is_unsigned_integer(t)
        wide, dtype = (pa.uint64(), np.uint64) if unsigned else (pa.int64(), np.int64)
        return np.asarray(col.cast(wide).to_numpy(), dtype=dtype), 1, 1
    raise BulkError(f"column ts must be a timestamp or integer microseconds, not {t}")


def _micros(
    col: pa.ChunkedArray, window: TimeWindow
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Microseconds of each row (floored), and which rows lie outside `window`.

    The window is compared in the column's own unit, so a timestamp too large to be counted
    in microseconds (seconds near 2^63) is refused rather than overflowed.
    """
    raw, mul, div = _raw(col)
    lo = -(-window.oldest_us * div // mul)  # ceil
    hi = -(-(window.newest_us + 1) * div // mul) - 1
    limits = np.iinfo(raw.dtype)
    if lo > limits.max or hi < limits.min:
        return np.zeros(len(raw), dtype=np.int64), np.ones(len(raw), dtype=bool)
    late = (raw < max(lo, limits.min)) | (raw > min(hi, limits.max))
    inside = np.where(late, 0, raw).astype(np.int64)
    micros = inside * mul if div == 1 else inside // div
    return np.asarray(micros, dtype=np.int64), late


def _exact_us(col: pa.ChunkedArray, row: int) -> int:
    raw, mul, div = _raw(col.slice(row, 1))
    return int(raw[0]) * mul // div


def _quality(table: pa.Table) -> NDArray[np.uint32]:
    if "quality" not in table.column_names:
        return np.full(table.num_rows, int(Quality.GOOD), dtype=np.uint32)
    col = _plain(table.column("quality"))
    if not pa.types.is_integer(col.type) or col.null_count:
        raise BulkError("column quality must be unsigned integers (OPC UA StatusCodes), no nulls")
    try:
        return np.asarray(col.cast(pa.uint32()).to_numpy(), dtype=np.uint32)
    except pa.ArrowInvalid:
        raise BulkError("column quality has values outside 0..4294967295") from None
