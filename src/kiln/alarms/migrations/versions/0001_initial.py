"""Initial alarm store: current records, the journal, API definitions.

Revision ID: 0001
Revises:
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from kiln.alarms.schema: a revision is a frozen record of
# what the schema was, and must not change when the table definitions do.


def upgrade() -> None:
    op.create_table(
        "alarm_records",
        sa.Column("id", sa.String(length=640), nullable=False),
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=512), nullable=True),
        sa.Column("process", sa.String(length=32), nullable=False),
        sa.Column("shelving", sa.String(length=32), nullable=False),
        sa.Column("unshelve_at_us", sa.BigInteger(), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("out_of_service", sa.Boolean(), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("limit_value", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("active_since_us", sa.BigInteger(), nullable=True),
        sa.Column("changed_us", sa.BigInteger(), nullable=False),
        sa.Column("acked_by", sa.Text(), nullable=False),
        sa.Column("acked_us", sa.BigInteger(), nullable=True),
        sa.Column("shelved_by", sa.Text(), nullable=False),
        sa.Column("out_of_service_reason", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_records"),
    )
    op.create_table(
        "alarm_journal",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_us", sa.BigInteger(), nullable=False),
        sa.Column("recorded_us", sa.BigInteger(), nullable=False),
        sa.Column("alarm_id", sa.String(length=640), nullable=False),
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("priority", sa.String(length=32), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("old_state", sa.String(length=32), nullable=False),
        sa.Column("new_state", sa.String(length=32), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_alarm_journal"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alarm_journal_source_us", "alarm_journal", ["source_us"])
    op.create_index("ix_alarm_journal_alarm_id_seq", "alarm_journal", ["alarm_id", "seq"])
    op.create_index(
        "ix_alarm_journal_asset",
        "alarm_journal",
        ["asset"],
        postgresql_ops={"asset": "varchar_pattern_ops"},
    )
    op.create_table(
        "alarm_definitions",
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "name", name="pk_alarm_definitions"),
    )


def downgrade() -> None:
    op.drop_table("alarm_definitions")
    op.drop_index("ix_alarm_journal_asset", table_name="alarm_journal")
    op.drop_index("ix_alarm_journal_alarm_id_seq", table_name="alarm_journal")
    op.drop_index("ix_alarm_journal_source_us", table_name="alarm_journal")
    op.drop_table("alarm_journal")
    op.drop_table("alarm_records")
