"""PostgresStore: the historian on PostgreSQL, for plants that want their history in the
database they already run, back up and replicate.

The engine is DuckDBStore's (series registry, snapshot, compression, idempotent writes,
rollups, the PI-style semantics in NumPy), over a `pg.PgConnection`; what differs is here:

- `points` is natively partitioned by source time (one partition per `partition_days`,
  created as data for it arrives), with a primary key on (series_id, ts) in every partition,
  so range reads of one series use its index and old partitions stay cold;
- TimescaleDB is not used: it is not packaged by Debian, and native partitioning needs no
  extension (hypertables would be the next step where the extension is installed);
- `epoch_us`, `make_timestamptz(µs)` and `list_contains` are SQL functions of the schema, so
  the shared SQL runs unchanged;
- disk use is the size of the schema's tables and indexes.

Every table lives in the connection's current schema (the first of its `search_path`), so
several Kilns, or tests, can share one database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from kiln.core.clock import Clock
from kiln.db.urls import libpq_url, redact, require_postgres_driver
from kiln.historian import duck
from kiln.historian.maths.columns import Columns
from kiln.historian.maths.thinning import Resolver
from kiln.historian.store import DiskUsage, DuckDBStore, StoreClosedError

if TYPE_CHECKING:
    from kiln.historian.pg import ReaderPool

_LOGGER = logging.getLogger(__name__)

DAY_US = 86_400_000_000

_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION epoch_us(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$
    """,
    # Out of PostgreSQL's range (DuckDB's is wider) means before or after everything.
    """
    CREATE OR REPLACE FUNCTION make_timestamptz(us bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE
        WHEN us < -210866803200000000 THEN '-infinity'::timestamptz
        WHEN us > 9223371331200000000 THEN 'infinity'::timestamptz
        ELSE 'epoch'::timestamptz + us * interval '1 microsecond' END $$
    """,
    """
    CREATE OR REPLACE FUNCTION list_contains(a bigint[], x bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT x = ANY(a) $$
    """,
)

_DDL_V1 = (
    *_FUNCTIONS,
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('float', 'int', 'bool', 'string')),
        created_ts TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE points (
        series_id INTEGER NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        value DOUBLE PRECISION,
        text TEXT,
        quality BIGINT NOT NULL,
        recv_ts TIMESTAMPTZ,
        PRIMARY KEY (series_id, ts)
    ) PARTITION BY RANGE (ts)
    """,
)

_DDL_V2 = (
    """
    CREATE TABLE rollups (
        width_us BIGINT NOT NULL,
        series_id INTEGER NOT NULL,
        bucket TIMESTAMPTZ NOT NULL,
        count BIGINT NOT NULL,
        sum DOUBLE PRECISION NOT NULL,
        m2 DOUBLE PRECISION NOT NULL,
        min DOUBLE PRECISION,
        max DOUBLE PRECISION,
        first DOUBLE PRECISION,
        last DOUBLE PRECISION,
        head_ts TIMESTAMPTZ NOT NULL,
        head_value DOUBLE PRECISION,
        head_good BOOLEAN NOT NULL,
        tail_ts TIMESTAMPTZ NOT NULL,
        tail_value DOUBLE PRECISION,
        tail_good BOOLEAN NOT NULL,
        area DOUBLE PRECISION NOT NULL,
        good_us BIGINT NOT NULL,
        PRIMARY KEY (width_us, series_id, bucket)
    )
    """,
    """
    CREATE TABLE rollup_pending (
        series_id INTEGER NOT NULL,
        t0 TIMESTAMPTZ NOT NULL,
        t1 TIMESTAMPTZ NOT NULL,
        append BOOLEAN NOT NULL
    )
    """,
    "CREATE TABLE rollup_tiers (width_us BIGINT PRIMARY KEY, created_ts TIMESTAMPTZ NOT NULL)",
    """
    CREATE TABLE rollup_sparse (
        width_us BIGINT NOT NULL, series_id INTEGER NOT NULL, PRIMARY KEY (width_us, series_id)
    )
    """,
)

MIGRATIONS: Mapping[int, Sequence[str]] = {1: _DDL_V1, 2: _DDL_V2}

# What DuckDB's state query gives (store.py): each series' newest point within the window,
# its oldest beyond it and its newest, each one probe of the (series_id, ts) key.
_STATE_SQL = """
SELECT s.id AS sid, epoch_us(w.ts) AS ts, w.value, w.text, w.quality,
       epoch_us(w.recv_ts) AS recv, epoch_us(a.ts) AS ahead, epoch_us(n.ts) AS newest
