"""Fixtures of the asset model tests: a database on each backend, and a small sample plant.

`db_url` runs a test on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres, database
test, or KILN_TEST_POSTGRES_URL), each PostgreSQL test in a schema of its own. When PostgreSQL
is unreachable the PostgreSQL runs are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level, TagDef
from kiln.model.store import ModelStore

POSTGRES_URL = os.environ.get(
    "KILN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL run", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'model.db'}"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; probed once, so an unreachable host costs one
    connection timeout per run rather than one per test."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install 'psycopg[binary]'"
    probe = create_engine(POSTGRES_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {err.orig}"
    finally:
        probe.dispose()
    return None


@pytest.fixture
def postgres_url(postgres_problem: str | None) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped after the test."""
    if postgres_problem is not None:
        _unavailable(postgres_problem)
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    schema = f"kiln_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # search_path puts every table, Alembic's included, in the test's schema: the code under
    # test runs unchanged, as it would against a database of its own.
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[ModelStore]:
    s = ModelStore(db_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture
def machine_types() -> list[AssetTypeDef]:
    """`filler` inherits `machine` and overrides its `temperature` tag."""
    machine = AssetTypeDef(
        name="machine",
        description="anything that runs",
        tags=(
            TagDef(
                name="state",
                data_type=DataType.STATE,
                states={1: "running", 2: "stopped", 3: "faulted"},
            ),
            TagDef(name="temperature", unit="degC", low=0, high=120, description="housing"),
            TagDef(name="good_count", data_type=DataType.INT),
        ),
    )
    filler = AssetTypeDef(
        name="filler",
        parent="machine",
        tags=(
            TagDef(name="temperature", unit="degC", low=-10, high=90, description="product"),
            TagDef(name="fill_weight", unit="g", low=0, high=1000),
        ),
    )
    return [machine, filler]


@pytest.fixture
def line_assets() -> list[AssetDef]:
    """A line with a filler and a capper; the site and area above it are left implicit."""
    return [
        AssetDef(path="acme/plant1/packaging/line1", level=Level.LINE, description="line 1"),
        AssetDef(path="acme/plant1/packaging/line1/filler", level=Level.ASSET, type="filler"),
        AssetDef(path="acme/plant1/packaging/line1/capper", level=Level.ASSET, type="machine"),
    ]
