"""Documents (organisations, orders, proposals, routings, locations) and the event outbox.

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

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vc_documents",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="pk_vc_documents"),
    )
    op.create_index("ix_vc_documents_kind_party", "vc_documents", ["kind", "party"])
    op.create_index("ix_vc_documents_kind_state", "vc_documents", ["kind", "state"])
    op.create_table(
        "vc_events",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("published", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_vc_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_vc_events_published", "vc_events", ["published", "seq"])


def downgrade() -> None:
    op.drop_index("ix_vc_events_published", table_name="vc_events")
    op.drop_table("vc_events")
    op.drop_index("ix_vc_documents_kind_state", table_name="vc_documents")
    op.drop_index("ix_vc_documents_kind_party", table_name="vc_documents")
    op.drop_table("vc_documents")
