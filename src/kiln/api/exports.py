"""History results as file downloads: `?format=csv` or `?format=parquet` on a history query."""

from __future__ import annotations

from typing import Annotated, Literal

import pyarrow as pa
from fastapi import Query, Response

from kiln.historian.frames import MEDIA_TYPES, encode

FormatQ = Annotated[
    Literal["json", "csv", "parquet"],
    Query(description="json, or a file: csv or parquet (long format: tag, ts, ...)"),
]


def export(table: pa.Table, fmt: str, name: str) -> Response:
    """A query's result as a CSV or Parquet download named `name`."""
    return Response(
        encode(table, "csv" if fmt == "csv" else "parquet"),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
