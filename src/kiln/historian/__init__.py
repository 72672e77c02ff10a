"""The historian: every value on the bus, stored in DuckDB, and queried back.

`Historian` is the platform service (one batched writer, queries off the event loop);
`DuckDBStore` is its synchronous storage, usable alone (benchmarks, tools).
"""

from kiln.historian.query import AGGREGATES, Bucket, RawResult
from kiln.historian.schema import SchemaVersionError
from kiln.historian.service import Historian, HistorianStoppedError, WriterStats
from kiln.historian.store import DuckDBStore, StoreClosedError, WriteStats

__all__ = [
    "AGGREGATES",
    "Bucket",
    "DuckDBStore",
    "Historian",
    "HistorianStoppedError",
    "RawResult",
    "SchemaVersionError",
    "StoreClosedError",
    "WriteStats",
    "WriterStats",
]
