"""Two DuckDB habits of the historian's writer, as context managers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import duckdb
import pyarrow as pa


@contextlib.contextmanager
def registered(conn: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    """Arrow tables visible to SQL by name for the block. Register them outside a transaction:
    unregistering inside an aborted one would raise and hide the error that aborted it."""
    for name, table in tables.items():
        conn.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            with contextlib.suppress(duckdb.Error):
                conn.unregister(name)


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT if the block succeeds, else ROLLBACK and re-raise."""
    conn.begin()
    try:
        yield
        conn.commit()
    except BaseException:
        # After a failed COMMIT there is no transaction left to roll back.
        with contextlib.suppress(duckdb.Error):
            conn.rollback()
        raise
