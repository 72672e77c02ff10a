"""Fixtures of the historian tests: stores on both backends.

`make_store` (and `store`, an open one) runs a test on DuckDB and on PostgreSQL: the contract
every backend keeps. The PostgreSQL runs use a schema of their own on the server named by
KILN_TEST_POSTGRES_URL (default: the local one); when it is unreachable they are skipped,
except under CI=true, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from historian_helpers import StoreFactory

from kiln.historian.pg_store import PostgresStore
from kiln.historian.store import DuckDBStore
from kiln.testing import postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL in a fresh schema (skipped, or failed under CI, without a server)."""
    with postgres.schema_for_test() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes (unopened) stores, all on the same data: reopening one finds what was written."""
    if request.param == "duckdb":
        path = tmp_path / "history.duckdb"
        return lambda **kw: DuckDBStore(path, **kw)
    url: str = request.getfixturevalue("pg_url")

    def make(**kw: Any) -> DuckDBStore:
        return PostgresStore(url, **kw)

    return make


@pytest.fixture
def store(make_store: StoreFactory) -> Iterator[DuckDBStore]:
    """An open store on each backend."""
    s = make_store()
    s.open()
    yield s
    s.close()
