"""The notifier's tables (SQLAlchemy Core): every delivery with its attempts, and the state
pipelines keep between events (timers, acknowledgements, consolidation windows).

Portable column types only, so the same tables live in SQLite and PostgreSQL; the migrations
in `kiln.alarms.notify.migrations` create exactly these. Times are microseconds since the
epoch as BIGINT, as in the alarm store.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from kiln.alarms.schema import ALARM_ID_LENGTH, NAMING_CONVENTION

# Alembic's bookkeeping table for these migrations (the store may share a database).
VERSION_TABLE = "notifications_version"

ID_LENGTH = 32  # a delivery id: hex of a hash of what caused it
KEY_LENGTH = 1024  # a state key: pipeline, alarm id, occurrence, event, block and kind
NAME_LENGTH = 64  # pipeline and user names
BLOCK_LENGTH = 255  # a block's place ("1.then.0")
SHORT_LENGTH = 32

metadata = MetaData(naming_convention=NAMING_CONVENTION)

DELIVERIES = Table(
    "notify_deliveries",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("pipeline", String(NAME_LENGTH), nullable=False),
    Column("block", String(BLOCK_LENGTH), nullable=False),
    Column("kind", String(SHORT_LENGTH), nullable=False),  # notify, escalate, remind, ...
    Column("channel", String(SHORT_LENGTH), nullable=False),
    Column("recipient", String(NAME_LENGTH), nullable=False),
    Column("address", Text, nullable=False),
    Column("alarm_id", String(ALARM_ID_LENGTH), nullable=False),  # the first alarm listed
    Column("occurrence", Integer, nullable=False),
    Column("event", String(SHORT_LENGTH), nullable=False),  # activation or clear
    # pending, sending, sent, failed (a retry is scheduled), dead
    Column("status", String(SHORT_LENGTH), nullable=False),
    Column("attempts", Integer, nullable=False),
    # `attempts` when the current round began: a dead letter retried gets a fresh round.
    Column("round_start", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=True),
    Column("sent_us", BigInteger, nullable=True),
    Column("payload", Text, nullable=False),  # `Send.to_json()`: what to send, again if need be
    Index("ix_notify_deliveries_status_next", "status", "next_attempt_us"),
    Index("ix_notify_deliveries_alarm_id", "alarm_id"),
    Index("ix_notify_deliveries_created_us", "created_us"),
)

STATE = Table(
    "notify_state",
    metadata,
    Column("kind", String(SHORT_LENGTH), primary_key=True),  # timer, alarm, bucket
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("due_us", BigInteger, nullable=True),  # a timer's
    Column("body", Text, nullable=False),  # JSON of `kiln.alarms.notify.model`'s classes
)
