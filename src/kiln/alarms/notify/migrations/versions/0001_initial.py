"""Initial notifier store: deliveries and pipeline state.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from kiln.alarms.notify.schema: a revision is a frozen
# record of what the schema was.


def upgrade() -> None:
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=64), nullable=False),
        sa.Column("block", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("alarm_id", sa.String(length=640), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round_start", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=True),
        sa.Column("sent_us", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_deliveries"),
    )
    op.create_index(
        "ix_notify_deliveries_status_next", "notify_deliveries", ["status", "next_attempt_us"]
    )
    op.create_index("ix_notify_deliveries_alarm_id", "notify_deliveries", ["alarm_id"])
    op.create_index("ix_notify_deliveries_created_us", "notify_deliveries", ["created_us"])
    op.create_table(
        "notify_state",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name="pk_notify_state"),
    )


def downgrade() -> None:
    op.drop_table("notify_state")
    op.drop_index("ix_notify_deliveries_created_us", table_name="notify_deliveries")
    op.drop_index("ix_notify_deliveries_alarm_id", table_name="notify_deliveries")
    op.drop_index("ix_notify_deliveries_status_next", table_name="notify_deliveries")
    op.drop_table("notify_deliveries")
