"""Engines: psycopg 3 for PostgreSQL, the pragmas a store asks for on every SQLite
connection, readers that change nothing, and errors without parameters where asked."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, text
from sqlalchemy.exc import IntegrityError, OperationalError

from kiln.db.engines import (
    FOREIGN_KEYS,
    SYNCHRONOUS_FULL,
    WAL,
    create_db_engine,
    parse_url,
    sqlite_file,
)
from kiln.db.urls import sqlite_url

SECRETS = Table(
    "secrets", MetaData(), Column("id", Integer, primary_key=True), Column("who", String(32))
)


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    engine = create_db_engine("postgresql://kiln@db.example/kiln")  # does not connect
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
    assert parse_url("postgresql+psycopg2://kiln@db/x").drivername == "postgresql+psycopg2"


def test_every_new_sqlite_connection_gets_the_pragmas(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new" / "dir" / "store.db")
    engine = create_db_engine(url, sqlite_pragmas=(FOREIGN_KEYS, WAL, SYNCHRONOUS_FULL))
    try:
        for _ in range(2):  # a second pooled connection as well as the first
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            engine.dispose()
    finally:
        engine.dispose()
    assert sqlite_file(url) == tmp_path / "new" / "dir" / "store.db"


def test_without_pragmas_sqlite_keeps_its_defaults(tmp_path: Path) -> None:
    engine = create_db_engine(sqlite_url(tmp_path / "plain.db"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 0
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "delete"
    finally:
        engine.dispose()


def test_a_reader_makes_no_directory(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    engine = create_db_engine(sqlite_url(missing / "audit.db"), create_dir=False)
    try:
        with pytest.raises(OperationalError):
            engine.connect().close()
    finally:
        engine.dispose()
    assert not missing.exists()


def test_an_in_memory_database_is_one_database_for_every_thread() -> None:
    engine = create_db_engine("sqlite://")
    try:
        with engine.begin() as conn:
            SECRETS.create(conn)
            conn.execute(insert(SECRETS).values(id=1, who="alice"))
        seen: list[object] = []

        def read() -> None:
            with engine.connect() as conn:
                seen.append(conn.execute(text("SELECT who FROM secrets")).scalar())

        worker = threading.Thread(target=read)
        worker.start()
        worker.join()
        assert seen == ["alice"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("hide", [True, False])
def test_errors_leave_out_parameters_when_asked(hide: bool) -> None:
    engine = create_db_engine("sqlite://", hide_parameters=hide)
    try:
        with engine.begin() as conn:
            SECRETS.create(conn)
            conn.execute(insert(SECRETS).values(id=1, who="alice"))
        with pytest.raises(IntegrityError) as err, engine.begin() as conn:
            conn.execute(insert(SECRETS).values(id=1, who="mallory"))
        assert ("mallory" in str(err.value)) is not hide
    finally:
        engine.dispose()


def test_sqlite_file_is_none_for_other_databases() -> None:
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://kiln@db/plant") is None
