"""The value chain store's tables (SQLAlchemy Core): materials and bills of materials, lots,
the lot transaction log, the consumption booked into production orders, and genealogy edges.

Only portable column types, so the same tables live in SQLite (embedded) and PostgreSQL
(scale-out). The migrations in `kiln.valuechain.migrations` create exactly these tables; a test
compares the two so that they cannot drift apart. Times are microseconds since the epoch
(the `kiln.core.clock` convention), as BIGINT.

Quantities are exact decimals (`kiln.valuechain.lots`) and are kept as their text (`str` of the
Decimal, exponent and all), never as a float or a NUMERIC whose scale a database might adjust:
what is read back equals, digit for digit, what the pure ledger computed.

Master data is kept as one JSON definition per material and per bill of materials: the store
checks it as a whole (`kiln.valuechain.master.MasterData`) on every change, and planning reads
all of it at once, so columns per field would buy nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

# Alembic's bookkeeping table for these migrations: the value chain store may share a database
# with other subsystems, each keeping its own version table.
VERSION_TABLE = "valuechain_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A code (`lots.CODE_PATTERN`): materials, lots, orders, transactions.
CODE_LENGTH = 64
SHORT_LENGTH = 32  # enum values and units
LOCATION_LENGTH = 512  # `lots.Text`
DOC_ID_LENGTH = 128

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# On SQLite an INTEGER primary key is the rowid itself; it is 64-bit there anyway.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

VC_MATERIALS = Table(
    "vc_materials",
    metadata,
    Column("code", String(CODE_LENGTH), primary_key=True),
    Column("definition", JSON, nullable=False),  # Material.model_dump(mode="json")
    Column("updated_us", BigInteger, nullable=False),
)

VC_BOMS = Table(
    "vc_boms",
    metadata,
    Column("parent", String(CODE_LENGTH), primary_key=True),
    Column("definition", JSON, nullable=False),  # Bom.model_dump(mode="json")
    Column("updated_us", BigInteger, nullable=False),
)

# Each lot as it stands now (`lots.Lot`, one column per field); the log says how it got there.
VC_LOTS = Table(
    "vc_lots",
    metadata,
    Column("id", String(CODE_LENGTH), primary_key=True),
    Column("material", String(CODE_LENGTH), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("unit", String(SHORT_LENGTH), nullable=False),
    Column("location", String(LOCATION_LENGTH), nullable=False),
    Column("state", String(SHORT_LENGTH), nullable=False),
    Column("supplier", Text, nullable=True),
    Column("supplier_lot", Text, nullable=True),
    Column("purchase_order", Text, nullable=True),
    Column("order_id", Text, nullable=True),
    Column("customer", Text, nullable=True),
    Column("shipment_id", Text, nullable=True),
    Column("sales_order", Text, nullable=True),
    Column("hold_reason", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # Stock of a material in a state: what planning nets and a recall quarantines.
    Index("ix_vc_lots_material_state", "material", "state"),
)

# Every applied transaction, in order; `body` is the transaction itself as JSON.
VC_LOT_TRANSACTIONS = Table(
    "vc_lot_transactions",
    metadata,
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("id", String(CODE_LENGTH), nullable=False, unique=True),
    Column("kind", String(SHORT_LENGTH), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    # Not `user`: PostgreSQL reads an unquoted `user` as the session's user.
    Column("user_name", Text, nullable=False),
    Column("body", JSON, nullable=False),
    sqlite_autoincrement=True,
)

# What each production order consumed so far, lot by lot (the ledger's booking): a produce
# draws its genealogy edges from it. `position` keeps the order in which lots were first
# booked, so edges come out in the ledger's order.
VC_ORDER_CONSUMPTION = Table(
    "vc_order_consumption",
    metadata,
    Column("order_id", String(CODE_LENGTH), nullable=False),
    Column("lot_id", String(CODE_LENGTH), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "lot_id"),
)

# Material of `source` went into `target`. Genealogy walks these both ways (and PostgreSQL's
# WITH RECURSIVE over them), so both ends are indexed.
VC_GENEALOGY_EDGES = Table(
    "vc_genealogy_edges",
    metadata,
    Column("id", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("source", String(CODE_LENGTH), nullable=False),
    Column("target", String(CODE_LENGTH), nullable=False),
    Column("kind", String(SHORT_LENGTH), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("transaction_id", String(CODE_LENGTH), nullable=False),
    Column("order_id", Text, nullable=True),
    Column("time_us", BigInteger, nullable=False),
    Index("ix_vc_genealogy_edges_source", "source"),
    Index("ix_vc_genealogy_edges_target", "target"),
    sqlite_autoincrement=True,
)

# The documents of the value chain that are whole aggregates: organisations, sales and purchase
# orders (with their lines, shipments and receipts), planning proposals, routings and
# locations. Each is one JSON body (its pure model, `model_dump(mode="json")`: decimals as
# text) read and written whole, as the pure cores check it whole; the columns beside it are the
# ones queries select on: the counterparty (`party`: a customer or supplier code, which is how
# a partner's users are limited to their own), the state, and `version`, raised by one on
# every change so that a change based on an old read is refused (optimistic concurrency).
VC_DOCUMENTS = Table(
    "vc_documents",
    metadata,
    Column("kind", String(SHORT_LENGTH), nullable=False),
    # Longer than a code: a proposal's id is "plan-<material>-<day>-<n>".
    Column("id", String(DOC_ID_LENGTH), nullable=False),
    Column("party", String(CODE_LENGTH), nullable=True),
    Column("state", String(SHORT_LENGTH), nullable=True),
    Column("version", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "id"),
    Index("ix_vc_documents_kind_party", "kind", "party"),
    Index("ix_vc_documents_kind_state", "kind", "state"),
)

# The outbox: every change's event, written in the same database transaction as the change and
# published on the bus afterwards (`published` set then). A crash between the two publishes it
# at the next start, with the same event id, so subscribers that deduplicate see it once.
VC_EVENTS = Table(
    "vc_events",
    metadata,
    Column("seq", SEQ_TYPE, primary_key=True, autoincrement=True),
    Column("kind", String(SHORT_LENGTH), nullable=False),
    Column("subject", String(DOC_ID_LENGTH), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("body", JSON, nullable=False),
    Column("published", Integer, nullable=False),
    Index("ix_vc_events_published", "published", "seq"),
    sqlite_autoincrement=True,
)
