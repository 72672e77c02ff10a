"""The audit log's own migrations: they build the table it describes, on SQLite and PostgreSQL,
with a version table of their own, beside other subsystems' migrations in one database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from audit_fixtures import SECRET, fx_data_dir, fx_db_url, fx_sqlite_url  # noqa: F401
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from kiln.model.store import ModelStore
from kiln.security.audit import AuditStore, migrations
from kiln.security.audit.schema import VERSION_TABLE, metadata


def open_store(url: str, data_dir: Path) -> AuditStore:
    store = AuditStore(url, SECRET, data_dir=data_dir, now_us=lambda: 0)
    store.open()
    return store


def test_open_creates_the_schema_in_a_fresh_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "audit.db"  # the directory does not exist yet
    store = open_store(f"sqlite:///{path}", tmp_path / "data")
    try:
        with store.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"audit_log", VERSION_TABLE}
            assert migrations.current_revision(conn) == migrations.head_revision() == "0001"
    finally:
        store.dispose()
    assert path.is_file()


def test_migrated_schema_matches_the_table(db_url: str, data_dir: Path) -> None:
    store = open_store(db_url, data_dir)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


def test_shares_a_database_with_the_model_migrations(db_url: str, data_dir: Path) -> None:
    model = ModelStore(db_url)
    model.upgrade()
    store = open_store(db_url, data_dir)
    store.dispose()
    model.upgrade()  # each one's version table untouched by the other
    store = open_store(db_url, data_dir)
    try:
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {"alembic_version", VERSION_TABLE, "audit_log", "tags"} <= tables
            for version_table in ("alembic_version", VERSION_TABLE):
                assert conn.execute(text(f"SELECT count(*) FROM {version_table}")).scalar() == 1
    finally:
        store.dispose()
        model.dispose()


def test_downgrade_to_base_removes_the_table(sqlite_url: str, data_dir: Path) -> None:
    open_store(sqlite_url, data_dir).dispose()
    engine = create_engine(sqlite_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert "audit_log" not in inspect(conn).get_table_names()
            assert migrations.current_revision(conn) is None
    finally:
        engine.dispose()
