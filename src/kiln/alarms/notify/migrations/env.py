"""Alembic environment of the notifier's store: its own version table, its own tables only,
so it can share a database with the alarm store and the others."""

from __future__ import annotations

from kiln.alarms.notify.schema import VERSION_TABLE, metadata
from kiln.db.migrations import run_env

run_env(
    metadata,
    version_table=VERSION_TABLE,
    own_tables=metadata.tables,
    config_hint="kiln.alarms.notify.migrations",
)
