"""Tags keep their specification limits (SPC capability is computed against them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode, as in 0002: the downgrade's DROP COLUMN needs the table copied on older SQLite.
    with op.batch_alter_table("tags") as batch:
        batch.add_column(sa.Column("spec", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("spec")
