"""The audit table. Only portable column types: the same table lives in SQLite and PostgreSQL.

The migrations in `kiln.security.audit.migrations` create exactly this table; a test compares
the two so that they cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table

from kiln.security.audit.record import FIELD_LIMITS

# The embedded default: an SQLite file of this name in the data directory.
DB_FILE = "audit.db"

# Alembic's bookkeeping table for these migrations; other subsystems may share the database
# and keep their own `alembic_version`.
VERSION_TABLE = "alembic_version_audit"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# On SQLite an INTEGER primary key is the rowid itself (one B-tree, not a table plus an index);
# it is 64-bit there anyway.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

AUDIT_LOG = Table(
    "audit_log",
    metadata,
    # Always given by the writer (gapless, from the chain head), never generated.
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    Column("ts_us", BigInteger, nullable=False),  # UTC microseconds since the epoch
    Column("actor", String(FIELD_LIMITS["actor"]), nullable=False),
    Column("source", String(FIELD_LIMITS["source"]), nullable=False),
    Column("category", String(32), nullable=False),
    Column("action", String(FIELD_LIMITS["action"]), nullable=False),
    Column("target", String(FIELD_LIMITS["target"]), nullable=False),
    Column("result", String(16), nullable=False),
    Column("tenant", String(FIELD_LIMITS["tenant"]), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("prev_mac", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
    Index("ix_audit_log_ts_us", "ts_us"),
    Index("ix_audit_log_actor", "actor"),
    Index("ix_audit_log_category_action", "category", "action"),
    Index("ix_audit_log_tenant", "tenant"),
)
