"""Credentials that are not a person's password: API keys and device credentials.

IEC 62443-4-2 CR 1.2 (identification and authentication of devices), CR 1.5 (authenticator
management: tokens are shown once and stored as hashes only, keys expire); OWASP API Security
Top 10 API1 (object level: a credential the actor may not list is unknown to it, not
forbidden). Secrets never reach the log: not tokens.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

from kiln.security.grants import holds, manages
from kiln.security.guards import (
    ANY_SCOPE,
    acting_user,
    is_self,
    require_manage,
    require_manage_user,
    scope_in,
    user_in,
)
from kiln.security.permissions import parse_permissions
from kiln.security.principal import PermissionDenied, Principal
from kiln.security.runtime import LOGGER, IdentityRuntime, running
from kiln.security.store import ApiKeyInfo, Conflict, DeviceInfo, Hashed
from kiln.security.tokens import API_KEY_PREFIX, DEVICE_CREDENTIAL_PREFIX, new_opaque_token

MAX_API_KEY_DAYS = 365

_DEVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_KEY_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")


class Credentials:
    """Issues, lists and revokes API keys and device credentials.

    The public methods are `Identity`'s, which documents them; `Identity` delegates to them.
    """

    def __init__(self, rt: IdentityRuntime) -> None:
        self._rt = rt

    # -- API keys -------------------------------------------------------------------------

    async def create_api_key(
        self,
        owner: Principal,
        name: str,
        permissions: Iterable[str],
        scope: str | None,
        expires_in_days: int,
    ) -> tuple[str, ApiKeyInfo]:
        """A key acting for a signed-in user with some of its permissions; (token, record)."""
        rt = self._rt
        user = acting_user(rt.cache, owner)
        if not _KEY_NAME.fullmatch(name.strip()):
            raise ValueError("API key name must be 1-64 characters without control characters")
        if not 1 <= expires_in_days <= MAX_API_KEY_DAYS:
            raise ValueError(
                f"API keys expire within 1 to {MAX_API_KEY_DAYS} days, not {expires_in_days}"
            )
        perms = parse_permissions(permissions)
        if not perms:
            raise ValueError("an API key needs at least one permission")
        scope = None if scope is None else scope_in(rt.cache, user.tenant, scope)
        own = rt.cache.grants.get(user.id, ())
        missing = sorted(p.value for p in perms if not holds(own, user.tenant, p, scope))
        if missing:
            raise PermissionDenied(
                f"an API key cannot have permissions its owner lacks: {', '.join(missing)} "
                f"at {scope or 'the whole tenant'}"
            )
        now = rt.now()
        token = new_opaque_token(API_KEY_PREFIX)
        info = ApiKeyInfo(
            id=token.id,
            name=name.strip(),
            owner=user.username,
            owner_id=user.id,
            tenant=user.tenant,
            permissions=perms,
            scope=scope,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days),
        )
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.create_api_key, Hashed(info, token.hash))
            await rt.reload()
        LOGGER.info("API key %s (%s) created for %s", info.id, info.name, user.username)
        return token.token, info

    async def revoke_api_key(self, actor: Principal, key_id: str) -> None:
        """Revoke one's own key or, as an administrator, one of the tenant's."""
        rt = self._rt
        entry = rt.cache.keys.get(key_id)
        if entry is None or entry.info.tenant != actor.tenant:
            raise LookupError(f"no live API key {key_id!r}")
        owner = rt.cache.users.get(entry.info.owner_id)
        try:
            if owner is None:
                require_manage(actor, actor.tenant, None)
            elif not is_self(actor, owner):
                require_manage_user(actor, owner)
        except PermissionDenied:
            # A key the actor may not list (list_api_keys) is unknown to it, not forbidden:
            # a 403 would tell that the key exists (OWASP API1).
            raise LookupError(f"no live API key {key_id!r}") from None
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.revoke_api_key, key_id, now=rt.now())
            await rt.reload()
        LOGGER.info("API key %s revoked by %s", key_id, actor.name)

    async def list_api_keys(
        self, actor: Principal, *, username: str | None = None
    ) -> list[ApiKeyInfo]:
        """The keys of the acting user or of `username`, revoked and expired ones included."""
        rt = self._rt
        target = (
            acting_user(rt.cache, actor)
            if username is None
            else user_in(rt.cache, actor.tenant, username)
        )
        if not is_self(actor, target):
            require_manage_user(actor, target)
        store = running(rt.store)
        keys = await asyncio.to_thread(store.list_api_keys, target.tenant, target.id)
        return [self._with_recent_use(k) for k in keys]

    def _with_recent_use(self, key: ApiKeyInfo) -> ApiKeyInfo:
        """`key` with its last use seen in memory, if that is later than the stored one (the
        housekeeping writes uses down once a minute)."""
        recent = self._rt.key_last_used.get(key.id)
        if recent is None or (key.last_used_at is not None and key.last_used_at >= recent):
            return key
        return replace(key, last_used_at=recent)

    # -- devices --------------------------------------------------------------------------

    async def create_device(
        self, actor: Principal, tenant: str, name: str, prefix: str
    ) -> tuple[str, DeviceInfo]:
        """A credential for a device that publishes below `prefix`; (token, record)."""
        rt = self._rt
        require_manage(actor, tenant, ANY_SCOPE)
        prefix = scope_in(rt.cache, tenant, prefix)
        require_manage(actor, tenant, prefix)
        if not _DEVICE_NAME.fullmatch(name):
            raise ValueError(
                f"device name {name!r} is invalid: 1-64 letters, digits, '_', '.' and '-'"
            )
        if rt.cache.device_named(tenant, name) is not None:
            raise Conflict(f"device {name!r} already has a live credential; revoke it first")
        token = new_opaque_token(DEVICE_CREDENTIAL_PREFIX)
        info = DeviceInfo(token.id, name, tenant, prefix, rt.now())
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.put_device, Hashed(info, token.hash))
            await rt.reload()
        LOGGER.info("Device %s created in %s (prefix %s) by %s", name, tenant, prefix, actor.name)
        return token.token, info

    async def revoke_device(self, actor: Principal, tenant: str, name: str) -> None:
        """Revoke a device credential of the actor's tenant, within its scope."""
        rt = self._rt
        require_manage(actor, actor.tenant, ANY_SCOPE)
        entry = rt.cache.device_named(tenant, name) if tenant == actor.tenant else None
        # A credential outside the actor's scope is not listed for it (list_devices) and so is
        # unknown to it, not forbidden: a 403 would tell that it exists (OWASP API1).
        if entry is None or not manages(actor.grants, tenant, entry.info.prefix):
            raise LookupError(f"no live device credential {name!r} in tenant {actor.tenant!r}")
        store = running(rt.store)
        async with rt.write_lock:
            await asyncio.to_thread(store.revoke_device, tenant, name, now=rt.now())
            await rt.reload()
        LOGGER.info("Device %s of %s revoked by %s", name, tenant, actor.name)

    async def list_devices(self, actor: Principal, tenant: str) -> list[DeviceInfo]:
        """The tenant's device credentials whose prefix the actor manages, revoked ones too."""
        require_manage(actor, tenant, ANY_SCOPE)
        devices = await asyncio.to_thread(running(self._rt.store).list_devices, tenant)
        return [d for d in devices if manages(actor.grants, tenant, d.prefix)]
