"""Time series kept as chunks: the row layouts of machine states and counter samples, and the
pure NumPy steps the production store builds on (split rows by chunk, merge late rows into a
chunk, pick a window with the row carried into it).

A chunk is the rows of one series (an asset's states, or one of its signals) over one UTC
period (a day for states, an hour for samples), as the bytes of a packed little-endian
structured array: sorted by `t`, one row per distinct `t`. Merging keeps that form whatever
order rows arrive in, so a late or replayed batch gives exactly the chunk an in-order one
would have.

Pure: no I/O, no clock; times are microseconds since the epoch (`kiln.core.clock`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

# A state change: from `t` on, the machine is in `category` (`taxonomy.CATEGORY_CODES`) for
# `reason` (an id of the store's reason dictionary, 0 for none), from the raw state value
# `raw` the machine published (its state tag's code, -1 when there is none).
STATE_DTYPE = np.dtype([("t", "<i8"), ("category", "<i2"), ("reason", "<i4"), ("raw", "<i4")])
# A sample of a signal: a counter's reading, an ideal cycle time, an SPC tag's value.
SAMPLE_DTYPE = np.dtype([("t", "<i8"), ("v", "<f8")])

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


def check_rows(rows: np.ndarray, dtype: np.dtype[np.void], what: str) -> np.ndarray:
    """`rows` as a 1-d array of `dtype`, or a TypeError naming `what` they were given for."""
    if rows.dtype != dtype or rows.ndim != 1:
        raise TypeError(
            f"{what}: expected a 1-d array of dtype {dtype}, got {rows.ndim}-d {rows.dtype}"
        )
    return rows


def encode(rows: np.ndarray) -> bytes:
    """The chunk's bytes (the dtypes are packed and little-endian: portable as they are)."""
    return np.ascontiguousarray(rows).tobytes()


def decode(data: bytes | memoryview, n: int, dtype: np.dtype[np.void]) -> np.ndarray:
    """The rows of a stored chunk; refuses bytes that do not hold `n` rows."""
    if len(data) != n * dtype.itemsize:
        raise ValueError(
            f"stored chunk holds {len(data)} bytes, not the {n} rows of {dtype.itemsize} "
            "bytes its row count says: the database was changed by something else"
        )
    return np.frombuffer(data, dtype=dtype)


def starts(t: np.ndarray, width_us: int) -> np.ndarray:
    """The start of the chunk period each time falls in (floor, also before 1970)."""
    return np.asarray(t - t % width_us)


def split(rows: np.ndarray, width_us: int) -> Iterator[tuple[int, np.ndarray]]:
    """`rows` sorted by time (stably), in pieces by chunk period: (period start, rows)."""
    ordered = rows[np.argsort(rows["t"], kind="stable")]
    periods = starts(ordered["t"], width_us)
    cuts = np.flatnonzero(periods[1:] != periods[:-1]) + 1
    for piece in np.split(ordered, cuts):
        if len(piece):
            yield int(piece["t"][0] - piece["t"][0] % width_us), piece


def merge(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """`old` with `new` added after it: sorted by time, and where rows share a time the one
    added last stays (the last of `new` over earlier ones of `new`, over `old`)."""
    rows = np.concatenate((old, new))
    ordered = rows[np.argsort(rows["t"], kind="stable")]
    t = ordered["t"]
    # A stable sort keeps rows of one time in the order they were added: keep each run's last.
    keep = np.ones(len(ordered), dtype=bool)
    keep[:-1] = t[1:] != t[:-1]
    return ordered[keep]


def window(
    chunks: Sequence[np.ndarray], start_us: int, end_us: int, dtype: np.dtype[np.void]
) -> np.ndarray:
    """The rows with `start_us <= t < end_us` of chunks given in time order, preceded by the
    last row before `start_us` (the value carried into the window) when there is one."""
    if not chunks:
        return np.empty(0, dtype=dtype)
    rows = np.concatenate(chunks)
    t = rows["t"]
    first = int(np.searchsorted(t, start_us, side="left"))
    last = int(np.searchsorted(t, end_us, side="left"))
    return rows[max(first - 1, 0) : last].copy()
