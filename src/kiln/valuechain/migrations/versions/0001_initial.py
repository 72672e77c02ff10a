"""Initial value chain store: materials, bills of materials, lots, the lot transaction log,
consumption booked into orders, genealogy edges.

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

# Written out rather than imported from kiln.valuechain.schema: a revision is a frozen record
# of what the schema was, and must not change when the table definitions do.

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vc_materials",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_vc_materials"),
    )
    op.create_table(
        "vc_boms",
        sa.Column("parent", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("parent", name="pk_vc_boms"),
    )
    op.create_table(
        "vc_lots",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("material", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("supplier", sa.Text(), nullable=True),
        sa.Column("supplier_lot", sa.Text(), nullable=True),
        sa.Column("purchase_order", sa.Text(), nullable=True),
        sa.Column("order_id", sa.Text(), nullable=True),
        sa.Column("customer", sa.Text(), nullable=True),
        sa.Column("shipment_id", sa.Text(), nullable=True),
        sa.Column("sales_order", sa.Text(), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vc_lots"),
    )
    op.create_index("ix_vc_lots_material_state", "vc_lots", ["material", "state"])
    op.create_table(
        "vc_lot_transactions",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_vc_lot_transactions"),
        sa.UniqueConstraint("id", name="uq_vc_lot_transactions_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vc_order_consumption",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "lot_id", name="pk_vc_order_consumption"),
    )
    op.create_table(
        "vc_genealogy_edges",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Text(), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=True),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vc_genealogy_edges"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_vc_genealogy_edges_source", "vc_genealogy_edges", ["source"])
    op.create_index("ix_vc_genealogy_edges_target", "vc_genealogy_edges", ["target"])


def downgrade() -> None:
    op.drop_index("ix_vc_genealogy_edges_target", table_name="vc_genealogy_edges")
    op.drop_index("ix_vc_genealogy_edges_source", table_name="vc_genealogy_edges")
    op.drop_table("vc_genealogy_edges")
    op.drop_table("vc_order_consumption")
    op.drop_table("vc_lot_transactions")
    op.drop_index("ix_vc_lots_material_state", table_name="vc_lots")
    op.drop_table("vc_lots")
    op.drop_table("vc_boms")
    op.drop_table("vc_materials")
