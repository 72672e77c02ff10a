"""Tags remember the connector that serves them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
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
    # Batch mode: SQLite cannot ALTER most things in place (adding a nullable column it can,
    # but the downgrade's DROP COLUMN needs the table copied on older SQLite).
    with op.batch_alter_table("tags") as batch:
        batch.add_column(sa.Column("source", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("source")
