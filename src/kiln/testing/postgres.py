"""PostgreSQL for tests: is it there, and a schema of one's own that is dropped afterwards.

`KILN_TEST_POSTGRES_URL` names the server (default: the local one, user postgres, database
test). Each test works in a fresh schema, put first on the connections' `search_path`, so the
code under test runs unchanged, as it would against a database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import quote

POSTGRES_URL = os.environ.get("KILN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@cache
def problem(url: str = POSTGRES_URL) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None (asked once per process)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'psycopg[binary]'"
    try:
        with psycopg.connect(libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as err:
        return f"PostgreSQL at {url} is unreachable: {err}"
    return None


@contextmanager
def fresh_schema(url: str = POSTGRES_URL) -> Iterator[str]:
    """A libpq URL whose connections work in a new schema, dropped (with its tables) after."""
    import psycopg

    base = libpq(url)
    schema = f"kiln_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def schema_for_test() -> Iterator[str]:
    """`fresh_schema` for a pytest test: skipped without a server, failed under CI=true."""
    import pytest

    reason = problem()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the PostgreSQL run", pytrace=False)
        pytest.skip(f"{reason} (set CI=true to make this a failure)")
    with fresh_schema() as url:
        yield url
