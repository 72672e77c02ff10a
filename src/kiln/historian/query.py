"""Read queries over the points table, and their results.

Every query names one series by id and a source-time range, so DuckDB's zone maps on `ts`
(and on `series_id`, which the writer clusters per commit) skip the row groups outside it.
Timestamps cross the boundary as integer microseconds (`epoch_us`, `make_timestamptz`) to avoid
building Python datetimes for every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from kiln.core.errors import QueryTooLargeError
from kiln.core.values import TagValue
from kiln.historian.columns import STRING, decode

AGGREGATES = ("avg", "min", "max", "count", "first", "last")
MAX_BUCKETS = 100_000

# OPC UA Part 4, 7.39.2: severity Good is the top two bits 00, i.e. a code below 0x40000000
# (the same test as kiln.core.quality.is_good, written so DuckDB can evaluate it per row).
_GOOD = "quality < 1073741824"

AggValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class RawResult:
    """Stored points of one tag, in source-time order; `truncated` if the limit cut it short."""

    path: str
    points: list[TagValue]
    truncated: bool


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates of one interval starting at `start_us` (a multiple of the interval)."""

    start_us: int
    values: dict[str, AggValue] = field(default_factory=dict)


def check_aggregates(aggs: Sequence[str]) -> list[str]:
    """The requested aggregates, de-duplicated; ValueError naming the allowed ones."""
    if isinstance(aggs, str):
        aggs = [aggs]
    unknown = [a for a in aggs if a not in AGGREGATES]
    if unknown or not aggs:
        raise ValueError(
            f"unknown aggregate(s) {', '.join(map(repr, unknown)) or '(none given)'}: "
            f"choose from {', '.join(AGGREGATES)}"
        )
    return list(dict.fromkeys(aggs))


def check_range(start_us: int, end_us: int) -> None:
    if end_us < start_us:
        raise ValueError(f"the range ends ({end_us}) before it starts ({start_us})")


_RAW_SQL = """
SELECT epoch_us(ts), value, text, quality, epoch_us(recv_ts)
FROM points
WHERE series_id = $sid AND ts >= make_timestamptz($start) AND ts < make_timestamptz($end)
ORDER BY ts
LIMIT $limit
"""


def raw(
    cur: duckdb.DuckDBPyConnection,
    sid: int,
    path: str,
    kind: str,
    start_us: int,
    end_us: int,
    limit: int,
) -> RawResult:
    """Points of series `sid` with start <= ts < end, at most `limit` of them."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    check_range(start_us, end_us)
    rows = cur.execute(
        _RAW_SQL, {"sid": sid, "start": start_us, "end": end_us, "limit": limit + 1}
    ).fetchall()
    truncated = len(rows) > limit
    points = [
        TagValue(path, decode(kind, value, text), ts, quality, recv)
        for ts, value, text, quality, recv in rows[:limit]
    ]
    return RawResult(path, points, truncated)


def aggregate_sql(kind: str, aggs: Sequence[str]) -> str:
    """SQL for the bucketed aggregates `aggs` of one series (parameters sid, start, end, iv)."""
    # Floor division (DuckDB's // truncates towards zero) so buckets stay aligned before 1970.
    bucket = "(epoch_us(ts) - ((epoch_us(ts) % $iv) + $iv) % $iv)"
    numeric = kind != STRING
    exprs = {
        "avg": "avg(value)" if numeric else "NULL",
        "min": "min(value)" if numeric else "NULL",
        "max": "max(value)" if numeric else "NULL",
        "count": "count(*)",
        "first": "arg_min(value, ts)" if numeric else "arg_min(text, ts)",
        "last": "arg_max(value, ts)" if numeric else "arg_max(text, ts)",
    }
    selected = ", ".join(exprs[a] for a in aggs)
    return (
        f"SELECT {bucket} AS bucket, {selected} FROM points "
        "WHERE series_id = $sid AND ts >= make_timestamptz($start) "
        f"AND ts < make_timestamptz($end) AND {_GOOD} "
        "GROUP BY bucket ORDER BY bucket"
    )


def aggregate(
    cur: duckdb.DuckDBPyConnection,
    sid: int,
    kind: str,
    start_us: int,
    end_us: int,
    interval_us: int,
    aggs: Sequence[str],
) -> list[Bucket]:
    """Good-quality aggregates per interval-aligned bucket; empty buckets are left out."""
    names = check_aggregates(aggs)
    check_range(start_us, end_us)
    if interval_us < 1:
        raise ValueError(f"interval must be at least 1 microsecond, got {interval_us}")
    buckets = (end_us - start_us) // interval_us + 1
    if buckets > MAX_BUCKETS:
        raise QueryTooLargeError(
            f"{buckets} buckets of {interval_us} us requested; the limit is {MAX_BUCKETS}: "
            "use a longer interval or a shorter range"
        )
    rows = cur.execute(
        aggregate_sql(kind, names),
        {"sid": sid, "start": start_us, "end": end_us, "iv": interval_us},
    ).fetchall()
    return [
        Bucket(
            row[0],
            {name: _agg_value(kind, name, v) for name, v in zip(names, row[1:], strict=True)},
        )
        for row in rows
    ]


def _agg_value(kind: str, name: str, value: AggValue) -> AggValue:
    if value is None or name in ("avg", "count"):
        return value
    if isinstance(value, float):
        return decode(kind, value, None)  # type: ignore[no-any-return]
    return value
