"""The historian's DuckDB schema and its version.

`points` is append-only and has no key: a primary key on (series_id, ts) makes DuckDB check an
index on every insert, which cuts ingest by an order of magnitude. Idempotency on
(series, source timestamp) is kept by the writer instead (see `store.py`).
"""

from __future__ import annotations

import duckdb

from kiln.core.errors import KilnError

SCHEMA_VERSION = 1

# Timestamps are microseconds since the epoch, UTC, like everywhere else in Kiln.
_DDL_V1 = (
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        path VARCHAR NOT NULL UNIQUE,
        kind VARCHAR NOT NULL CHECK (kind IN ('float', 'int', 'bool', 'string')),
        created_ts TIMESTAMPTZ NOT NULL
    )
    """,
    # value is NULL and text set for string values; quality is the 32-bit OPC UA StatusCode.
    """
    CREATE TABLE points (
        series_id INTEGER NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        value DOUBLE,
        text VARCHAR,
        quality UINTEGER NOT NULL,
        recv_ts TIMESTAMPTZ
    )
    """,
)


class SchemaVersionError(KilnError):
    """The database was written by a newer Kiln than this one."""


def ensure_schema(conn: duckdb.DuckDBPyConnection, now_us: int) -> int:
    """Create the schema in an empty database, or check the version of an existing one.

    Returns the schema version. Raises SchemaVersionError for a database from a newer Kiln.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_ts TIMESTAMPTZ NOT NULL)"
    )
    rows = conn.execute("SELECT max(version) FROM schema_version").fetchall()
    current = rows[0][0]
    if current is None:
        conn.begin()
        try:
            for ddl in _DDL_V1:
                conn.execute(ddl)
            conn.execute(
                "INSERT INTO schema_version VALUES ($v, make_timestamptz($now))",
                {"v": SCHEMA_VERSION, "now": now_us},
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return SCHEMA_VERSION
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the historian database has schema version {current}, but this Kiln knows only "
            f"up to version {SCHEMA_VERSION}: upgrade Kiln, or open a copy of an older database"
        )
    return int(current)
