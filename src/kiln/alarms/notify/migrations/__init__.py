"""Alembic migrations of the notifier's store, shipped inside the package, with their own
version table (`notifications_version`). They run from code (`upgrade`); see
`kiln.alarms.migrations` for writing a new revision."""

from __future__ import annotations

from pathlib import Path

from kiln.alarms.notify.schema import VERSION_TABLE
from kiln.db.migrations import Migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent

_MIGRATIONS = Migrations(MIGRATIONS_DIR, VERSION_TABLE)
alembic_config = _MIGRATIONS.alembic_config
upgrade = _MIGRATIONS.upgrade
head_revision = _MIGRATIONS.head_revision
current_revision = _MIGRATIONS.current_revision
