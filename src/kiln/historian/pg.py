"""PgConnection: a PostgreSQL connection that the historian's DuckDB-dialect code can use.

The store, the rollup tiers and the queries are one code base for both backends. They use a
small part of DuckDB's Python API and SQL, and this class provides that part over psycopg:

- `$name` parameters become psycopg's `%(name)s` (and a literal `%` becomes `%%`);
- `register(name, arrow_table)` creates a temporary table and fills it with one COPY (CSV
  written by Arrow's C++ writer, so a million rows take well under a second), and
  `unregister` drops it; `INSERT INTO t BY NAME SELECT * FROM name` names the columns;
- `fetchnumpy()` returns NumPy columns, masked where a value is NULL, as DuckDB does;
- a DELETE or an UPDATE answers `fetchall()` with its row count, as DuckDB does;
- `epoch_us`, `make_timestamptz(µs)` and `list_contains` are SQL functions of the schema
  (see `pg_store.py`), which the planner inlines, so indexes still apply.

Transactions are explicit (`begin`/`commit`/`rollback`), as in DuckDB; everything else runs
in autocommit.
"""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_BY_NAME = re.compile(
    r"INSERT\s+INTO\s+(\w+)\s+BY\s+NAME\s+SELECT\s+\*\s+FROM\s+(\w+)", re.IGNORECASE
)
_COUNTED = re.compile(r"^\s*(DELETE|UPDATE)\b", re.IGNORECASE)

# PostgreSQL type names for the Arrow types the historian registers.
_PG_TYPES = {
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.uint32(): "bigint",  # OPC UA status codes use all 32 bits
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.string(): "text",
    pa.large_string(): "text",
    pa.null(): "text",
}

# Result columns by PostgreSQL type OID (pg_type): what NumPy dtype they become.
_INT_OIDS = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_FLOAT_OIDS = frozenset({700, 701, 1700})  # float4, float8, numeric
_BOOL_OID = 16


def translate(query: str) -> str:
    """DuckDB's parameter style as psycopg's."""
    return _PARAM.sub(r"%(\1)s", query.replace("%", "%%"))


class PgConnection:
    """One psycopg connection with the DuckDB connection methods the historian calls."""

    def __init__(
        self, conn: psycopg.Connection[Any], pool: ReaderPool | None = None, *, reader: bool = False
    ) -> None:
        self._conn = conn
        self._pool = pool
        self._reader = reader  # a pooled reader: `close` gives it back
        self._cur: psycopg.Cursor[Any] | None = None
        self._rowcount = -1
        self._counted = False
        self._inputs: dict[str, list[str]] = {}  # registered name -> its columns

    # -- statements --------------------------------------------------------------------

    def execute(self, query: str, parameters: Any = None, /) -> PgConnection:
        match = _BY_NAME.search(query)
        if match is not None:
            cols = self._inputs.get(match.group(2))
            if cols is None:
                raise psycopg.ProgrammingError(f"{match.group(2)} is not registered")
            names = ", ".join(f'"{c}"' for c in cols)
            query = (query[: match.start()] + f"INSERT INTO {match.group(1)} ({names}) "
                     f"SELECT {names} FROM {match.group(2)}" + query[match.end():])  # fmt: skip
        cur = self._conn.cursor()
        cur.execute(translate(query), parameters or None)
        self._cur = cur
        self._counted = bool(_COUNTED.match(query)) and cur.description is None
        self._rowcount = cur.rowcount
        return self

    def _result(self) -> psycopg.Cursor[Any]:
        if self._cur is None:
            raise psycopg.ProgrammingError("no statement was executed")
        return self._cur

    def fetchall(self) -> list[Any]:
        if self._counted:
            return [(self._rowcount,)]
        cur = self._result()
        return [] if cur.description is None else cur.fetchall()

    def fetchone(self) -> Any:
        cur = self._result()
        return None if cur.description is None else cur.fetchone()

    def fetchnumpy(self) -> dict[str, Any]:
        cur = self._result()
        if cur.description is None:
            return {}
        rows = cur.fetchall()
        out: dict[str, Any] = {}
        for i, column in enumerate(cur.description):
            values = [r[i] for r in rows]
            out[column.name] = _column(values, column.type_code)
        return out

    # -- inputs ----------------------------------------------------------------------------

    def register(self, view_name: str, python_object: Any, /) -> PgConnection:
        table: pa.Table = python_object
        name = view_name
        columns = []
        for field in table.schema:
            pg_type = (
                "timestamptz" if pa.types.is_timestamp(field.type) else _PG_TYPES.get(field.type)
            )
            if pg_type is None:
                raise TypeError(f"no PostgreSQL type for {field.name}: {field.type}")
            columns.append(sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(pg_type)))
        with self._conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE TEMP TABLE {} ({})").format(
                sql.Identifier(name), sql.SQL(", ").join(columns)))  # fmt: skip
            if table.num_rows:
                buf = io.BytesIO()
                pa_csv.write_csv(
                    table, buf,
                    pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
                )  # fmt: skip
                copy = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(sql.Identifier(name))
                with cur.copy(copy) as cp:
                    cp.write(buf.getbuffer())
        self._inputs[name] = list(table.column_names)
        return self

    def unregister(self, view_name: str, /) -> PgConnection:
        self._inputs.pop(view_name, None)
        self._conn.execute(
            sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(view_name))
        )
        return self

    # -- transactions and lifecycle --------------------------------------------------------

    def begin(self) -> PgConnection:
        self._conn.execute("BEGIN")
        return self

    def commit(self) -> PgConnection:
        self._conn.execute("COMMIT")
        return self

    def rollback(self) -> PgConnection:
        self._conn.execute("ROLLBACK")
        return self

    def checkpoint(self) -> PgConnection:
        return self  # PostgreSQL checkpoints on its own; its WAL is already durable

    def cursor(self) -> PgConnection:
        """A connection for one reader, from the pool (`close` gives it back)."""
        if self._pool is None:
            raise psycopg.ProgrammingError("this connection has no reader pool")
        return PgConnection(self._pool.take(), self._pool, reader=True)

    def close(self) -> None:
        if self._reader and self._pool is not None:
            self._pool.give(self._conn)
        else:
            self._conn.close()


class ReaderPool:
    """Idle reader connections, reused: a new PostgreSQL connection costs milliseconds."""

    def __init__(self, url: str, *, keep: int = 8) -> None:
        self.url = url
        self.keep = keep
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def writer(self) -> PgConnection:
        """The writer's own connection (not pooled; its `cursor()` gives pooled readers)."""
        return PgConnection(self.connect(), self)

    def take(self) -> psycopg.Connection[Any]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        return self.connect()

    def give(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()  # a reader left mid-transaction is not reused
            return
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _column(values: list[Any], oid: int) -> Any:
    """A result column as NumPy, masked where NULL (as DuckDB's fetchnumpy)."""
    missing = [v is None for v in values]
    if oid in _INT_OIDS:
        dtype: Any = np.int64
        fill: Any = 0
    elif oid in _FLOAT_OIDS:
        dtype, fill = np.float64, np.nan
    elif oid == _BOOL_OID:
        dtype, fill = bool, False
    else:
        dtype, fill = object, None
    if not any(missing):
        return np.asarray(values, dtype=dtype) if dtype is not object else _objects(values)
    data = [fill if m else v for v, m in zip(values, missing, strict=True)]
    array = np.asarray(data, dtype=dtype) if dtype is not object else _objects(data)
    return np.ma.MaskedArray(array, mask=np.asarray(missing, dtype=bool))


def _objects(values: list[Any]) -> Any:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
