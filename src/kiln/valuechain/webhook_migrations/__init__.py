"""Alembic migrations of the value chain's webhook delivery store, shipped inside the package,
with their own version table (`valuechain_webhooks_version`). They run from code (`upgrade`);
see `kiln.valuechain.migrations` for writing a new revision (with this package's
`alembic_config`)."""

from __future__ import annotations

from pathlib import Path

from kiln.db.migrations import Migrations
from kiln.valuechain.webhook_schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent

_MIGRATIONS = Migrations(MIGRATIONS_DIR, VERSION_TABLE)
alembic_config = _MIGRATIONS.alembic_config
upgrade = _MIGRATIONS.upgrade
head_revision = _MIGRATIONS.head_revision
current_revision = _MIGRATIONS.current_revision
