"""The production store's tables (SQLAlchemy Core): machine states and counter samples kept as
chunks, the reason dictionary, operators' reason records, products, work orders and their
events, shift calendars, and the engine's small persisted state.

Only portable column types, so the same tables live in SQLite (embedded) and PostgreSQL
(scale-out). The migrations in `kiln.production.migrations` create exactly these tables; a test
compares the two so that they cannot drift apart. Times are microseconds since the epoch
(the `kiln.core.clock` convention), as BIGINT.

Why chunks: a year of a state change every 2 minutes for 20 assets is 5.3 million changes.
Read back as rows that is minutes of row decoding; read back as one NumPy structured array per
asset and UTC day (`kiln.production.chunks`) it is a few thousand BLOBs and a memcpy each.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from kiln.core.values import MAX_PATH_LENGTH

# Alembic's bookkeeping table for these migrations: the production store may share a database
# with other subsystems, each keeping its own version table.
VERSION_TABLE = "production_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A name as `kiln.core.values` allows a path segment: product codes, order numbers, tag names.
NAME_LENGTH = 64
SHORT_LENGTH = 32  # enum values: categories, order states and actions
KEY_LENGTH = 128

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# On SQLite an INTEGER primary key is the rowid itself; it is 64-bit there anyway.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

# One chunk per asset and UTC day: `data` is the rows' bytes in `chunks.STATE_DTYPE`, sorted
# by time, one row per distinct time; `n` is their count (a check on the bytes' length).
PROD_STATE_CHUNKS = Table(
    "prod_state_chunks",
    metadata,
    Column("asset", String(MAX_PATH_LENGTH), nullable=False),
    Column("day_us", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("n", Integer, nullable=False),
    PrimaryKeyConstraint("asset", "day_us"),
)

# One chunk per asset, signal and UTC hour, in `chunks.SAMPLE_DTYPE`. A signal is a counter
# ("good", "scrap", "total"), "ideal_cycle" or an SPC tag's name: a tag name is up to 64
# characters, so the column is that wide.
PROD_SAMPLE_CHUNKS = Table(
    "prod_sample_chunks",
    metadata,
    Column("asset", String(MAX_PATH_LENGTH), nullable=False),
    Column("signal", String(NAME_LENGTH), nullable=False),
    Column("hour_us", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("n", Integer, nullable=False),
    PrimaryKeyConstraint("asset", "signal", "hour_us"),
)

# Reason paths by number: state chunks keep the number (an int32), not the path. Id 0 is
# never given out (AUTOINCREMENT starts at 1 on both backends): it means "no reason".
PROD_REASONS = Table(
    "prod_reasons",
    metadata,
    Column("id", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("path", String(MAX_PATH_LENGTH), nullable=False, unique=True),
    sqlite_autoincrement=True,
)

# What operators entered: append-only, a correction is a newer record (see the store).
PROD_COUNT_EVENTS = Table(
    # Units counted one event at a time (an operator's entry, a scanner, a system without a
    # counter tag): increments, not counter readings. Never changed: the trail of what was said.
    "prod_count_events",
    metadata,
    Column("id", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("asset", String(MAX_PATH_LENGTH), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("good", Float, nullable=False),
    Column("scrap", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("user_name", Text, nullable=False),
    Column("entered_us", BigInteger, nullable=False),
    Index("ix_prod_count_events_asset_time_us", "asset", "time_us"),
    sqlite_autoincrement=True,
)

PROD_REASON_RECORDS = Table(
    "prod_reason_records",
    metadata,
    Column("id", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("asset", String(MAX_PATH_LENGTH), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Column("reason", String(MAX_PATH_LENGTH), nullable=False),
    Column("category", String(SHORT_LENGTH), nullable=False),
    Column("comment", Text, nullable=False),
    # Not `user`: PostgreSQL reads an unquoted `user` as the session's user.
    Column("user_name", Text, nullable=False),
    Column("entered_us", BigInteger, nullable=False),
    Column("action", String(SHORT_LENGTH), nullable=False),
    Column("group_id", BigInteger, nullable=False),
    # Subtree and time queries: `asset = x OR asset LIKE 'x/%'` with a start bound. On
    # PostgreSQL a LIKE prefix can use a B-tree only with the pattern operator class.
    Index(
        "ix_prod_reason_records_asset_start_us",
        "asset",
        "start_us",
        postgresql_ops={"asset": "varchar_pattern_ops"},
    ),
    sqlite_autoincrement=True,
)

PROD_PRODUCTS = Table(
    "prod_products",
    metadata,
    Column("code", String(NAME_LENGTH), primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit", String(SHORT_LENGTH), nullable=False),
    Column("ideal_cycle_s", Float, nullable=True),
    Column("per_asset", JSON, nullable=False),  # {asset path: ideal cycle in s}
    Column("updated_us", BigInteger, nullable=False),
)

PROD_ORDERS = Table(
    "prod_orders",
    metadata,
    Column("id", String(NAME_LENGTH), primary_key=True),
    # A code, not a foreign key: an order keeps its product's code after the product is gone.
    Column("product", String(NAME_LENGTH), nullable=False),
    Column("line", String(MAX_PATH_LENGTH), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("state", String(SHORT_LENGTH), nullable=False),
    Column("due_us", BigInteger, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Index("ix_prod_orders_line", "line", postgresql_ops={"line": "varchar_pattern_ops"}),
    Index("ix_prod_orders_state", "state"),
)

PROD_ORDER_EVENTS = Table(
    "prod_order_events",
    metadata,
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("order_id", String(NAME_LENGTH), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("action", String(SHORT_LENGTH), nullable=False),
    Column("old_state", String(SHORT_LENGTH), nullable=False),
    Column("new_state", String(SHORT_LENGTH), nullable=False),
    Column("user_name", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Index("ix_prod_order_events_order_id_seq", "order_id", "seq"),
    sqlite_autoincrement=True,
)

# A site's shift calendar as JSON; `kiln.production.calendar` parses it.
PROD_CALENDARS = Table(
    "prod_calendars",
    metadata,
    Column("site", String(MAX_PATH_LENGTH), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

# The production engine's small persisted state (positions, settings), by key.
PROD_KV = Table(
    "prod_kv",
    metadata,
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", JSON, nullable=False),
)
