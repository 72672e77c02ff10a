"""Shared fixtures and helpers of the identity tests (imported by test_identity_*.py).

`db_url` runs a test on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres, database
test, or KILN_TEST_POSTGRES_URL), each PostgreSQL test in a schema of its own. When PostgreSQL
is unreachable the PostgreSQL runs are skipped, except under CI=true, where they fail.

Passwords are hashed with the cheapest argon2 parameters, so that a test costs milliseconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pyotp
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from kiln.core.platform import Platform, Stage
from kiln.security.passwords import PasswordHasherSettings
from kiln.security.principal import Principal
from kiln.security.service import Identity
from kiln.testing.clock import FakeClock

POSTGRES_URL = os.environ.get(
    "KILN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHEAP = PasswordHasherSettings.for_tests()
PASSWORD = "correct horse battery"  # passes the policy for every user name used here


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL run", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'identity.db'}"


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; probed once per run."""
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
def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def running(
    url: str, data_dir: Path, clock: FakeClock, **options: Any
) -> AsyncIterator[Identity]:
    """An Identity service started in a platform of its own, stopped on exit."""
    identity = Identity(url, data_dir=data_dir, password_settings=CHEAP, **options)
    platform = Platform(clock=clock, data_dir=data_dir)
    platform.add(identity, Stage.STORAGE)
    async with platform:
        yield identity


def admin_password(identity: Identity) -> str:
    result = identity.bootstrap_result
    assert result is not None, "this service did not bootstrap an administrator"
    return result.password


async def sign_in(
    identity: Identity, username: str, password: str = PASSWORD, **kwargs: Any
) -> Principal:
    """The principal of a fresh login."""
    pair = await identity.login(username, password, source="10.0.0.1", **kwargs)
    return await identity.authenticate_bearer(pair.access)


async def sign_in_admin(identity: Identity) -> Principal:
    return await sign_in(identity, "admin", admin_password(identity))


def totp_code(secret: str, clock: FakeClock, *, offset_steps: int = 0) -> str:
    now_s = clock.now_us() // 1_000_000 + offset_steps * 30
    return pyotp.TOTP(secret).at(now_s)


def wrong_totp_code(secret: str, clock: FakeClock) -> str:
    """A code that no step in the accepted window produces."""
    near = {totp_code(secret, clock, offset_steps=k) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)
