"""Running a package's Alembic migrations from code: what the asset model, the identity tables
and the audit log share.

Each keeps its migrations inside the package (no alembic.ini in an installed Kiln) and, when it
names one, its own version table, so several can share one database without either seeing the
other's revisions or proposing to drop the other's tables.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, create_engine
from sqlalchemy.pool import NullPool


@dataclass(frozen=True, slots=True)
class Migrations:
    """The migrations in `directory`, recording their history in `version_table` (Alembic's
    default `alembic_version` if None)."""

    directory: Path
    version_table: str | None = None

    def alembic_config(self, url: str | None = None) -> Config:
        """An Alembic configuration for these migrations, built without an ini file."""
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        if url is not None:
            # ConfigParser treats % as interpolation; URLs may carry escaped characters.
            config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def upgrade(self, connection: Connection, revision: str = "head") -> None:
        """Migrate the database behind `connection` to `revision`, in the caller's transaction."""
        config = self.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    def head_revision(self) -> str | None:
        """The newest revision these migrations know."""
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self, connection: Connection) -> str | None:
        """The revision the database behind `connection` is at (None before the first upgrade)."""
        opts = {"version_table": self.version_table} if self.version_table else None
        return MigrationContext.configure(connection, opts=opts).get_current_revision()


def run_env(
    metadata: MetaData,
    *,
    version_table: str | None = None,
    own_tables: Collection[str] | None = None,
    config_hint: str,
) -> None:
    """The body of an env.py. Run from code, the caller hands over an open connection in
    `config.attributes["connection"]` and owns its transaction; otherwise (Alembic used by
    hand) `sqlalchemy.url` is used. With `own_tables`, autogenerate compares only those."""
    config = context.config
    options: dict[str, Any] = {"target_metadata": metadata, "render_as_batch": True}
    if version_table is not None:
        options["version_table"] = version_table
    if own_tables is not None:
        tables = frozenset(own_tables)

        def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
            return type_ != "table" or name in tables

        options["include_name"] = include_name

    def migrate(**extra: Any) -> None:
        # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table.
        context.configure(**options, **extra)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        # Emit SQL to a script instead of running it (for a DBA to review on PostgreSQL).
        migrate(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection=connection, compare_type=True)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database to migrate: pass a connection in config.attributes['connection'] "
            f"or set sqlalchemy.url (see {config_hint}.alembic_config)"
        )
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            migrate(connection=conn, compare_type=True)
    finally:
        engine.dispose()
