"""Values as they travel: one `TagValue`, and the columnar `ValueBatch` the bus carries.

Batches are columnar because every hot path (the historian writer, the live stream, the
ingest API) works on many points at once; a `TagValue` is the row view for code that wants one.
Timestamps inside batches are integers (microseconds since the Unix epoch, UTC): they are
what DuckDB, Arrow and PostgreSQL store, and they cost nothing to compare.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiln.core.clock import us_to_datetime
from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality

Scalar = float | int | bool | str

# One segment of an ISA-95 namespace path. Segments map one to one onto MQTT topic levels and
# URL path segments, so the wildcards + and #, the separator, and a leading $ are excluded.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
MAX_PATH_LENGTH = 512


# Ingest validates the same few thousand paths over and over; remembering the valid ones takes
# the regex work off the hot path. Invalid paths raise, and lru_cache never caches a raise.
@functools.lru_cache(maxsize=65_536)
def validate_path(path: str) -> str:
    """Return `path` if it is a valid namespace path, else raise InvalidPathError saying why."""
    if not isinstance(path, str) or not path:
        raise InvalidPathError(
            "path is empty: give segments separated by '/', e.g. acme/plant1/line1/temp"
        )
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPathError(
            f"path is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}"
        )
    segments = path.split("/")
    if len(segments) < 2:
        raise InvalidPathError(
            f"path {path!r} has one segment; a tag path needs at least an asset and a tag name, "
            "e.g. acme/plant1/line1/filler/weight"
        )
    for seg in segments:
        if not _SEGMENT.fullmatch(seg):
            raise InvalidPathError(
                f"path {path!r} has an invalid segment {seg!r}: segments are 1-64 characters of "
                "letters, digits, '_', '-' and '.', not starting with '-' or '.'"
            )
    return path


def path_has_prefix(path: str, prefix: str) -> bool:
    """True if `path` is `prefix` or lies below it (segment-wise: `a/b` is not below `a/bc`)."""
    if not prefix:
        return True
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class TagValue:
    """One value of one tag, with both timestamps and an OPC UA style quality."""

    path: str
    value: Scalar
    source_us: int
    quality: int = Quality.GOOD
    receive_us: int | None = None

    @property
    def source_ts(self) -> datetime:
        return us_to_datetime(self.source_us)

    @property
    def receive_ts(self) -> datetime | None:
        return None if self.receive_us is None else us_to_datetime(self.receive_us)


@dataclass(slots=True, eq=False)
class ValueBatch:
    """A columnar batch of values that arrived together.

    Columns are any sequences of equal length (lists, or NumPy arrays from fast producers).
    `receive_us` is one instant for the whole batch: a batch is received at once.

    A batch that asks for a durability acknowledgement carries `batch_id` (unique) and
    `origin` (the bus node of its publisher, where the acknowledgement goes back to); the bus's
    `publish_durable` sets both. They are plain strings, so the batch crosses a process
    boundary as it is; `select` leaves them out (only the whole batch can be acknowledged).
    """

    paths: Sequence[str]
    values: Sequence[Any]
    source_us: Sequence[int]
    qualities: Sequence[int]
    receive_us: int
    historical: bool = False
    batch_id: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        n = len(self.paths)
        if not (len(self.values) == len(self.source_us) == len(self.qualities) == n):
            raise ValueError(
                "ValueBatch columns differ in length: "
                f"paths={n} values={len(self.values)} source_us={len(self.source_us)} "
                f"qualities={len(self.qualities)}"
            )

    @classmethod
    def of(
        cls, values: Sequence[TagValue], receive_us: int, *, historical: bool = False
    ) -> ValueBatch:
        return cls(
            paths=[v.path for v in values],
            values=[v.value for v in values],
            source_us=[v.source_us for v in values],
            qualities=[int(v.quality) for v in values],
            receive_us=receive_us,
            historical=historical,
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[TagValue]:
        for path, value, ts, q in zip(
            self.paths, self.values, self.source_us, self.qualities, strict=True
        ):
            yield TagValue(path, _plain(value), int(ts), int(q), self.receive_us)

    def select(self, keep: Callable[[str], bool]) -> ValueBatch:
        """A new batch with only the points whose path satisfies `keep` (no batch id: a part of a
        batch cannot be acknowledged for the whole)."""
        idx = [i for i, p in enumerate(self.paths) if keep(p)]
        if len(idx) == len(self.paths):
            return self
        return ValueBatch(
            paths=[self.paths[i] for i in idx],
            values=[self.values[i] for i in idx],
            source_us=[self.source_us[i] for i in idx],
            qualities=[self.qualities[i] for i in idx],
            receive_us=self.receive_us,
            historical=self.historical,
        )

    @property
    def wants_ack(self) -> bool:
        """Does the publisher wait for this batch's `DurabilityAck`?"""
        return bool(self.batch_id)


def _plain(value: Any) -> Scalar:
    """NumPy scalars become Python scalars so that row views serialize cleanly."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value  # type: ignore[no-any-return]
