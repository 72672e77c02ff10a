"""The historian's DuckDB schema and its version.

`points` is append-only and has no key: a primary key on (series_id, ts) makes DuckDB check an
index on every insert, which cuts ingest by an order of magnitude. Idempotency on
(series, source timestamp) is kept by the writer instead (see `store.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kiln.core.errors import KilnError
from kiln.historian import duck

SCHEMA_VERSION = 2

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

# Version 2: rollup tiers (see `tiers.py`). Timestamps stay TIMESTAMPTZ, as in `points`, so
# that ad-hoc SQL reads them as times.
_DDL_V2 = (
    """
    CREATE TABLE rollups (
        width_us BIGINT NOT NULL,
        series_id INTEGER NOT NULL,
        bucket TIMESTAMPTZ NOT NULL,
        count BIGINT NOT NULL,
        sum DOUBLE NOT NULL,
        m2 DOUBLE NOT NULL,
        min DOUBLE,
        max DOUBLE,
        first DOUBLE,
        last DOUBLE,
        head_ts TIMESTAMPTZ NOT NULL,
        head_value DOUBLE,
        head_good BOOLEAN NOT NULL,
        tail_ts TIMESTAMPTZ NOT NULL,
        tail_value DOUBLE,
        tail_good BOOLEAN NOT NULL,
        area DOUBLE NOT NULL,
        good_us BIGINT NOT NULL
    )
    """,
    # Work the rollups still have to do: points committed in [t0, t1] of a series, all newer
    # than anything stored before (append) or not.
    """
    CREATE TABLE rollup_pending (
        series_id INTEGER NOT NULL,
        t0 TIMESTAMPTZ NOT NULL,
        t1 TIMESTAMPTZ NOT NULL,
        append BOOLEAN NOT NULL
    )
    """,
    "CREATE TABLE rollup_tiers (width_us BIGINT PRIMARY KEY, created_ts TIMESTAMPTZ NOT NULL)",
    # Series a tier keeps no rows for: their buckets would hold about one point each.
    "CREATE TABLE rollup_sparse (width_us BIGINT NOT NULL, series_id INTEGER NOT NULL)",
)

# version -> what creates it from the one before
MIGRATIONS: Mapping[int, Sequence[str]] = {1: _DDL_V1, 2: _DDL_V2}


class SchemaVersionError(KilnError):
    """The database was written by a newer Kiln than this one."""


def ensure_schema(
    conn: duck.Connection, now_us: int, migrations: Mapping[int, Sequence[str]] = MIGRATIONS
) -> int:
    """Create the schema in an empty database, or bring an older one up to date.

    Returns the schema version. Raises SchemaVersionError for a database from a newer Kiln.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_ts TIMESTAMPTZ NOT NULL)"
    )
    rows = conn.execute("SELECT max(version) FROM schema_version").fetchall()
    current = 0 if rows[0][0] is None else int(rows[0][0])
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the historian database has schema version {current}, but this Kiln knows only "
            f"up to version {SCHEMA_VERSION}: upgrade Kiln, or open a copy of an older database"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.begin()
        try:
            for ddl in migrations[version]:
                conn.execute(ddl)
            conn.execute(
                "INSERT INTO schema_version VALUES ($v, make_timestamptz($now))",
                {"v": version, "now": now_us},
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return SCHEMA_VERSION
