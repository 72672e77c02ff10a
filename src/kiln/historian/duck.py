"""The SQL connection the historian's storage code talks to, and two habits of its writer.

The store, the rollup tiers and the queries are written against DuckDB's Python connection.
PostgreSQL gets the same code through `pg.PgConnection`, which offers the same methods and
accepts the same SQL (see there), so `Connection` names what both provide.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import duckdb
import pyarrow as pa


def db_errors() -> tuple[type[Exception], ...]:
    """What a failing statement raises, on either backend. psycopg is an optional extra, loaded
    only by the PostgreSQL backend: until it is loaded, no PostgreSQL statement can fail."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return (duckdb.Error,)
    return (duckdb.Error, psycopg.Error)


class Connection(Protocol):
    """The part of DuckDB's connection the historian uses."""

    def execute(self, query: str, parameters: Any = None, /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...
    def fetchnumpy(self) -> Any: ...
    def register(self, view_name: str, python_object: Any, /) -> Any: ...
    def unregister(self, view_name: str, /) -> Any: ...
    def begin(self) -> Any: ...
    def commit(self) -> Any: ...
    def rollback(self) -> Any: ...
    def cursor(self) -> Connection: ...
    def close(self) -> None: ...
    def checkpoint(self) -> Any: ...


@contextlib.contextmanager
def registered(conn: Connection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    """Arrow tables visible to SQL by name for the block. Register them outside a transaction:
    unregistering inside an aborted one would raise and hide the error that aborted it."""
    for name, table in tables.items():
        conn.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            with contextlib.suppress(*db_errors()):
                conn.unregister(name)


@contextlib.contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """BEGIN, then COMMIT if the block succeeds, else ROLLBACK and re-raise."""
    conn.begin()
    try:
        yield
        conn.commit()
    except BaseException:
        # After a failed COMMIT there is no transaction left to roll back.
        with contextlib.suppress(*db_errors()):
            conn.rollback()
        raise
