"""Value batches as NumPy columns: encoding, concatenation, ordering and de-duplication.

Pure functions (no database) so that the writer's hot path is vectorized and testable alone.
A value is stored as a DOUBLE (float, int and bool tags) or as text (string tags); the series'
kind, recorded when the series is created from its first value, turns it back into the right
Python type on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kiln.core.values import ValueBatch

FLOAT = "float"
INT = "int"
BOOL = "bool"
STRING = "string"
KINDS = (FLOAT, INT, BOOL, STRING)
MAX_ABS_TS = 2**62  # microseconds; well inside DuckDB's TIMESTAMP range

Int32Array = NDArray[np.int32]
Int64Array = NDArray[np.int64]
Float64Array = NDArray[np.float64]
UInt32Array = NDArray[np.uint32]
BoolArray = NDArray[np.bool_]
ObjectArray = NDArray[np.object_]

_KIND_OF_DTYPE = {"b": BOOL, "i": INT, "u": INT, "f": FLOAT}


def kind_of(value: object) -> str:
    """The kind a series gets when `value` is its first value."""
    if isinstance(value, bool | np.bool_):
        return BOOL
    if isinstance(value, int | np.integer):
        return INT
    if isinstance(value, float | np.floating):
        return FLOAT
    return STRING


def decode(kind: str, value: float | None, text: str | None) -> Any:
    """A stored (value, text) pair as the Python type of its series' kind.

    A value whose type did not match its series (a string sent to a float tag) comes back as
    it was sent rather than being lost.
    """
    if text is not None:
        return text
    if value is None:
        return None
    if kind == FLOAT:
        return value
    if kind == INT:
        return int(value) if value.is_integer() else value
    if kind == BOOL:
        return bool(value)
    return _format_number(value)


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


@dataclass(slots=True)
class EncodedValues:
    """Values split into the DOUBLE column and the text column (None when no value is text)."""

    numbers: Float64Array
    text: ObjectArray | None
    dtype_kind: str | None  # the kind of every value when they came as one numeric array


def encode_values(values: Sequence[Any] | NDArray[Any]) -> EncodedValues:
    """Split values into numbers and text. Raises ValueError for a value that is neither."""
    if isinstance(values, np.ndarray) and values.dtype.kind in _KIND_OF_DTYPE:
        return EncodedValues(
            values.astype(np.float64, copy=False), None, _KIND_OF_DTYPE[values.dtype.kind]
        )
    if not isinstance(values, np.ndarray):
        # NumPy converts a list of plain numbers in one C loop; anything else (text, None,
        # huge ints) comes back as a non-numeric array and takes the per-value loop below.
        try:
            arr = np.asarray(values)
        except (ValueError, OverflowError):
            arr = None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in _KIND_OF_DTYPE:
            return EncodedValues(arr.astype(np.float64, copy=False), None, None)
    return _encode_each(values)


def _encode_each(values: Sequence[Any] | NDArray[Any]) -> EncodedValues:
    n = len(values)
    numbers = np.zeros(n, np.float64)
    text: ObjectArray | None = None
    for i, value in enumerate(values):
        if isinstance(value, str):
            if text is None:
                text = np.full(n, None, dtype=object)
            text[i] = str(value)
        elif value is None:
            raise ValueError(f"value {i} is None: send a value, or a Bad quality with a value")
        else:
            try:
                numbers[i] = float(value)
            except (TypeError, ValueError, OverflowError) as err:
                raise ValueError(
                    f"value {i} ({value!r}) is neither a number, a bool nor a string"
                ) from err
    return EncodedValues(numbers, text, None)


@dataclass(slots=True)
class Columns:
    """Points as parallel columns, ready for the store."""

    series: Int32Array
    ts: Int64Array
    value: Float64Array
    text: ObjectArray | None  # None when no point is text
    quality: UInt32Array
    recv: Int64Array
    historical: BoolArray

    def __len__(self) -> int:
        return len(self.series)

    def take(self, index: NDArray[np.intp] | BoolArray) -> Columns:
        return Columns(
            series=self.series[index],
            ts=self.ts[index],
            value=self.value[index],
            text=None if self.text is None else self.text[index],
            quality=self.quality[index],
            recv=self.recv[index],
            historical=self.historical[index],
        )

    def text_mask(self) -> BoolArray | None:
        """True where the point is text (and its DOUBLE is therefore NULL)."""
        if self.text is None:
            return None
        return np.fromiter((t is not None for t in self.text), dtype=np.bool_, count=len(self))


def batch_columns(batch: ValueBatch, series: Int32Array, values: EncodedValues) -> Columns:
    """The columns of one batch whose paths were already resolved to series ids.

    Raises ValueError (or OverflowError) for timestamps or qualities out of range.
    """
    n = len(batch)
    ts = np.asarray(batch.source_us, dtype=np.int64)
    quality = np.asarray(batch.qualities, dtype=np.int64)
    if n and (quality.min() < 0 or quality.max() > 0xFFFFFFFF):
        raise ValueError("a quality is outside the 32-bit StatusCode range 0..0xFFFFFFFF")
    if n and (ts.min() < -MAX_ABS_TS or ts.max() > MAX_ABS_TS):
        # Caught here, a nonsense timestamp fails its own batch rather than the whole commit.
        raise ValueError(
            "a source timestamp is more than 146,000 years from 1970: timestamps are "
            "microseconds since the Unix epoch"
        )
    return Columns(
        series=series,
        ts=ts,
        value=values.numbers,
        text=values.text,
        quality=quality.astype(np.uint32),
        recv=np.full(n, batch.receive_us, dtype=np.int64),
        historical=np.full(n, batch.historical, dtype=np.bool_),
    )


def concat(parts: Sequence[Columns]) -> Columns:
    """One Columns from several (the batches of one group commit)."""
    if len(parts) == 1:
        return parts[0]
    text: ObjectArray | None = None
    if any(p.text is not None for p in parts):
        text = np.concatenate(
            [p.text if p.text is not None else np.full(len(p), None, dtype=object) for p in parts]
        )
    return Columns(
        series=np.concatenate([p.series for p in parts]),
        ts=np.concatenate([p.ts for p in parts]),
        value=np.concatenate([p.value for p in parts]),
        text=text,
        quality=np.concatenate([p.quality for p in parts]),
        recv=np.concatenate([p.recv for p in parts]),
        historical=np.concatenate([p.historical for p in parts]),
    )


def order_and_dedupe(cols: Columns) -> tuple[Columns, int]:
    """Sort by (series, ts) and keep the last occurrence of each (series, ts).

    Returns the result and the number of points dropped as duplicates. The sort is stable, so
    among equal keys "last" is the latest in arrival order: a re-sent value replaces the
    earlier one. Sorting also clusters each series' points, which lets DuckDB's zone maps
    skip most row groups when one tag is queried.
    """
    n = len(cols)
    if n < 2:
        return cols, 0
    series, ts = cols.series, cols.ts
    t_min, t_max = int(ts.min()), int(ts.max())
    id_bits = int(series.max()).bit_length()
    span_bits = (t_max - t_min).bit_length()
    if id_bits + span_bits <= 63:
        # One int64 key sorts several times faster than a two-key lexsort.
        key = (series.astype(np.int64) << span_bits) | (ts - t_min)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        same_as_next = sorted_key[1:] == sorted_key[:-1]
    else:
        order = np.lexsort((ts, series))
        s, t = series[order], ts[order]
        same_as_next = (s[1:] == s[:-1]) & (t[1:] == t[:-1])
    duplicates = int(np.count_nonzero(same_as_next))
    if duplicates:
        keep = np.ones(n, dtype=np.bool_)
        keep[:-1] = ~same_as_next
        order = order[keep]
    return cols.take(order), duplicates


def last_of_each_series(series: Int32Array) -> BoolArray:
    """For ids sorted ascending: True at the last position of each run of equal ids."""
    last = np.ones(len(series), dtype=np.bool_)
    if len(series) > 1:
        last[:-1] = series[1:] != series[:-1]
    return last
