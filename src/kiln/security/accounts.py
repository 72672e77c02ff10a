"""User accounts: users, their passwords, roles and TOTP second factor.

IEC 62443-4-2 CR 1.1 (identification and authentication of people), CR 1.5 (authenticator
management), CR 2.1 (authorization enforcement); OWASP API Security Top 10 API3 (property
level: no principal can change its own roles or tenant), API5 (function level: admin
operations check users:manage). Secrets never reach the log: not passwords, not TOTP secrets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kiln.security.guards import (
    ANY_SCOPE,
    ROLE_NAME,
    acting_user,
    check_new_username,
    is_self,
    require_manage,
    require_manage_user,
    role_in,
    scope_in,
    user_in,
)
from kiln.security.permissions import BUILTIN_ROLES, parse_permissions
from kiln.security.principal import AuthError, PermissionDenied, Principal
from kiln.security.runtime import LOGGER, IdentityRuntime, running
from kiln.security.sessions import Sessions
from kiln.security.store import Conflict, RoleAssignment, RoleInfo, UserInfo
from kiln.security.totp import encrypt_secret, new_totp_secret, provisioning_uri


@dataclass(frozen=True, slots=True)
class TotpProvisioning:
    """A TOTP secret waiting for its first code (`confirm_totp`); `uri` is for a QR code."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


