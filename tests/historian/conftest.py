from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiln.historian import DuckDBStore


@pytest.fixture
def store() -> Iterator[DuckDBStore]:
    """An in-memory store."""
    s = DuckDBStore(None)
    s.open()
    yield s
    s.close()
