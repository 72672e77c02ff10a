"""The webhook deliveries' table (SQLAlchemy Core): one row per (webhook, event), with its
attempts, in a store of its own beside the value chain store.

Apart from the value chain store because it is the sender's bookkeeping, not the value chain's
record: it may live in another database, and the engine's store never waits on a receiver.
Portable column types only, so the same table lives in SQLite and PostgreSQL; the migrations
in `kiln.valuechain.webhook_migrations` create exactly this. Times are microseconds since the
epoch as BIGINT.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from kiln.valuechain.schema import NAMING_CONVENTION

# Alembic's bookkeeping table for these migrations (the store may share a database).
VERSION_TABLE = "valuechain_webhooks_version"

ID_LENGTH = 32  # a delivery id: hex of a hash of the webhook's name and the event's id
NAME_LENGTH = 64  # a webhook's name
EVENT_ID_LENGTH = 128  # the bus event's id (`vc-<seq>`), or its sequence number
SHORT_LENGTH = 32  # an event kind, a status

metadata = MetaData(naming_convention=NAMING_CONVENTION)

DELIVERIES = Table(
    "vc_webhook_deliveries",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("webhook", String(NAME_LENGTH), nullable=False),
    Column("event_id", String(EVENT_ID_LENGTH), nullable=False),
    Column("kind", String(SHORT_LENGTH), nullable=False),  # order, lot, plan, recall
    Column("subject", Text, nullable=False),
    # pending, sending, sent, failed (a retry is scheduled), dead
    Column("status", String(SHORT_LENGTH), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=True),
    Column("sent_us", BigInteger, nullable=True),
    # The JSON body, fixed when the delivery is made: every attempt sends the same bytes.
    Column("body", Text, nullable=False),
    Index("ix_vc_webhook_deliveries_status_next", "status", "next_attempt_us"),
    Index("ix_vc_webhook_deliveries_created_us", "created_us"),
)
