"""Relational plumbing every store shares: database URLs (`urls`), SQLAlchemy engines with the
settings each backend needs (`engines`), portable column types (`types`) and the Alembic runner
(`migrations`).

Nothing here loads a database driver at import: PostgreSQL's (psycopg, the `postgres` extra) is
imported by SQLAlchemy only when an engine for a PostgreSQL URL first connects.
"""
