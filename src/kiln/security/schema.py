"""Relational tables of identities: tenants, users, roles, API keys, devices, sessions, shares.

Portable column types only, so the same tables live in SQLite (embedded) and PostgreSQL. The
tables have their own metadata and their own Alembic history (`kiln.security.migrations`,
version table `alembic_version_security`), so they can share one database with the asset model
without either migration touching the other's tables. A test compares the migrated schema
with these models so that they cannot drift apart.

Secrets are never stored in the clear: passwords as argon2id hashes, tokens (refresh, API key,
device) as SHA-256 hashes of the token, TOTP secrets encrypted with a key derived from the
install secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kiln.core.values import MAX_PATH_LENGTH
from kiln.db.types import UtcDateTime

# As in kiln.model.schema, but unique constraints over several columns name all of them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 64  # tenant, user, role, key and device names
KIND_LENGTH = 16  # tenant kinds, share resource kinds
PERMISSION_LENGTH = 32
TOKEN_ID_LENGTH = 64  # the public, lookup part of an opaque token
TOKEN_HASH_LENGTH = 128  # SHA-256 of the whole token, encoded

# Every table of this package: the Alembic environment compares and migrates only these, so
# that tables of other packages in a shared database are left alone.
TABLES = (
    "tenants",
    "tenant_roots",
    "users",
    "roles",
    "role_assignments",
    "api_keys",
    "device_credentials",
    "refresh_tokens",
    "shares",
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _tenant_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


def _user_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class TenantRow(Base):
    """An organisation: an owner (runs plants) or a partner (sees only what is shared with it)."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(KIND_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TenantRootRow(Base):
    """A part of the namespace a tenant owns: a path prefix, or "*" for every path no other
    tenant's root covers. A root belongs to one tenant only."""

    __tablename__ = "tenant_roots"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    root: Mapped[str] = mapped_column(String(MAX_PATH_LENGTH), unique=True)


class UserRow(Base):
    """A person. `username_key` is the case-folded name that makes names unique regardless of
    case; `username` keeps the spelling the person was created with."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    username: Mapped[str] = mapped_column(String(NAME_LENGTH))
    username_key: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Encrypted; set by enable_totp, in force only once a code confirmed it (totp_enabled).
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The time step of the last accepted code: a code is good once (RFC 6238 section 5.2).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RoleRow(Base):
    """A custom role of one tenant: a name for a set of permissions. Built-in roles are not
    stored; they come from `kiln.security.permissions.BUILTIN_ROLES`."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RoleAssignmentRow(Base):
    """A role given to a user in a tenant, over the whole tenant (scope NULL) or a subtree."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id", "role", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = _user_fk()
    tenant_id: Mapped[int] = _tenant_fk()
    role: Mapped[str] = mapped_column(String(NAME_LENGTH))
    scope: Mapped[str | None] = mapped_column(String(MAX_PATH_LENGTH))


class ApiKeyRow(Base):
    """A long-lived credential for a program acting for its owner, with at most the owner's
    permissions, always expiring."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(TOKEN_ID_LENGTH), unique=True)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH))
    owner_id: Mapped[int] = _user_fk()
    tenant_id: Mapped[int] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    scope: Mapped[str | None] = mapped_column(String(MAX_PATH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DeviceCredentialRow(Base):
    """What lets a device (a gateway, a PLC) publish values below its namespace prefix."""

    __tablename__ = "device_credentials"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    prefix: Mapped[str] = mapped_column(String(MAX_PATH_LENGTH))
    token_id: Mapped[str] = mapped_column(String(TOKEN_ID_LENGTH), unique=True)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RefreshTokenRow(Base):
    """One refresh token of a login session. Every use replaces it by a new token of the same
    family (`used_at` set); presenting a used token again revokes the whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(TOKEN_ID_LENGTH), unique=True)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH))
    family_id: Mapped[str] = mapped_column(String(TOKEN_ID_LENGTH), index=True)
    user_id: Mapped[int] = _user_fk()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The session's end: every token of a family expires with the login that began it.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ShareRow(Base):
    """A record of an owner tenant shared with a partner tenant. Kind "namespace" shares a
    subtree (read-only); later kinds (orders) reuse the table."""

    __tablename__ = "shares"
    __table_args__ = (
        # Named by hand: the conventional name would pass PostgreSQL's 63-character limit.
        UniqueConstraint(
            "partner_tenant_id",
            "resource_kind",
            "resource_id",
            "permission",
            name="uq_shares_partner_resource",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_tenant_id: Mapped[int] = _tenant_fk()
    partner_tenant_id: Mapped[int] = _tenant_fk()
    resource_kind: Mapped[str] = mapped_column(String(KIND_LENGTH))
    resource_id: Mapped[str] = mapped_column(String(MAX_PATH_LENGTH))
    permission: Mapped[str] = mapped_column(String(PERMISSION_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
