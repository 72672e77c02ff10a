"""Initial production store: state and sample chunks, reasons and reason records, count
events, products,
work orders and their events, shift calendars, the engine's key-value state.

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

# Written out rather than imported from kiln.production.schema: a revision is a frozen record
# of what the schema was, and must not change when the table definitions do.

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prod_state_chunks",
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("day_us", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "day_us", name="pk_prod_state_chunks"),
    )
    op.create_table(
        "prod_sample_chunks",
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("signal", sa.String(length=64), nullable=False),
        sa.Column("hour_us", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("asset", "signal", "hour_us", name="pk_prod_sample_chunks"),
    )
    op.create_table(
        "prod_reasons",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prod_reasons"),
        sa.UniqueConstraint("path", name="uq_prod_reasons_path"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "prod_reason_records",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prod_reason_records"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_prod_reason_records_asset_start_us",
        "prod_reason_records",
        ["asset", "start_us"],
        postgresql_ops={"asset": "varchar_pattern_ops"},
    )
    op.create_table(
        "prod_count_events",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("asset", sa.String(length=512), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("scrap", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("entered_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prod_count_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_prod_count_events_asset_time_us", "prod_count_events", ["asset", "time_us"])
    op.create_table(
        "prod_products",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("ideal_cycle_s", sa.Float(), nullable=True),
        sa.Column("per_asset", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_prod_products"),
    )
    op.create_table(
        "prod_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=512), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prod_orders"),
    )
    op.create_index(
        "ix_prod_orders_line",
        "prod_orders",
        ["line"],
        postgresql_ops={"line": "varchar_pattern_ops"},
    )
    op.create_index("ix_prod_orders_state", "prod_orders", ["state"])
    op.create_table(
        "prod_order_events",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("old_state", sa.String(length=32), nullable=False),
        sa.Column("new_state", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_prod_order_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_prod_order_events_order_id_seq", "prod_order_events", ["order_id", "seq"])
    op.create_table(
        "prod_calendars",
        sa.Column("site", sa.String(length=512), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("site", name="pk_prod_calendars"),
    )
    op.create_table(
        "prod_kv",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_prod_kv"),
    )


def downgrade() -> None:
    op.drop_table("prod_kv")
    op.drop_table("prod_calendars")
    op.drop_index("ix_prod_order_events_order_id_seq", table_name="prod_order_events")
    op.drop_table("prod_order_events")
    op.drop_index("ix_prod_orders_state", table_name="prod_orders")
    op.drop_index("ix_prod_orders_line", table_name="prod_orders")
    op.drop_table("prod_orders")
    op.drop_table("prod_products")
    op.drop_index("ix_prod_count_events_asset_time_us", table_name="prod_count_events")
    op.drop_table("prod_count_events")
    op.drop_index("ix_prod_reason_records_asset_start_us", table_name="prod_reason_records")
    op.drop_table("prod_reason_records")
    op.drop_table("prod_reasons")
    op.drop_table("prod_sample_chunks")
    op.drop_table("prod_state_chunks")
