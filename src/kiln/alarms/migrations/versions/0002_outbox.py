"""The alarm store's outbox mark: the journal's last entry published on the bus.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarm_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("published_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_outbox")),
    )


def downgrade() -> None:
    op.drop_table("alarm_outbox")
