"""The identity service's in-memory cache: one immutable snapshot of the database.

Authentication runs on every request and every device connection, so it is answered from
here. The cache is rebuilt whole after every write and swapped in one assignment: a reader
never sees half of a change.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.security.grants import user_grants
from kiln.security.permissions import Grant, Permission
from kiln.security.principal import TenantMap
from kiln.security.store import (
    ApiKeyInfo,
    DeviceInfo,
    Hashed,
    ShareInfo,
    Snapshot,
    TenantInfo,
    UserInfo,
    username_key,
)


@dataclass(frozen=True, slots=True)
class IdentityCache:
    """Tenants, users, custom roles, live credentials and each user's grants, indexed."""

    tenants: dict[str, TenantInfo]
    namespace: TenantMap
    users: dict[int, UserInfo]
    user_ids: dict[str, int]  # by username_key
    roles: dict[tuple[str, str], frozenset[Permission]]  # custom roles by (tenant, name)
    keys: dict[str, Hashed[ApiKeyInfo]]  # live keys by id
    devices: dict[str, Hashed[DeviceInfo]]  # live credentials by id
    grants: dict[int, tuple[Grant, ...]]  # by user id
    shares: tuple[ShareInfo, ...]  # every share, owner's and partner's

    @classmethod
    def build(cls, snapshot: Snapshot) -> IdentityCache:
        """Index a snapshot loaded from the store."""
        tenants = {t.name: t for t in snapshot.tenants}
        roles = {(r.tenant, r.name): r.permissions for r in snapshot.roles if r.tenant}
        shares: dict[str, list[ShareInfo]] = {}
        for share in snapshot.shares:
            shares.setdefault(share.partner, []).append(share)
        grants = {u.id: user_grants(u, roles, shares.get(u.tenant, ())) for u in snapshot.users}
        return cls(
            tenants=tenants,
            namespace=TenantMap.build((r, t.name) for t in snapshot.tenants for r in t.roots),
            users={u.id: u for u in snapshot.users},
            user_ids={username_key(u.username): u.id for u in snapshot.users},
            roles=roles,
            keys={k.info.id: k for k in snapshot.api_keys},
            devices={d.info.id: d for d in snapshot.devices},
            grants=grants,
            shares=tuple(snapshot.shares),
        )

    @classmethod
    def empty(cls) -> IdentityCache:
        """The cache before the database is loaded."""
        return cls.build(Snapshot([], [], [], [], [], [], []))

    def device_named(self, tenant: str, name: str) -> Hashed[DeviceInfo] | None:
        """The live credential of device `name` in `tenant`, if there is one."""
        for entry in self.devices.values():
            if entry.info.tenant == tenant and entry.info.name == name:
                return entry
        return None
