"""Database URLs: which backend, what logs may show, and the driver PostgreSQL needs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kiln.db.urls import (
    is_postgres_url,
    libpq_url,
    redact,
    require_postgres_driver,
    sqlite_url,
)


@pytest.mark.parametrize(
    ("url", "postgres"),
    [
        ("postgresql://kiln@db/plant", True),
        ("postgresql+psycopg://kiln@db/plant", True),
        ("postgres://kiln@db/plant", True),
        ("sqlite:///plant.db", False),
        ("mysql://kiln@db/plant", False),
        (None, False),
    ],
)
def test_tells_postgresql_urls_apart(url: str | None, postgres: bool) -> None:
    assert is_postgres_url(url) is postgres


def test_redact_hides_the_password_only() -> None:
    assert redact("postgresql://kiln:s3cret@db:5432/plant") == "postgresql://kiln:***@db:5432/plant"
    assert redact("postgresql://kiln@db/plant") == "postgresql://kiln@db/plant"
    assert redact("sqlite:///plant.db") == "sqlite:///plant.db"


def test_libpq_takes_the_url_without_a_driver() -> None:
    assert libpq_url("postgresql+psycopg://kiln@db/plant") == "postgresql://kiln@db/plant"
    assert libpq_url("postgres://kiln@db/plant") == "postgresql://kiln@db/plant"
    assert libpq_url("postgresql://kiln@db/plant") == "postgresql://kiln@db/plant"


def test_the_sqlite_default_is_a_file_url() -> None:
    assert sqlite_url(Path("/var/lib/kiln/model.db")) == "sqlite:////var/lib/kiln/model.db"


def test_a_postgresql_url_without_its_driver_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    require_postgres_driver("sqlite:///plant.db")  # needs nothing
    with pytest.raises(ValueError, match=r"pip install 'kiln\[postgres\]'") as err:
        require_postgres_driver("postgresql://kiln:s3cret@db/plant")
    assert "s3cret" not in str(err.value)
