"""Parsing of `POST /api/v1/ingest` items into TagValues, one precise error per bad item.

Pure: no I/O, no platform. An item is
``{"path": "acme/plant1/line1/filler1/weight", "value": 21.5, "ts": ..., "quality": "good"}``
where `ts` is ISO 8601 with a zone or epoch milliseconds (absent: the receive time) and
`quality` a name or an OPC UA StatusCode (absent: good).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kiln.core.clock import datetime_to_us
from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality, parse_quality
from kiln.core.values import Scalar, TagValue, validate_path

_KEYS = frozenset({"path", "value", "ts", "quality"})
# Epoch milliseconds outside 1973..2200 are almost certainly seconds or microseconds by mistake
# (seconds since the epoch stay below 1e11 until the year 5138).
_MS_MIN, _MS_MAX = 100_000_000_000, 7_258_118_400_000


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    path: str | None
    error: str


def parse_items(
    items: Sequence[Any], receive_us: int
) -> tuple[list[tuple[int, TagValue]], list[ItemError]]:
    """Split raw items into (index, TagValue) pairs and errors; never raises for bad input."""
    good: list[tuple[int, TagValue]] = []
    bad: list[ItemError] = []
    for i, item in enumerate(items):
        try:
            good.append((i, parse_item(item, receive_us)))
        except ValueError as err:
            path = item.get("path") if isinstance(item, dict) else None
            bad.append(ItemError(i, path if isinstance(path, str) else None, str(err)))
    return good, bad


def parse_item(item: Any, receive_us: int) -> TagValue:
    if not isinstance(item, dict):
        raise ValueError('an item must be an object like {"path": ..., "value": ...}')
    unknown = set(item) - _KEYS
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(sorted(unknown))}; allowed: path, value, ts, quality"
        )
    if "path" not in item:
        raise ValueError("'path' is missing")
    path = item["path"]
    if not isinstance(path, str):
        raise ValueError("'path' must be a string")
    try:
        validate_path(path)
    except InvalidPathError as err:
        raise ValueError(str(err)) from None
    if "value" not in item:
        raise ValueError("'value' is missing")
    value = _value(item["value"])
    ts = _timestamp(item["ts"]) if item.get("ts") is not None else receive_us
    quality = parse_quality(item["quality"]) if item.get("quality") is not None else Quality.GOOD
    return TagValue(path, value, ts, int(quality), receive_us)


def _value(value: Any) -> Scalar:
    if isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > 4096:
            raise ValueError("string values are limited to 4096 characters")
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer value does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value
    raise ValueError("'value' must be a number, a boolean or a string")


def _timestamp(ts: Any) -> int:
    if isinstance(ts, bool):
        raise ValueError("'ts' must be ISO 8601 text or epoch milliseconds")
    if isinstance(ts, int | float):
        if not _MS_MIN <= ts <= _MS_MAX:
            raise ValueError(
                f"'ts' {ts} is not epoch milliseconds between 1973 and 2200 "
                "(seconds or microseconds by mistake?)"
            )
        return round(ts * 1000)
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'ts' {ts!r} is not ISO 8601 (e.g. 2026-01-01T00:00:00Z) or epoch milliseconds"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(
                f"'ts' {ts!r} has no time zone: add Z for UTC or an offset like +01:00"
            )
        return datetime_to_us(dt)
    raise ValueError("'ts' must be ISO 8601 text or epoch milliseconds")
