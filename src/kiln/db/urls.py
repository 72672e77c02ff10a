"""Database URLs: which backend a URL names, the embedded SQLite default, what logs may show,
and the driver a PostgreSQL URL needs. Standard library only, so settings can check URLs
without loading SQLAlchemy or a driver."""

from __future__ import annotations

from pathlib import Path

POSTGRES_EXTRA = "pip install 'kiln[postgres]'"


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of an SQLite file: the embedded default of every relational store."""
    return f"sqlite:///{path}"


def is_postgres_url(url: str | None) -> bool:
    """True for postgresql:// and postgres:// URLs, with or without a +driver."""
    return url is not None and url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL as libpq (psycopg's connect) takes it."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"


def require_postgres_driver(url: str | None) -> None:
    """For a PostgreSQL URL, make sure its driver (psycopg, the `postgres` extra) is installed,
    with the fix in the error. Other URLs need nothing."""
    if not is_postgres_url(url):
        return
    try:
        import psycopg  # noqa: F401
    except ImportError as err:
        raise ValueError(
            f"{redact(url or '')} is a PostgreSQL URL, but the PostgreSQL driver (psycopg) is "
            f"not installed; install it with: {POSTGRES_EXTRA}"
        ) from err
