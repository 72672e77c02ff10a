"""Shared fixtures and helpers of the audit log tests (imported by test_audit_*.py).

`db_url` runs a test on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres, database
test, or KILN_TEST_POSTGRES_URL), each PostgreSQL test in a schema of its own. When PostgreSQL
is unreachable the PostgreSQL runs are skipped, except under CI=true, where they fail.

Fixtures are defined under `fx_` names with `name=` set, so that a test module imports them
without its parameters shadowing the imported names.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from kiln.core.platform import Platform, Stage
from kiln.security.audit import AuditLog, AuditRecord, Category, Result
from kiln.testing.clock import FakeClock

POSTGRES_URL = os.environ.get(
    "KILN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = bytes(range(32))  # an install secret: 32 bytes
OTHER_SECRET = bytes(range(1, 33))


@pytest.fixture(name="data_dir")
def fx_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(name="clock")
def fx_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="sqlite_url")
def fx_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'audit.db'}"


@pytest.fixture(name="db_url", params=["sqlite", "postgresql"])
def fx_db_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{data_dir / 'audit.db'}"
    else:
        yield from _postgres_schema()


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; probed once per run, so an unreachable host
    costs one connection timeout rather than one per test."""
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


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL run", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


def _postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards."""
    problem = _postgres_problem()
    if problem is not None:
        _unavailable(problem)
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    schema = f"kiln_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # search_path puts every table, Alembic's included, in the test's schema.
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@asynccontextmanager
async def running(
    url: str, data_dir: Path, clock: FakeClock, key: bytes = SECRET, **options: Any
) -> AsyncIterator[AuditLog]:
    """An AuditLog started in a platform of its own, stopped on exit."""
    audit = AuditLog(url, key, data_dir=data_dir, **options)
    platform = Platform(clock=clock, data_dir=data_dir)
    platform.add(audit, Stage.STORAGE)
    async with platform:
        yield audit


async def login(audit: AuditLog, n: int = 0, **overrides: Any) -> AuditRecord:
    """A successful login record, numbered in its detail."""
    fields: dict[str, Any] = {
        "actor": "user:alice",
        "source": "10.0.0.7",
        "category": Category.AUTHENTICATION,
        "action": "login",
        "target": "alice",
        "result": Result.SUCCESS,
        "tenant": "acme",
        "detail": {"n": n},
    }
    fields.update(overrides)
    return await audit.record(**fields)


async def fill(audit: AuditLog, count: int) -> list[AuditRecord]:
    return [await login(audit, n) for n in range(count)]


def sql(url: str, statement: str, **params: Any) -> list[Any]:
    """Run `statement` on the database directly, as someone with write access would."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()
