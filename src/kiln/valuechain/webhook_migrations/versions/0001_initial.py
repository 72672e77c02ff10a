"""Initial webhook delivery store: one row per (webhook, event).

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

# Written out rather than imported from kiln.valuechain.webhook_schema: a revision is a frozen
# record of what the schema was.


def upgrade() -> None:
    op.create_table(
        "vc_webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("webhook", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=True),
        sa.Column("sent_us", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vc_webhook_deliveries"),
    )
    op.create_index(
        "ix_vc_webhook_deliveries_status_next",
        "vc_webhook_deliveries",
        ["status", "next_attempt_us"],
    )
    op.create_index("ix_vc_webhook_deliveries_created_us", "vc_webhook_deliveries", ["created_us"])


def downgrade() -> None:
    op.drop_index("ix_vc_webhook_deliveries_created_us", table_name="vc_webhook_deliveries")
    op.drop_index("ix_vc_webhook_deliveries_status_next", table_name="vc_webhook_deliveries")
    op.drop_table("vc_webhook_deliveries")
