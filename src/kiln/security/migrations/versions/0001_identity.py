"""Identities: tenants and their namespace roots, users, custom roles, role assignments, API
keys, device credentials, refresh tokens, shares.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from kiln.security.schema: a revision is a frozen record of
# what the schema was, and must not change when the models do.

_PATH = 512


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant_fk(table: str, column: str = "tenant_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["tenants.id"], name=f"fk_{table}_{column}_tenants", ondelete="CASCADE"
    )


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "tenant_roots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=_PATH), nullable=False),
        _tenant_fk("tenant_roots"),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_roots"),
        sa.UniqueConstraint("root", name="uq_tenant_roots_root"),
    )
    op.create_index("ix_tenant_roots_tenant_id", "tenant_roots", ["tenant_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _at("password_changed_at"),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("last_login_at", nullable=True),
        _tenant_fk("users"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username_key", name="uq_users_username_key"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        _at("created_at"),
        _tenant_fk("roles"),
        sa.PrimaryKeyConstraint("id", name="pk_roles"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_roles_tenant_id_name"),
    )
    op.create_index("ix_roles_tenant_id", "roles", ["tenant_id"])
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=_PATH), nullable=True),
        _user_fk("role_assignments", "user_id"),
        _tenant_fk("role_assignments"),
        sa.PrimaryKeyConstraint("id", name="pk_role_assignments"),
        sa.UniqueConstraint(
            "user_id",
            "tenant_id",
            "role",
            "scope",
            name="uq_role_assignments_user_id_tenant_id_role_scope",
        ),
    )
    op.create_index("ix_role_assignments_user_id", "role_assignments", ["user_id"])
    op.create_index("ix_role_assignments_tenant_id", "role_assignments", ["tenant_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=_PATH), nullable=True),
        _at("created_at"),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
        _at("last_used_at", nullable=True),
        _user_fk("api_keys", "owner_id"),
        _tenant_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("token_id", name="uq_api_keys_token_id"),
    )
    op.create_index("ix_api_keys_owner_id", "api_keys", ["owner_id"])
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "device_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=_PATH), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        _tenant_fk("device_credentials"),
        sa.PrimaryKeyConstraint("id", name="pk_device_credentials"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_device_credentials_tenant_id_name"),
        sa.UniqueConstraint("token_id", name="uq_device_credentials_token_id"),
    )
    op.create_index("ix_device_credentials_tenant_id", "device_credentials", ["tenant_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("used_at", nullable=True),
        _at("revoked_at", nullable=True),
        _user_fk("refresh_tokens", "user_id"),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_id", name="uq_refresh_tokens_token_id"),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_tenant_id", sa.Integer(), nullable=False),
        sa.Column("partner_tenant_id", sa.Integer(), nullable=False),
        sa.Column("resource_kind", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.String(length=_PATH), nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        _at("created_at"),
        _tenant_fk("shares", "owner_tenant_id"),
        _tenant_fk("shares", "partner_tenant_id"),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
        sa.UniqueConstraint(
            "partner_tenant_id",
            "resource_kind",
            "resource_id",
            "permission",
            name="uq_shares_partner_resource",
        ),
    )
    op.create_index("ix_shares_owner_tenant_id", "shares", ["owner_tenant_id"])
    op.create_index("ix_shares_partner_tenant_id", "shares", ["partner_tenant_id"])


def downgrade() -> None:
    # Children first: every table below references tenants, several reference users.
    for table, columns in (
        ("shares", ("owner_tenant_id", "partner_tenant_id")),
        ("refresh_tokens", ("family_id", "user_id")),
        ("device_credentials", ("tenant_id",)),
        ("api_keys", ("owner_id", "tenant_id")),
        ("role_assignments", ("user_id", "tenant_id")),
        ("roles", ("tenant_id",)),
        ("users", ("tenant_id",)),
        ("tenant_roots", ("tenant_id",)),
    ):
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.drop_table(table)
    op.drop_table("tenants")
