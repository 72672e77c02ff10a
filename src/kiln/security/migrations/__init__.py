"""Alembic migrations of the identity tables, shipped inside the package.

They keep their own history in the version table `alembic_version_security`, so that they can
run in the same database as the asset model's migrations without either seeing the other's
revisions. They run from code (`upgrade`); to write a new revision during development, point a
config at a scratch database that is at head:

    from alembic import command
    from kiln.security.migrations import alembic_config
    command.revision(alembic_config("sqlite:///scratch.db"), "add x", autogenerate=True)
"""

from __future__ import annotations

from pathlib import Path

from kiln.db.migrations import Migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version_security"

_MIGRATIONS = Migrations(MIGRATIONS_DIR, VERSION_TABLE)
alembic_config = _MIGRATIONS.alembic_config
upgrade = _MIGRATIONS.upgrade
head_revision = _MIGRATIONS.head_revision
current_revision = _MIGRATIONS.current_revision
