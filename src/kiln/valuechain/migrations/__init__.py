"""Alembic migrations of the value chain store, shipped inside the package, with their own
version table (`valuechain_version`).

They run from code (`upgrade`), so an installed Kiln needs no alembic.ini. To write a new
revision during development, point a config at a scratch database that is at head:

    from alembic import command
    from kiln.valuechain.migrations import alembic_config
    command.revision(alembic_config("sqlite:///scratch.db"), "add x", autogenerate=True)
"""

from __future__ import annotations

from pathlib import Path

from kiln.db.migrations import Migrations
from kiln.valuechain.schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent

_MIGRATIONS = Migrations(MIGRATIONS_DIR, VERSION_TABLE)
alembic_config = _MIGRATIONS.alembic_config
upgrade = _MIGRATIONS.upgrade
head_revision = _MIGRATIONS.head_revision
current_revision = _MIGRATIONS.current_revision
