"""SQLAlchemy engines for the audit database, with the SQLite settings durability relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

DB_FILE = "audit.db"


def default_url(data_dir: Path) -> str:
    """The embedded default: an SQLite file in the data directory."""
    return f"sqlite:///{data_dir / DB_FILE}"


def parse_url(url: str) -> URL:
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


def create_audit_engine(url: str, *, writer: bool = True) -> Engine:
    """An engine for the audit database.

    A writer's SQLite connections use WAL (readers such as `kiln audit verify` proceed while a
    record commits) and synchronous=FULL: an audit record is acknowledged only once it is on
    disk, and WAL's default of NORMAL can lose the last commits on power loss. A reader sets
    nothing, so that it never writes to the file it checks.

    Errors leave out the statement's parameters: they hold who did what, and error messages
    end up in logs that more people read than the audit trail.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        # One shared connection: every thread must see the same in-memory database.
        engine = create_engine(
            parsed,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
    else:
        if writer:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, hide_parameters=True)
    if writer:
        event.listen(engine, "connect", _sqlite_writer_on_connect)
    return engine


def _sqlite_writer_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
