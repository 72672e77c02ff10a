"""Alembic environment of the webhook delivery store: its own version table, its own table
only, so it can share a database with the value chain store and the others."""

from __future__ import annotations

from kiln.db.migrations import run_env
from kiln.valuechain.webhook_schema import VERSION_TABLE, metadata

run_env(
    metadata,
    version_table=VERSION_TABLE,
    own_tables=metadata.tables,
    config_hint="kiln.valuechain.webhook_migrations",
)
