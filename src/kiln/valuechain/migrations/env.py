"""Alembic environment of the value chain store.

Run from code, the caller hands over an open connection in `config.attributes["connection"]`
and owns its transaction. Otherwise (Alembic used by hand) `sqlalchemy.url` is used.

The store keeps its own version table and looks only at its own tables, so that it can share a
database with other subsystems' migrations without either one touching the other's.
"""

from __future__ import annotations

from kiln.db.migrations import run_env
from kiln.valuechain.schema import VERSION_TABLE, metadata

run_env(
    metadata,
    version_table=VERSION_TABLE,
    own_tables=metadata.tables,
    config_hint="kiln.valuechain.migrations",
)
