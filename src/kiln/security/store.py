"""The relational store of identities: synchronous SQLAlchemy Core over SQLite or PostgreSQL.

It stores and checks shapes; who may do what is decided by the service
(`kiln.security.service.Identity`), which calls these methods in a worker thread. Operations
that must be atomic across processes sharing one PostgreSQL database are single conditional
statements: rotating a refresh token (`UPDATE ... WHERE used_at IS NULL`) and accepting a TOTP
step (`UPDATE ... WHERE totp_last_step < :step`), so two racing requests cannot both succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from kiln.db.engines import FOREIGN_KEYS, WAL, create_db_engine
from kiln.security import migrations
from kiln.security.permissions import Permission, parse_permissions
from kiln.security.schema import (
    ApiKeyRow,
    DeviceCredentialRow,
    RefreshTokenRow,
    RoleAssignmentRow,
    RoleRow,
    ShareRow,
    TenantRootRow,
    TenantRow,
    UserRow,
)
from kiln.security.tokens import hashes_match

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

_TENANTS = cast(Table, TenantRow.__table__)
_ROOTS = cast(Table, TenantRootRow.__table__)
_USERS = cast(Table, UserRow.__table__)
_ROLES = cast(Table, RoleRow.__table__)
_ASSIGNMENTS = cast(Table, RoleAssignmentRow.__table__)
_KEYS = cast(Table, ApiKeyRow.__table__)
_DEVICES = cast(Table, DeviceCredentialRow.__table__)
_REFRESH = cast(Table, RefreshTokenRow.__table__)
_SHARES = cast(Table, ShareRow.__table__)


class TenantKind(StrEnum):
    OWNER = "owner"  # runs plants: owns namespace roots
    PARTNER = "partner"  # a supplier or customer: sees only records shared with it


class Conflict(ValueError):
    """A record with this name already exists (a unique constraint refused the write)."""


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantInfo:
    name: str
    kind: TenantKind
    roots: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    """A role held over the whole tenant (`scope` None) or a namespace subtree."""

    role: str
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str
    tenant: str
    disabled: bool
    totp_enabled: bool
    roles: tuple[RoleAssignment, ...]
    created_at: datetime
    last_login_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RoleInfo:
    tenant: str | None  # None for a built-in role, which every tenant has
    name: str
    permissions: frozenset[Permission]


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as it may be shown: never the token, nor its hash. `id` is the public part
    of the token (`kiln_key_<id>_...`), by which a key is named when revoking it."""

    id: str
    name: str
    owner: str
    owner_id: int
    tenant: str
    permissions: frozenset[Permission]
    scope: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device credential as it may be shown; `id` is the public part of its token."""

    id: str
    name: str
    tenant: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ShareInfo:
    owner: str
    partner: str
    kind: str
    resource_id: str
    permission: Permission


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live login session: a refresh token family neither revoked nor expired."""

    family_id: str
    user_id: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Hashed(Generic[_T]):
    """A record with the stored hash of its token, for the service's credential caches."""

    info: _T
    token_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """What a login checks. Read per login, never cached."""

    user: UserInfo
    password_hash: str = field(repr=False)
    totp_secret: bytes | None = field(repr=False)
    totp_last_step: int | None


@dataclass(slots=True)
class Snapshot:
    """Everything the service caches: all tenants, users and roles; live credentials only."""

    tenants: list[TenantInfo]
    users: list[UserInfo]
    roles: list[RoleInfo]
    api_keys: list[Hashed[ApiKeyInfo]]
    devices: list[Hashed[DeviceInfo]]
    shares: list[ShareInfo]
    sessions: list[SessionInfo]


class Rotation(StrEnum):
    """The outcome of presenting a refresh token."""

    ROTATED = "rotated"
    UNKNOWN = "unknown"  # no such token, or the hash does not match
    EXPIRED = "expired"
    REVOKED = "revoked"  # its family was ended by a logout, a password change or a reuse
    REUSED = "reused"  # already rotated once: presumed stolen; the family is now revoked