class Accounts:
    """Creates users, changes their passwords, roles and TOTP, disables them.

    The public methods are `Identity`'s, which documents them; `Identity` delegates to them.
    `sessions` checks current passwords and TOTP codes and ends the sessions of a user.
    """

    def __init__(self, rt: IdentityRuntime, sessions: Sessions) -> None:
        self._rt = rt
        self._sessions = sessions

    # -- users ----------------------------------------------------------------------------

    async def list_users(self, actor: Principal, tenant: str) -> list[UserInfo]:
        """The users of `tenant`, for an actor that manages users there."""
        require_manage(actor, tenant, ANY_SCOPE)
        return await asyncio.to_thread(running(self._rt.store).list_users, tenant)

    async def create_user(
        self,
        actor: Principal,
        tenant: str,
        username: str,
        password: str,
        roles: Sequence[str] = (),
        *,
        scope: str | None = None,
    ) -> UserInfo:
        """Create a user holding `roles` over `scope` (the whole tenant if None)."""
        rt = self._rt
        require_manage(actor, tenant, ANY_SCOPE)
        scope = None if scope is None else scope_in(rt.cache, tenant, scope)
        require_manage(actor, tenant, scope)
        check_new_username(rt.cache, username)
        assignments = [RoleAssignment(role_in(rt.cache, tenant, r), scope) for r in roles]
        password_hash = await rt.new_password_hash(username, password)
        store = running(rt.store)
        async with rt.write_lock:
            user_id = await asyncio.to_thread(
                store.create_user, tenant, username, password_hash, assignments, now=rt.now()
            )
            await rt.reload()
        LOGGER.info("User %s created in tenant %s by %s", username, tenant, actor.name)
        return rt.cache.users[user_id]

    async def set_password(
        self,
        actor: Principal,
        username: str,
        new_password: str,
        *,
        current_password: str | None = None,
    ) -> None:
        """Change one's own password or, as an administrator, another user's."""
        rt = self._rt
        target = user_in(rt.cache, actor.tenant, username)
        store = running(rt.store)
        keep: str | None = None
        if is_self(actor, target):
            # Rate limited like a login: a stolen session must not become a password oracle.
            source = self._sessions.session_source(actor)
            creds, _ = await asyncio.to_thread(
                self._sessions.check_password, store, username, current_password or ""
            )
            if current_password is None or creds is None:
                running(rt.limiter).failed(target.username, source)
                raise AuthError("invalid_credentials", "the current password is wrong")
            keep = actor.token_id
        else:
            require_manage_user(actor, target)
        password_hash = await rt.new_password_hash(target.username, new_password)
        now = rt.now()
        async with rt.write_lock:
            await asyncio.to_thread(store.set_password, target.id, password_hash, now=now)
            await self._sessions.end_sessions(store, target.id, now, keep=keep)
        LOGGER.info("Password of %s changed by %s", target.username, actor.name)

    async def disable_user(self, actor: Principal, username: str, disabled: bool = True) -> None:
        """Disable (or re-enable) another user of the actor's tenant."""
        rt = self._rt
        target = user_in(rt.cache, actor.tenant, username)
        if is_self(actor, target):
            raise PermissionDenied("a user cannot disable or enable itself")
        require_manage_user(actor, target)
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.set_disabled, target.id, disabled)
            if disabled:
                await self._sessions.end_sessions(store, target.id, rt.now())
            await rt.reload()
        LOGGER.info(
            "User %s %s by %s", target.username, "disabled" if disabled else "enabled", actor.name
        )

    # -- roles ----------------------------------------------------------------------------

    def list_roles(self, actor: Principal, tenant: str) -> list[RoleInfo]:
        """Built-in roles and the tenant's custom roles."""
        require_manage(actor, tenant, ANY_SCOPE)
        builtin = [RoleInfo(None, name, perms) for name, perms in BUILTIN_ROLES.items()]
        custom = [
            RoleInfo(t, name, perms)
            for (t, name), perms in self._rt.cache.roles.items()
            if t == tenant
        ]
        return builtin + sorted(custom, key=lambda r: r.name)

    async def create_role(
        self, actor: Principal, tenant: str, name: str, permissions: Iterable[str]
    ) -> RoleInfo:
        """A custom role of `tenant` from named permissions."""
        rt = self._rt
        require_manage(actor, tenant, None)
        if not ROLE_NAME.fullmatch(name):
            raise ValueError(
                f"role name {name!r} is invalid: 1-64 lowercase letters, digits, '_' and '-'"
            )
        if name in BUILTIN_ROLES:
            raise Conflict(f"{name!r} is a built-in role; choose another name")
        if (tenant, name) in rt.cache.roles:
            raise Conflict(f"role {name!r} already exists in tenant {tenant!r}")
        perms = parse_permissions(permissions)
        if not perms:
            raise ValueError(f"role {name!r} has no permissions; name at least one")
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.create_role, tenant, name, perms, now=rt.now())
            await rt.reload()
        LOGGER.info("Role %s created in tenant %s by %s", name, tenant, actor.name)
        return RoleInfo(tenant, name, perms)

    async def assign_role(
        self, actor: Principal, username: str, role: str, scope: str | None = None
    ) -> bool:
        """Give another user a role over `scope`; False if it had it already."""
        target, assignment = self._role_change(actor, username, role, scope)
        rt = self._rt
        store = running(rt.store)
        async with rt.write_lock:
            added = await asyncio.to_thread(
                store.add_assignment, target.id, target.tenant, assignment
            )
            await rt.reload()
        if added:
            LOGGER.info(
                "Role %s (scope %s) given to %s by %s",
                assignment.role,
                assignment.scope or "*",
                target.username,
                actor.name,
            )
        return added

    async def revoke_role(
        self, actor: Principal, username: str, role: str, scope: str | None = None
    ) -> bool:
        """Take a role (at exactly this scope) from another user; False if it did not hold it."""
        target, assignment = self._role_change(actor, username, role, scope)
        rt = self._rt
        store = running(rt.store)
        async with rt.write_lock:
            removed = await asyncio.to_thread(
                store.remove_assignment, target.id, target.tenant, assignment
            )
            await rt.reload()
        if removed:
            LOGGER.info(
                "Role %s (scope %s) taken from %s by %s",
                assignment.role,
                assignment.scope or "*",
                target.username,
                actor.name,
            )
        return removed

    def _role_change(
        self, actor: Principal, username: str, role: str, scope: str | None
    ) -> tuple[UserInfo, RoleAssignment]:
        """The target and the assignment of a role change, once the actor may make it: nobody
        changes their own roles (OWASP API3)."""
        cache = self._rt.cache
        target = user_in(cache, actor.tenant, username)
        if is_self(actor, target):
            raise PermissionDenied("nobody changes their own roles; ask another administrator")
        scope = None if scope is None else scope_in(cache, target.tenant, scope)
        require_manage(actor, target.tenant, scope)
        return target, RoleAssignment(role_in(cache, target.tenant, role), scope)

    # -- TOTP -----------------------------------------------------------------------------

    async def enable_totp(self, principal: Principal) -> TotpProvisioning:
        """Start enrolling the signed-in user in TOTP, unless it is enrolled already."""
        rt = self._rt
        user = acting_user(rt.cache, principal)
        if user.totp_enabled:
            raise PermissionDenied(
                "TOTP is already enabled for this user; an administrator must reset it first"
            )
        secret = new_totp_secret()
        blob = encrypt_secret(rt.totp_key, secret, context=str(user.id))
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.set_totp, user.id, blob, enabled=False)
        return TotpProvisioning(secret, provisioning_uri(secret, user.username))

    async def confirm_totp(self, principal: Principal, code: str) -> None:
        """Put the pending TOTP secret in force, given a code from the authenticator app."""
        rt = self._rt
        user = acting_user(rt.cache, principal)
        source = self._sessions.session_source(principal)
        store = running(rt.store)
        creds = await asyncio.to_thread(store.user_credentials, user.username)
        if creds is None or creds.totp_secret is None or creds.user.totp_enabled:
            raise ValueError("no TOTP enrolment is pending; call enable_totp first")
        step = self._sessions.totp_step(creds, code)
        async with rt.write_lock:
            ok = step is not None and await asyncio.to_thread(
                store.use_totp_step, user.id, step, enable=True
            )
            if ok:
                await rt.reload()
        if not ok:
            running(rt.limiter).failed(user.username, source)
            raise AuthError("invalid_totp", "invalid TOTP code")
        LOGGER.info("TOTP enabled for %s", user.username)

    async def reset_totp(self, actor: Principal, username: str) -> None:
        """Remove another user's TOTP (a lost phone)."""
        rt = self._rt
        target = user_in(rt.cache, actor.tenant, username)
        if is_self(actor, target):
            raise PermissionDenied("a user cannot reset its own TOTP; ask an administrator")
        require_manage_user(actor, target)
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.set_totp, target.id, None, enabled=False)
            await rt.reload()
        LOGGER.info("TOTP of %s reset by %s", target.username, actor.name)
