"""Alembic environment of the asset model.

Run from code, the caller hands over an open connection in `config.attributes["connection"]`
and owns its transaction. Otherwise (Alembic used by hand) `sqlalchemy.url` is used.
"""

from __future__ import annotations

from kiln.db.migrations import run_env
from kiln.model.schema import Base

run_env(Base.metadata, config_hint="kiln.model.migrations")
