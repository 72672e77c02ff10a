"""Statements the relational stores share, written once for SQLite and PostgreSQL: an upsert in
each backend's ON CONFLICT syntax, an insert that returns the numbers the database gave, a
segment-wise path subtree condition an index can answer, and IN lists cut to a safe length."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

IN_CHUNK = 500  # keys per IN list: well under SQLite's bound-parameter limit


def upsert(conn: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, replacing the other columns of those whose `keys` exist."""
    stmt: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    )
    others = [c.name for c in table.columns if c.name not in keys]
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in others}
        ),
        rows,
    )


def insert_missing(
    conn: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """Insert the `rows` whose `keys` are not there yet, leaving the others as they are: two
    writers adding the same key at once both succeed (a read-then-insert would let the second
    fail on the unique constraint)."""
    stmt: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=keys), rows)


def insert_numbered(
    conn: Connection, table: Table, column: Any, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert `rows` into a table numbered by the database; their numbers, in order."""
    if conn.dialect.name == "sqlite":
        # One executemany, then the last number: SQLite holds its one write lock for the whole
        # transaction and AUTOINCREMENT never reuses, so the rows got the n numbers up to it.
        conn.execute(insert(table), rows)
        last = int(conn.execute(select(func.max(column))).scalar_one())
        return list(range(last - len(rows) + 1, last + 1))
    stmt = insert(table).returning(column, sort_by_parameter_order=True)
    return [int(n) for n in conn.execute(stmt, rows).scalars().all()]


def subtree(conn: Connection, column: Any, path: str) -> ColumnElement[bool]:
    """`column` is `path` or lies below it, segment-wise: `line1` selects `line1/filler` but
    never `line10`."""
    path = path.rstrip("/")
    below = path + "/"
    if conn.dialect.name == "sqlite":
        # SQLite compares text byte by byte, and '0' follows '/', so the paths below `path`
        # are exactly [path/, path0): a range an index answers. (SQLite's LIKE ignores case.)
        inside = and_(column >= below, column < path + "0")
    else:
        # PostgreSQL's LIKE is case-sensitive; '_' and '%' are wildcards there: escaped.
        escaped = below.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        inside = column.like(escaped + "%", escape="\\")
    return or_(column == path, inside)


def in_parts(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `IN_CHUNK`, for IN lists."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]