@dataclass(frozen=True, slots=True)
class RotationResult:
    outcome: Rotation
    user_id: int | None = None
    family_id: str | None = None
    expires_at: datetime | None = None


# -- the store ------------------------------------------------------------------------------


class SecurityStore:
    """Tenants, users, roles and credentials in a relational database (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Credentials and assignments reference their user, tenant and role; API threads
        # authenticate while a write commits.
        self.engine: Engine = create_db_engine(url, sqlite_pragmas=(FOREIGN_KEYS, WAL))

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision (a no-op when already there)."""
        with self.engine.begin() as conn:
            migrations.upgrade(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- reading --------------------------------------------------------------------------

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(_USERS.c.id).limit(1)).all())

    def load(self, now: datetime) -> Snapshot:
        """The cached state; credentials revoked or expired at `now` are left out."""
        with self.engine.connect() as conn:
            names = _tenant_names(conn)
            tenants = _load_tenants(conn, names)
            users = _load_users(conn, names)
            roles = [
                RoleInfo(names[row.tenant_id], row.name, parse_permissions(row.permissions))
                for row in conn.execute(select(_ROLES))
            ]
            usernames = {u.id: u.username for u in users}
            keys = [
                Hashed(_key_info(row, names, usernames), row.token_hash)
                for row in conn.execute(
                    select(_KEYS).where(_KEYS.c.revoked_at.is_(None), _KEYS.c.expires_at > now)
                )
            ]
            devices = [
                Hashed(_device_info(row, names), row.token_hash)
                for row in conn.execute(select(_DEVICES).where(_DEVICES.c.revoked_at.is_(None)))
            ]
            shares = [
                ShareInfo(
                    names[row.owner_tenant_id],
                    names[row.partner_tenant_id],
                    row.resource_kind,
                    row.resource_id,
                    Permission(row.permission),
                )
                for row in conn.execute(select(_SHARES))
            ]
            r = _REFRESH.c
            sessions = [
                SessionInfo(row.family_id, row.user_id, row.expires_at)
                for row in conn.execute(
                    select(r.family_id, r.user_id, r.expires_at)
                    .where(r.revoked_at.is_(None), r.used_at.is_(None), r.expires_at > now)
                    .distinct()
                )
            ]
        return Snapshot(tenants, users, roles, keys, devices, shares, sessions)

    def user_credentials(self, username: str) -> UserCredentials | None:
        """The user named `username` (any case) with its password hash and TOTP state."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_USERS).where(_USERS.c.username_key == username_key(username))
            ).one_or_none()
            if row is None:
                return None
            names = _tenant_names(conn)
            return UserCredentials(
                user=_user_info(row, names, _assignments(conn, [row.id]).get(row.id, ())),
                password_hash=row.password_hash,
                totp_secret=row.totp_secret,
                totp_last_step=row.totp_last_step,
            )

    def list_users(self, tenant: str) -> list[UserInfo]:
        with self.engine.connect() as conn:
            names = _tenant_names(conn)
            return [u for u in _load_users(conn, names) if u.tenant == tenant]

    def list_api_keys(self, tenant: str, owner_id: int | None = None) -> list[ApiKeyInfo]:
        """Every key of `tenant` (of one owner, if given), revoked and expired ones included."""
        with self.engine.connect() as conn:
            names = _tenant_names(conn)
            query = select(_KEYS).where(_KEYS.c.tenant_id == _tenant_id(conn, tenant))
            if owner_id is not None:
                query = query.where(_KEYS.c.owner_id == owner_id)
            usernames = _usernames(conn)
            keys = [_key_info(row, names, usernames) for row in conn.execute(query)]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def list_devices(self, tenant: str) -> list[DeviceInfo]:
        with self.engine.connect() as conn:
            names = _tenant_names(conn)
            query = select(_DEVICES).where(_DEVICES.c.tenant_id == _tenant_id(conn, tenant))
            devices = [_device_info(row, names) for row in conn.execute(query)]
        return sorted(devices, key=lambda d: d.name)

    # -- tenants, users, roles ------------------------------------------------------------

    def create_tenant(
        self, name: str, kind: TenantKind, roots: Sequence[str], *, now: datetime
    ) -> None:
        with _unique(f"tenant {name!r} or one of its roots"), self.engine.begin() as conn:
            tenant_id = _new_id(
                conn.execute(insert(_TENANTS).values(name=name, kind=kind.value, created_at=now))
            )
            if roots:
                conn.execute(insert(_ROOTS), [{"tenant_id": tenant_id, "root": r} for r in roots])

    def create_user(
        self,
        tenant: str,
        username: str,
        password_hash: str,
        roles: Sequence[RoleAssignment],
        *,
        now: datetime,
    ) -> int:
        """Insert a user with its role assignments (all in `tenant`); returns its id."""
        with _unique(f"user {username!r}"), self.engine.begin() as conn:
            tenant_id = _tenant_id(conn, tenant)
            user_id = _new_id(
                conn.execute(
                    insert(_USERS).values(
                        tenant_id=tenant_id,
                        username=username,
                        username_key=username_key(username),
                        password_hash=password_hash,
                        password_changed_at=now,
                        totp_enabled=False,
                        disabled=False,
                        created_at=now,
                    )
                )
            )
            if roles:
                conn.execute(
                    insert(_ASSIGNMENTS),
                    [
                        {
                            "user_id": user_id,
                            "tenant_id": tenant_id,
                            "role": a.role,
                            "scope": a.scope,
                        }
                        for a in dict.fromkeys(roles)
                    ],
                )
        return user_id

    def set_password(self, user_id: int, password_hash: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(_USERS)
                .where(_USERS.c.id == user_id)
                .values(password_hash=password_hash, password_changed_at=now)
            )

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(_USERS).where(_USERS.c.id == user_id).values(disabled=disabled))

    def set_totp(self, user_id: int, secret: bytes | None, *, enabled: bool) -> None:
        """Store a new (pending, or confirmed if `enabled`) TOTP secret, or clear it."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_USERS)
                .where(_USERS.c.id == user_id)
                .values(totp_secret=secret, totp_enabled=enabled, totp_last_step=None)
            )

    def use_totp_step(self, user_id: int, step: int, *, enable: bool = False) -> bool:
        """Record `step` as used; False if it (or a later one) already was, i.e. a replay.

        One conditional UPDATE, so two logins racing with the same code cannot both pass.
        """
        c = _USERS.c
        values: dict[str, Any] = {"totp_last_step": step}
        if enable:
            values["totp_enabled"] = True
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_USERS)
                .where(
                    c.id == user_id,
                    c.totp_secret.is_not(None),
                    or_(c.totp_last_step.is_(None), c.totp_last_step < step),
                )
                .values(**values)
            )
        return result.rowcount == 1

    def record_login(self, user_id: int, *, now: datetime, password_hash: str | None) -> None:
        """Note a successful login; store `password_hash` if the old one needed rehashing."""
        values: dict[str, Any] = {"last_login_at": now}
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self.engine.begin() as conn:
            conn.execute(update(_USERS).where(_USERS.c.id == user_id).values(**values))

    def add_assignment(self, user_id: int, tenant: str, assignment: RoleAssignment) -> bool:
        """False if the user already holds this role at this scope."""
        a = _ASSIGNMENTS.c
        with self.engine.begin() as conn:
            tenant_id = _tenant_id(conn, tenant)
            # Checked rather than left to the unique constraint: NULL scopes never collide there.
            exists = conn.execute(
                select(a.id).where(
                    a.user_id == user_id,
                    a.tenant_id == tenant_id,
                    a.role == assignment.role,
                    _is(a.scope, assignment.scope),
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(_ASSIGNMENTS).values(
                    user_id=user_id,
                    tenant_id=tenant_id,
                    role=assignment.role,
                    scope=assignment.scope,
                )
            )
        return True

    def remove_assignment(self, user_id: int, tenant: str, assignment: RoleAssignment) -> bool:
        """False if the user did not hold this role at this scope."""
        a = _ASSIGNMENTS.c
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(_ASSIGNMENTS).where(
                    a.user_id == user_id,
                    a.tenant_id == _tenant_id(conn, tenant),
                    a.role == assignment.role,
                    _is(a.scope, assignment.scope),
                )
            )
        return result.rowcount > 0

    def create_role(
        self, tenant: str, name: str, permissions: frozenset[Permission], *, now: datetime
    ) -> None:
        with _unique(f"role {name!r} in tenant {tenant!r}"), self.engine.begin() as conn:
            conn.execute(
                insert(_ROLES).values(
                    tenant_id=_tenant_id(conn, tenant),
                    name=name,
                    permissions=sorted(p.value for p in permissions),
                    created_at=now,
                )
            )

    def add_share(self, share: ShareInfo, *, now: datetime) -> bool:
        """False if this exact share exists already."""
        s = _SHARES.c
        with self.engine.begin() as conn:
            partner_id = _tenant_id(conn, share.partner)
            exists = conn.execute(
                select(s.id).where(
                    s.partner_tenant_id == partner_id,
                    s.resource_kind == share.kind,
                    s.resource_id == share.resource_id,
                    s.permission == share.permission.value,
                )
            ).first()
            if exists is not None:
                return False
            conn.execute(
                insert(_SHARES).values(
                    owner_tenant_id=_tenant_id(conn, share.owner),
                    partner_tenant_id=partner_id,
                    resource_kind=share.kind,
                    resource_id=share.resource_id,
                    permission=share.permission.value,
                    created_at=now,
                )
            )
        return True

    def remove_share(self, share: ShareInfo) -> bool:
        """False if there is no such share."""
        s = _SHARES.c
        with self.engine.begin() as conn:
            removed = conn.execute(
                delete(_SHARES).where(
                    s.owner_tenant_id == _tenant_id(conn, share.owner),
                    s.partner_tenant_id == _tenant_id(conn, share.partner),
                    s.resource_kind == share.kind,
                    s.resource_id == share.resource_id,
                    s.permission == share.permission.value,
                )
            )
        return bool(removed.rowcount)

    # -- API keys and devices -------------------------------------------------------------

    def create_api_key(self, key: Hashed[ApiKeyInfo]) -> None:
        info = key.info
        with self.engine.begin() as conn:
            conn.execute(
                insert(_KEYS).values(
                    token_id=info.id,
                    token_hash=key.token_hash,
                    owner_id=info.owner_id,
                    tenant_id=_tenant_id(conn, info.tenant),
                    name=info.name,
                    permissions=sorted(p.value for p in info.permissions),
                    scope=info.scope,
                    created_at=info.created_at,
                    expires_at=info.expires_at,
                )
            )

    def revoke_api_key(self, key_id: str, *, now: datetime) -> bool:
        """False if no unrevoked key has this id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_KEYS)
                .where(_KEYS.c.token_id == key_id, _KEYS.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount == 1

    def touch_api_keys(self, used: dict[str, datetime]) -> None:
        """Store when keys were last used (batched: the service writes at most once a minute)."""
        if not used:
            return
        with self.engine.begin() as conn:
            for key_id, at in used.items():
                conn.execute(
                    update(_KEYS).where(_KEYS.c.token_id == key_id).values(last_used_at=at)
                )

    def put_device(self, device: Hashed[DeviceInfo]) -> None:
        """Create a device credential, or re-issue a revoked one of the same name."""
        info = device.info
        d = _DEVICES.c
        values = {
            "prefix": info.prefix,
            "token_id": info.id,
            "token_hash": device.token_hash,
            "created_at": info.created_at,
            "revoked_at": None,
        }
        with _unique(f"device {info.name!r}"), self.engine.begin() as conn:
            tenant_id = _tenant_id(conn, info.tenant)
            result = conn.execute(
                update(_DEVICES)
                .where(d.tenant_id == tenant_id, d.name == info.name, d.revoked_at.is_not(None))
                .values(**values)
            )
            if result.rowcount == 0:
                conn.execute(insert(_DEVICES).values(tenant_id=tenant_id, name=info.name, **values))

    def revoke_device(self, tenant: str, name: str, *, now: datetime) -> bool:
        """False if the tenant has no unrevoked device of this name."""
        d = _DEVICES.c
        with self.engine.begin() as conn:
            result = conn.execute(
                update(_DEVICES)
                .where(
                    d.tenant_id == _tenant_id(conn, tenant),
                    d.name == name,
                    d.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return result.rowcount == 1

    # -- refresh tokens -------------------------------------------------------------------

    def add_refresh_token(
        self,
        token_id: str,
        token_hash: str,
        *,
        family_id: str,
        user_id: int,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(_REFRESH).values(
                    token_id=token_id,
                    token_hash=token_hash,
                    family_id=family_id,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def rotate_refresh_token(
        self,
        token_id: str,
        presented_hash: str,
        *,
        now: datetime,
        new_id: str,
        new_hash: str,
    ) -> RotationResult:
        """Mark the presented token used and store its successor in the same family.

        A token used before is presumed stolen (RFC 6819 section 5.2.2.3, refresh token
        rotation): its whole family is revoked, ending the thief's and the owner's session.
        """
        r = _REFRESH.c
        with self.engine.begin() as conn:
            row = conn.execute(select(_REFRESH).where(r.token_id == token_id)).one_or_none()
            if row is None or not hashes_match(row.token_hash, presented_hash):
                return RotationResult(Rotation.UNKNOWN)
            found = RotationResult(Rotation.ROTATED, row.user_id, row.family_id, row.expires_at)
            if row.revoked_at is not None:
                return _replace(found, Rotation.REVOKED)
            if row.expires_at <= now:
                return _replace(found, Rotation.EXPIRED)
            claimed = conn.execute(
                update(_REFRESH)
                .where(r.token_id == token_id, r.used_at.is_(None), r.revoked_at.is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:
                _revoke_families(conn, [row.family_id], now)
                return _replace(found, Rotation.REUSED)
            conn.execute(
                insert(_REFRESH).values(
                    token_id=new_id,
                    token_hash=new_hash,
                    family_id=row.family_id,
                    user_id=row.user_id,
                    created_at=now,
                    expires_at=row.expires_at,
                )
            )
        return found

    def revoke_family_of(self, token_id: str, presented_hash: str, *, now: datetime) -> str | None:
        """Revoke the session the refresh token belongs to; its family id, or None if unknown."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_REFRESH.c.family_id, _REFRESH.c.token_hash).where(
                    _REFRESH.c.token_id == token_id
                )
            ).one_or_none()
            if row is None or not hashes_match(row.token_hash, presented_hash):
                return None
            _revoke_families(conn, [row.family_id], now)
            return str(row.family_id)

    def revoke_families(self, family_ids: Sequence[str], *, now: datetime) -> None:
        with self.engine.begin() as conn:
            _revoke_families(conn, family_ids, now)

    def revoke_user_sessions(
        self, user_id: int, *, now: datetime, keep: str | None = None
    ) -> list[str]:
        """Revoke every session of a user except `keep`; the families revoked."""
        r = _REFRESH.c
        with self.engine.begin() as conn:
            query = select(r.family_id).where(r.user_id == user_id, r.revoked_at.is_(None))
            if keep is not None:
                query = query.where(r.family_id != keep)
            families = sorted(set(conn.execute(query).scalars()))
            _revoke_families(conn, families, now)
        return families

    def purge_refresh_tokens(self, now: datetime) -> int:
        """Delete tokens of sessions that have ended; the number deleted.

        Used tokens are kept until their family expires: they are what reveals a reuse.
        """
        with self.engine.begin() as conn:
            result = conn.execute(delete(_REFRESH).where(_REFRESH.c.expires_at <= now))
        return result.rowcount


