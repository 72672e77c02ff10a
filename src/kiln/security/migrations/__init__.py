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

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version_security"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for these migrations, built without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; URLs may carry escaped characters.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind `connection` to `revision`, in the caller's transaction."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def head_revision() -> str | None:
    """The newest revision these migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database behind `connection` is at (None before the first upgrade)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