FROM series s
JOIN LATERAL (
    SELECT ts FROM points WHERE series_id = s.id ORDER BY ts DESC LIMIT 1
) n ON true
LEFT JOIN LATERAL (
    SELECT ts, value, text, quality, recv_ts FROM points
    WHERE series_id = s.id AND ts <= make_timestamptz($window) ORDER BY ts DESC LIMIT 1
) w ON true
LEFT JOIN LATERAL (
    SELECT ts FROM points
    WHERE series_id = s.id AND ts > make_timestamptz($window) ORDER BY ts LIMIT 1
) a ON true
{only}
ORDER BY s.id
"""
_LOAD_STATE_SQL = _STATE_SQL.format(only="")
_RELOAD_STATE_SQL = _STATE_SQL.format(
    only="WHERE list_contains($sids, s.id) AND s.id >= $s0 AND s.id <= $s1"
)

_PARTITIONS_SQL = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'points' AND p.relnamespace = current_schema()::regnamespace
"""


class PostgresStore(DuckDBStore):
    """The historian's storage on PostgreSQL (see the module docstring)."""

    _load_state_sql = _LOAD_STATE_SQL
    _reload_state_sql = _RELOAD_STATE_SQL

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        compression: Resolver | None = None,
        rollups: Sequence[int] | None = None,
        partition_days: int = 7,
        max_future_s: float = 600.0,
    ) -> None:
        """`url`: a libpq URL (`postgresql://user@host/db`; SQLAlchemy's
        `postgresql+psycopg://` is accepted too)."""
        super().__init__(
            None, clock=clock, compression=compression, rollups=rollups, max_future_s=max_future_s
        )
        if partition_days < 1:
            raise ValueError(f"partition_days must be at least 1, got {partition_days}")
        require_postgres_driver(url)
        from kiln.historian.pg import ReaderPool  # psycopg: the `postgres` extra

        self.url = libpq_url(url)
        self.partition_us = partition_days * DAY_US
        self._pool: ReaderPool = ReaderPool(self.url)
        self._partitions: set[int] = set()  # start (µs) of each partition that exists

    @property
    def where(self) -> str:
        return redact(self.url)

    def _connect(self) -> duck.Connection:
        conn = self._pool.writer()
        try:
            rows = conn.execute("SELECT to_regclass('points') IS NOT NULL").fetchall()
            if rows[0][0]:
                names = [name for (name,) in conn.execute(_PARTITIONS_SQL).fetchall()]
                self._partitions = {d * DAY_US for d in map(_partition_day, names) if d is not None}
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrations(self) -> Mapping[int, Sequence[str]]:
        return MIGRATIONS

    def _reclaim(self, conn: duck.Connection) -> None:
        """Autovacuum reclaims deleted rows; nothing to do at once."""

    def _before_insert(self, conn: duck.Connection, cols: Columns) -> None:
        """Create the partitions the points fall in (outside the write's transaction, so a
        failed write leaves them for the next one)."""
        p = self.partition_us
        for start in np.unique(cols.ts - cols.ts % p).tolist():
            if start in self._partitions:
                continue
            # The name holds the start in days since the epoch; bounds are literal times.
            lo, hi = _literal(start), _literal(start + p)
            day = start // DAY_US
            name = f"points_p{day}" if day >= 0 else f"points_m{-day}"
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF points "
                f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
            )
            self._partitions.add(start)

    def disk_usage(self) -> DiskUsage:
        conn = self._conn
        if conn is None:
            raise StoreClosedError("the historian store is closed")
        (row,) = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
        ).fetchall()
        used = int(row[0])
        return DiskUsage(used, used)

    def close(self, *, checkpoint: bool = True) -> None:
        try:
            super().close(checkpoint=False)
        finally:
            self._pool.close()


def _partition_day(name: str) -> int | None:
    """The first day (since the epoch) of a partition, from its name; None: not ours."""
    for prefix, sign in (("points_p", 1), ("points_m", -1)):
        digits = name.removeprefix(prefix)
        if digits != name and digits.isdigit():
            return sign * int(digits)
    return None


def _literal(us: int) -> str:
    """A timestamp literal PostgreSQL parses exactly, also outside Python's years 1 to 9999
    (the partition of a point in year 0001 starts in 1 BC)."""
    iso = str(np.datetime64(us, "us"))  # proleptic Gregorian; year 0 is 1 BC
    year, rest = iso.lstrip("-").split("-", 1)
    astronomical = -int(year) if iso.startswith("-") else int(year)
    if astronomical >= 1:
        return f"{iso}+00:00"
    return f"{1 - astronomical:04d}-{rest}+00:00 BC"