# -- helpers --------------------------------------------------------------------------------


def username_key(username: str) -> str:
    """The case-insensitive identity of a user name."""
    return username.strip().casefold()


@contextmanager
def _unique(what: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as err:
        raise Conflict(f"{what} already exists") from err


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for the inserted row")
    return int(key[0])


def _is(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def _replace(result: RotationResult, outcome: Rotation) -> RotationResult:
    return RotationResult(outcome, result.user_id, result.family_id, result.expires_at)


def _revoke_families(conn: Connection, family_ids: Sequence[str], now: datetime) -> None:
    if not family_ids:
        return
    r = _REFRESH.c
    conn.execute(
        update(_REFRESH)
        .where(and_(r.family_id.in_(list(family_ids)), r.revoked_at.is_(None)))
        .values(revoked_at=now)
    )


def _tenant_names(conn: Connection) -> dict[int, str]:
    return {row.id: row.name for row in conn.execute(select(_TENANTS.c.id, _TENANTS.c.name))}


def _usernames(conn: Connection) -> dict[int, str]:
    return {row.id: row.username for row in conn.execute(select(_USERS.c.id, _USERS.c.username))}


def _tenant_id(conn: Connection, name: str) -> int:
    tenant_id = conn.execute(select(_TENANTS.c.id).where(_TENANTS.c.name == name)).scalar()
    if tenant_id is None:
        raise LookupError(f"no tenant named {name!r}")
    return int(tenant_id)


def _load_tenants(conn: Connection, names: dict[int, str]) -> list[TenantInfo]:
    roots: dict[int, list[str]] = {}
    for tenant_id, root in conn.execute(select(_ROOTS.c.tenant_id, _ROOTS.c.root)):
        roots.setdefault(tenant_id, []).append(root)
    tenants = [
        TenantInfo(
            row.name, TenantKind(row.kind), tuple(sorted(roots.get(row.id, []))), row.created_at
        )
        for row in conn.execute(select(_TENANTS))
    ]
    return sorted(tenants, key=lambda t: t.name)


def _assignments(
    conn: Connection, user_ids: Sequence[int] | None = None
) -> dict[int, tuple[RoleAssignment, ...]]:
    a = _ASSIGNMENTS.c
    query = select(a.user_id, a.role, a.scope)
    if user_ids is not None:
        query = query.where(a.user_id.in_(list(user_ids)))
    found: dict[int, list[RoleAssignment]] = {}
    for user_id, role, scope in conn.execute(query):
        found.setdefault(user_id, []).append(RoleAssignment(role, scope))
    return {
        user_id: tuple(sorted(roles, key=lambda r: (r.role, r.scope or "")))
        for user_id, roles in found.items()
    }


def _load_users(conn: Connection, names: dict[int, str]) -> list[UserInfo]:
    assignments = _assignments(conn)
    users = [
        _user_info(row, names, assignments.get(row.id, ())) for row in conn.execute(select(_USERS))
    ]
    return sorted(users, key=lambda u: username_key(u.username))


def _user_info(row: Any, names: dict[int, str], roles: tuple[RoleAssignment, ...]) -> UserInfo:
    return UserInfo(
        id=row.id,
        username=row.username,
        tenant=names[row.tenant_id],
        disabled=bool(row.disabled),
        totp_enabled=bool(row.totp_enabled),
        roles=roles,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _key_info(row: Any, names: dict[int, str], usernames: dict[int, str]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.token_id,
        name=row.name,
        owner=usernames.get(row.owner_id, "?"),
        owner_id=row.owner_id,
        tenant=names[row.tenant_id],
        permissions=parse_permissions(row.permissions),
        scope=row.scope,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _device_info(row: Any, names: dict[int, str]) -> DeviceInfo:
    return DeviceInfo(
        id=row.token_id,
        name=row.name,
        tenant=names[row.tenant_id],
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
