"""Alembic environment of the identity tables.

Run from code, the caller hands over an open connection in `config.attributes["connection"]`
and owns its transaction. Otherwise (Alembic used by hand) `sqlalchemy.url` is used.

The database may also hold other packages' tables (the asset model's, with its own version
table): this environment records its history in `alembic_version_security` and compares only
its own tables, so autogenerate never proposes dropping theirs.
"""

from __future__ import annotations

from kiln.db.migrations import run_env
from kiln.security.migrations import VERSION_TABLE
from kiln.security.schema import TABLES, Base

run_env(
    Base.metadata,
    version_table=VERSION_TABLE,
    own_tables=TABLES,
    config_hint="kiln.security.migrations",
)
