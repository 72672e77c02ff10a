"""SQLAlchemy engines for Kiln's relational stores (asset model, identities, audit log), on
SQLite (embedded) or PostgreSQL (scale-out), with the settings each backend needs.

What differs between stores is passed in: the SQLite pragmas a store relies on (set on every
new connection, since SQLite keeps them per connection) and whether errors may show statement
parameters. What they share is here: psycopg 3 as PostgreSQL's driver, pings before reuse of a
pooled PostgreSQL connection, one shared connection for an in-memory SQLite database, and the
directory of an SQLite file made on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

from kiln.db.urls import redact

# SQLite enforces foreign keys only when asked, per connection.
FOREIGN_KEYS = "foreign_keys=ON"
# Readers (API threads, `kiln audit verify`) proceed while a writer commits.
WAL = "journal_mode=WAL"
# A commit returns only once it is on disk: WAL's default (NORMAL) can lose the last commits
# on power loss, which a store that acknowledges durability cannot accept.
SYNCHRONOUS_FULL = "synchronous=FULL"


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, with psycopg 3 as the driver of a bare postgresql:// URL."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; Kiln ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other backends and in-memory databases."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def create_db_engine(
    url: str,
    *,
    sqlite_pragmas: Sequence[str] = (),
    hide_parameters: bool = False,
    create_dir: bool = True,
) -> Engine:
    """An engine for `url`.

    `sqlite_pragmas` (such as `FOREIGN_KEYS`, `WAL`) are set on each new SQLite connection;
    pass none for a reader that must never write to the file it opens. `hide_parameters` leaves
    statement parameters out of errors, for tables whose rows should not end up in logs.
    `create_dir` makes the directory of an SQLite file (a writer's first start); a reader
    leaves it as it is and fails if the file is missing.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=hide_parameters)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        # One shared connection: every thread must see the same in-memory database.
        engine = create_engine(
            parsed,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=hide_parameters,
        )
    else:
        if create_dir:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, hide_parameters=hide_parameters)
    if sqlite_pragmas:
        pragmas = tuple(sqlite_pragmas)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                for pragma in pragmas:
                    cursor.execute(f"PRAGMA {pragma}")
            finally:
                cursor.close()

        event.listen(engine, "connect", on_connect)
    return engine


def open_migrated(
    url: str,
    *,
    what: str,
    upgrade: Callable[[Connection], None],
    sqlite_pragmas: Sequence[str] = (WAL, SYNCHRONOUS_FULL),
    backends: Sequence[str] = ("sqlite", "postgresql"),
) -> Engine:
    """An engine for a store's database, migrated to its head by `upgrade` (in one
    transaction); refuses a backend the store does not support, naming `what` it is for."""
    engine = create_db_engine(url, sqlite_pragmas=sqlite_pragmas)
    if engine.dialect.name not in backends:
        engine.dispose()
        raise ValueError(
            f"the {what} cannot use {redact(url)}: {engine.dialect.name} is not supported; "
            "use an sqlite:/// or postgresql:// URL"
        )
    try:
        with engine.begin() as conn:
            upgrade(conn)
    except BaseException:
        engine.dispose()
        raise
    return engine
