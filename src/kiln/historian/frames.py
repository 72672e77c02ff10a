"""History query results as Arrow tables, and from there CSV, Parquet, Polars and pandas.

Tables are long: one row per tag and bucket (summaries), per tag and time (interpolated values)
or per stored point (raw values), with UTC timestamps. `durations` (seconds per state) is a
JSON text column, since its keys differ from tag to tag. Polars and pandas are optional: install
them for notebooks (`pip install 'kiln[analysis]'`, which `kiln.historian.notebook` uses to read
a running Kiln); Kiln itself needs neither.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from kiln.core.quality import quality_name
from kiln.historian.maths.analysis import TagSamples, TagSummary
from kiln.historian.query import RawResult

Format = Literal["csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
_TS = pa.timestamp("us", tz="UTC")


def _column(values: list[Any]) -> pa.Array:
    """One aggregate's values as an Arrow column: numbers as float64, dicts as JSON text."""
    if any(isinstance(v, dict) for v in values):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())
    if any(isinstance(v, str) for v in values):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if all(isinstance(v, bool) or v is None for v in values):
        return pa.array(values, pa.bool_())
    return pa.array([None if v is None else float(v) for v in values], pa.float64())


def summary_table(buckets_us: Sequence[int], summaries: Sequence[TagSummary]) -> pa.Table:
    """Columns tag, ts (bucket start) and one per aggregate, tag by tag."""
    n = len(buckets_us)
    names = list(summaries[0].values) if summaries else []
    columns: dict[str, pa.Array] = {
        "tag": pa.array([s.path for s in summaries for _ in range(n)], pa.string()),
        "ts": pa.array([t for _ in summaries for t in buckets_us], _TS),
    }
    for name in names:
        columns[name] = _column([v for s in summaries for v in s.values[name]])
    return pa.table(columns)


def samples_table(times_us: Sequence[int], samples: Sequence[TagSamples]) -> pa.Table:
    """Columns tag, ts and value (text for string tags, else float64)."""
    return pa.table(
        {
            "tag": pa.array([s.path for s in samples for _ in times_us], pa.string()),
            "ts": pa.array([t for _ in samples for t in times_us], _TS),
            "value": _column([v for s in samples for v in s.values]),
        }
    )


def raw_table(result: RawResult) -> pa.Table:
    """Columns ts, value, quality (its name), quality_code and received."""
    points = result.points
    return pa.table(
        {
            "ts": pa.array([p.source_us for p in points], _TS),
            "value": _column([p.value for p in points]),
            "quality": pa.array([quality_name(p.quality) for p in points], pa.string()),
            "quality_code": pa.array([p.quality for p in points], pa.uint32()),
            "received": pa.array([p.receive_us for p in points], _TS),
        }
    )


def encode(table: pa.Table, fmt: Format) -> bytes:
    """The table as CSV (a header row, ISO 8601 timestamps) or Parquet (zstd) bytes."""
    sink = io.BytesIO()
    if fmt == "csv":
        pa_csv.write_csv(table, sink)
    else:
        pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def to_polars(table: pa.Table) -> Any:
    """A Polars DataFrame (needs `pip install polars`)."""
    try:
        import polars as pl
    except ImportError:
        raise ImportError("DataFrames need Polars: pip install polars") from None
    return pl.from_arrow(table)


def to_pandas(table: pa.Table) -> Any:
    """A pandas DataFrame (needs `pip install pandas`)."""
    try:
        import pandas  # noqa: F401 - only to say what is missing before pyarrow does
    except ImportError:
        raise ImportError("DataFrames need pandas: pip install pandas") from None
    return table.to_pandas()
