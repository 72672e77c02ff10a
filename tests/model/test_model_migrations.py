"""Migrations build the schema the models describe, on SQLite and PostgreSQL, repeatably."""

from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from kiln.model import migrations
from kiln.model.definitions import AssetDef, Level
from kiln.model.schema import Base
from kiln.model.store import ModelStore

TABLES = {"alembic_version", "asset_types", "assets", "tags"}


def test_upgrade_creates_the_schema_in_a_fresh_sqlite_file(tmp_path) -> None:
    path = tmp_path / "sub" / "dir" / "model.db"  # the directory does not exist yet
    store = ModelStore(f"sqlite:///{path}")
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES
            assert migrations.current_revision(conn) == migrations.head_revision() == "0003"
    finally:
        store.dispose()
    assert path.is_file()


def test_upgrade_twice_changes_nothing_and_keeps_data(db_url: str) -> None:
    store = ModelStore(db_url)
    try:
        store.upgrade()
        store.apply([], [AssetDef(path="acme/plant1", level=Level.SITE)])
        before = store.load()
        store.upgrade()
        assert store.load() == before
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        store.dispose()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    store = ModelStore(db_url)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        store.dispose()


def test_tags_of_0001_gain_an_empty_source_and_keep_their_rows(db_url: str) -> None:
    store = ModelStore(db_url)
    try:
        with store.engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                text(
                    "INSERT INTO tags (path, name, data_type, unit, description, auto_created, "
                    "created_at) VALUES ('acme/p1/t', 't', 'float', 'degC', 'oven', true, "
                    "'2026-01-01 00:00:00')"
                )
            )
        store.upgrade()
        (tag,) = store.load().tags
        assert (tag.path, tag.unit, tag.description, tag.source) == (
            "acme/p1/t",
            "degC",
            "oven",
            None,
        )
        with store.engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
            assert "source" not in {c["name"] for c in inspect(conn).get_columns("tags")}
    finally:
        store.dispose()


def test_downgrade_to_base_removes_the_tables(sqlite_url: str) -> None:
    store = ModelStore(sqlite_url)
    try:
        store.upgrade()
        with store.engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with store.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
            assert migrations.current_revision(conn) is None
    finally:
        store.dispose()


def test_alembic_by_url_without_an_ini_file(sqlite_url: str) -> None:
    # The path a developer takes to write the next revision: a config built in code.
    command.upgrade(migrations.alembic_config(sqlite_url), "head")
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(sqlite_url: str) -> None:
    store = ModelStore(sqlite_url)
    try:
        store.upgrade()
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO assets (path, name, level, parent_id, description) "
                    "VALUES ('a/b', 'b', 'site', 999, '')"
                )
            )
    finally:
        store.dispose()


def test_postgresql_is_available_for_the_backend_runs(postgres_problem: str | None) -> None:
    # The [postgresql] runs of the other tests skip (or, under CI=true, error) in setup when
    # the server is missing; this test makes the CI failure an explicit FAILED line.
    if postgres_problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{postgres_problem}; CI=true requires the PostgreSQL run")
    pytest.skip(f"{postgres_problem} (set CI=true to make this a failure)")
