"""Tenants and sharing: who owns which part of the namespace, and what is shared with whom.

OWASP API Security Top 10 API1 (object level: tenants see only their own records; a partner
sees only what is shared with it), API5 (function level: only tenant-wide administrators of
the default tenant create tenants); IEC 62443-4-2 CR 2.1 (authorization enforcement).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from kiln.core.values import path_has_prefix
from kiln.security.grants import manages
from kiln.security.guards import (
    ANY_SCOPE,
    TENANT_NAME,
    check_new_username,
    namespace_root,
    require_manage,
    scope_in,
)
from kiln.security.permissions import Permission, parse_permissions
from kiln.security.principal import ANY_ROOT, Principal
from kiln.security.runtime import LOGGER, IdentityRuntime, running
from kiln.security.store import Conflict, RoleAssignment, ShareInfo, TenantInfo, TenantKind

# The tenant created at first start. Its tenant-wide administrators run the installation:
# they alone create tenants.
DEFAULT_TENANT = "default"

SHARE_KINDS = frozenset({"namespace", "valuechain"})
# What of the value chain an enterprise may share with a partner, beyond the partner's own
# orders and lots (which it always sees): `genealogy`, the traces of the lots it received or
# supplied; `forecasts`, the planned purchase orders naming it as supplier; `quality`, the
# holds and results of its lots.
VALUECHAIN_SHARES = frozenset({"genealogy", "forecasts", "quality"})


class Tenancy:
    """Creates tenants and shares; answers which tenant owns a path.

    The public methods are `Identity`'s, which documents them; `Identity` delegates to them.
    """

    def __init__(self, rt: IdentityRuntime) -> None:
        self._rt = rt

    def tenants(self) -> list[TenantInfo]:
        """Every tenant, by name."""
        return sorted(self._rt.cache.tenants.values(), key=lambda t: t.name)

    def tenant_of(self, path: str) -> str | None:
        """The tenant that owns `path`, or None."""
        return self._rt.cache.namespace.tenant_of(path)

    async def create_tenant(
        self,
        actor: Principal,
        name: str,
        kind: TenantKind | str,
        roots: Sequence[str] = (),
        *,
        admin_username: str | None = None,
        admin_password: str | None = None,
    ) -> TenantInfo:
        """Create a tenant with roots free of other tenants', and perhaps its administrator."""
        rt = self._rt
        require_manage(actor, DEFAULT_TENANT, None)
        kind = TenantKind(kind)
        if not TENANT_NAME.fullmatch(name):
            raise ValueError(
                f"tenant name {name!r} is invalid: 1-64 lowercase letters, digits, '_' and '-'"
            )
        if name in rt.cache.tenants:
            raise Conflict(f"tenant {name!r} already exists")
        normalized = tuple(dict.fromkeys(namespace_root(r) for r in roots))
        if kind is TenantKind.PARTNER and normalized:
            raise ValueError(
                "a partner tenant owns no namespace; share subtrees with it instead (share())"
            )
        self._check_roots_free(normalized)
        if (admin_username is None) != (admin_password is None):
            raise ValueError("give both admin_username and admin_password, or neither")
        admin_hash = None
        if admin_username is not None and admin_password is not None:
            check_new_username(rt.cache, admin_username)
            admin_hash = await rt.new_password_hash(admin_username, admin_password)
        store = running(rt.store)
        now = rt.now()
        async with rt.write_lock:
            await asyncio.to_thread(store.create_tenant, name, kind, normalized, now=now)
            if admin_username is not None and admin_hash is not None:
                await asyncio.to_thread(
                    store.create_user,
                    name,
                    admin_username,
                    admin_hash,
                    [RoleAssignment("admin")],
                    now=now,
                )
            await rt.reload()
        LOGGER.info("Tenant %s (%s) created by %s", name, kind.value, actor.name)
        return rt.cache.tenants[name]

    async def share(
        self,
        actor: Principal,
        partner: str,
        kind: str,
        resource_id: str,
        permission: Permission | str = Permission.VALUES_READ,
    ) -> ShareInfo:
        """Share a subtree of the actor's tenant with a partner tenant, read-only."""
        if kind not in SHARE_KINDS:
            raise ValueError(
                f"unknown share kind {kind!r}; known: {', '.join(sorted(SHARE_KINDS))}"
            )
        (permission,) = parse_permissions([permission])
        rt = self._rt
        cache = rt.cache
        if kind == "valuechain":
            if resource_id not in VALUECHAIN_SHARES:
                raise ValueError(
                    f"unknown value chain share {resource_id!r}; known: "
                    + ", ".join(sorted(VALUECHAIN_SHARES))
                )
            permission = Permission.VALUECHAIN_READ
            require_manage(actor, actor.tenant, ANY_SCOPE)
        else:
            if permission is not Permission.VALUES_READ:
                raise ValueError("namespace subtrees are shared read-only: permission values:read")
            resource_id = scope_in(cache, actor.tenant, resource_id)
            require_manage(actor, actor.tenant, resource_id)
        target = cache.tenants.get(partner)
        if target is None or target.kind is not TenantKind.PARTNER or partner == actor.tenant:
            raise LookupError(f"no partner tenant named {partner!r}")
        share = ShareInfo(actor.tenant, partner, kind, resource_id, permission)
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.add_share, share, now=rt.now())
            await rt.reload()
        LOGGER.info("%s shared %s %s with %s", actor.name, kind, resource_id, partner)
        return share

    def shares(self, actor: Principal) -> list[ShareInfo]:
        """What the actor's tenant shares (inside the actor's users:manage scope) and what is
        shared with it, sorted."""
        require_manage(actor, actor.tenant, ANY_SCOPE)
        out = [
            s
            for s in self._rt.cache.shares
            if s.partner == actor.tenant
            or (s.owner == actor.tenant and manages(actor.grants, actor.tenant, s.resource_id))
        ]
        return sorted(out, key=lambda s: (s.owner, s.partner, s.kind, s.resource_id))

    def shared_with(self, partner: str, kind: str) -> dict[str, set[str]]:
        """What each owner tenant shares with `partner` of `kind`: owner -> resource ids."""
        out: dict[str, set[str]] = {}
        for s in self._rt.cache.shares:
            if s.partner == partner and s.kind == kind:
                out.setdefault(s.owner, set()).add(s.resource_id)
        return out

    async def unshare(self, actor: Principal, partner: str, kind: str, resource_id: str) -> None:
        """Withdraw a share of the actor's tenant; its partner's readers lose it at once."""
        rt = self._rt
        if kind == "valuechain":
            require_manage(actor, actor.tenant, ANY_SCOPE)
        else:
            resource_id = scope_in(rt.cache, actor.tenant, resource_id)
            require_manage(actor, actor.tenant, resource_id)
        share = next(
            (
                s
                for s in rt.cache.shares
                if (s.owner, s.partner, s.kind, s.resource_id)
                == (actor.tenant, partner, kind, resource_id)
            ),
            None,
        )
        if share is None:
            raise LookupError(f"{partner!r} has no share of {kind} {resource_id!r} from you")
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.remove_share, share)
            await rt.reload()
        LOGGER.info("%s withdrew %s %s from %s", actor.name, kind, resource_id, partner)

    def _check_roots_free(self, roots: Sequence[str]) -> None:
        """Refuse roots that overlap each other or another tenant's: a part of the namespace
        has one owner. "*" overlaps only "*": it yields to every other root."""
        taken = [(root, t) for root, t in self._rt.cache.namespace.roots]
        for i, root in enumerate(roots):
            for other, owner in [*taken, *((r, "this tenant") for r in roots[:i])]:
                clash = root == other or (
                    ANY_ROOT not in (root, other)
                    and (path_has_prefix(root, other) or path_has_prefix(other, root))
                )
                if clash:
                    raise ValueError(
                        f"root {root!r} overlaps {other!r}, which belongs to {owner}; "
                        "a part of the namespace has one owner"
                    )
