"""Times and intervals as people type them: ISO 8601, epoch milliseconds, `-1h`, `now`, `5m`."""

from __future__ import annotations

import re
from datetime import datetime

from kiln.core.clock import datetime_to_us

_UNITS_US = {
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")


def parse_duration_us(text: str) -> int:
    """`500ms`, `10s`, `1m`, `1.5h`, `7d`, `2w` -> microseconds (positive)."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(
            f"invalid interval {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 10s, 1m, 1h"
        )
    us = round(float(m.group(1)) * _UNITS_US[m.group(2)])
    if us <= 0:
        raise ValueError(f"interval {text!r} must be greater than zero")
    return us


def parse_time_us(text: str, now_us: int) -> int:
    """`now`, `-15m` (relative to now), ISO 8601 with a zone (`Z` or offset), or epoch milliseconds."""
    raw = text.strip()
    if raw == "now":
        return now_us
    if raw.startswith(("-", "+")) and _DURATION.match(raw[1:]):
        delta = parse_duration_us(raw[1:])
        return now_us - delta if raw[0] == "-" else now_us + delta
    if re.fullmatch(r"\d{10,16}", raw):
        return int(raw) * 1_000
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 with a zone (2026-01-01T08:00:00Z), "
            "epoch milliseconds, 'now' or a relative time such as -15m, -1h, -7d"
        ) from None
    if dt.tzinfo is None:
        raise ValueError(
            f"time {text!r} has no time zone: add 'Z' for UTC or an offset such as +01:00"
        )
    return datetime_to_us(dt)
