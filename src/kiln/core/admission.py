"""The rules every ingest path applies to a point before it is accepted, in one place.

JSON items, line protocol and bulk tables (and any path added later) call these, so a point
refused by one path is refused by every other with the same words:

- **time**: a source timestamp must lie in the acceptance window, from the Unix epoch to now
  plus `max_future_s` (default 10 minutes; `ingest.max_future_s`). A clock that runs years
  ahead would otherwise pin a tag's latest value; a year-0001 timestamp is a sender's bug.
- **value**: numbers must be finite. NaN and infinities are accepted only with an explicit Bad
  quality (a device saying "no reading"), never stored as Good. Integers fit 64 bits, texts
  are at most 4,096 characters.
- **path**: a name that is not a valid namespace path is refused, never rewritten
  (`kiln.core.values.validate_path` says which segment is wrong).

Pure: no I/O. Timestamps are integer microseconds since the epoch, Kiln's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kiln.core.clock import us_to_datetime
from kiln.core.quality import Severity, severity

OLDEST_US = 0  # 1970-01-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The source timestamps accepted at `now_us`: [oldest_us, now_us + max_future_us]."""

    now_us: int
    max_future_us: int
    oldest_us: int = OLDEST_US

    @classmethod
    def at(cls, now_us: int, max_future_s: float) -> TimeWindow:
        return cls(now_us, round(max_future_s * 1_000_000))

    @property
    def newest_us(self) -> int:
        return self.now_us + self.max_future_us

    def problem(self, ts_us: int) -> str | None:
        """Why `ts_us` is refused, or None when it is inside the window."""
        if ts_us < self.oldest_us:
            return f"timestamp {_iso(ts_us)} is before 1970-01-01T00:00:00Z, the oldest accepted"
        if ts_us > self.newest_us:
            return (
                f"timestamp {_iso(ts_us)} is more than {self.max_future_us / 1e6:g} s ahead of "
                f"the server's clock ({_iso(self.now_us)}): check the sender's clock "
                "(the window is ingest.max_future_s)"
            )
        return None


MAX_TEXT = 4096  # characters of a text value
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what the historian stores integers in


def value_problem(value: object, quality: int) -> str | None:
    """Why a value is refused: text over MAX_TEXT characters, an integer beyond 64 bits, or a
    non-finite number unless its quality says Bad."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"text values are limited to {MAX_TEXT} characters (this one has {len(value)})"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not (INT64_MIN <= value <= INT64_MAX)
    ):
        return "integer value does not fit in 64 bits (-2**63 .. 2**63-1)"
    if (
        isinstance(value, float)
        and not math.isfinite(value)
        and severity(quality) is not Severity.BAD
    ):
        return (
            f"value {value} is not a finite number; send it with a Bad quality "
            "if the device reports no reading"
        )
    return None


def _iso(ts_us: int) -> str:
    try:
        return us_to_datetime(ts_us).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{ts_us} µs since the epoch"
