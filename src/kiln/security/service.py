"""The identity service: logins, sessions, API keys, device credentials, users, roles, tenants.

IEC 62443-4-2 CR 1.1 (identification and authentication of people), CR 1.2 (of devices),
CR 1.5 (authenticator management), CR 1.11 (unsuccessful login attempts), CR 2.1
(authorization enforcement); OWASP API Security Top 10 API1 (object level: tenants see only
their own records), API2 (broken authentication), API3 (property level: no principal can
change its own roles or tenant), API5 (function level: admin operations check users:manage).

The database is the source of truth at start; afterwards authentication is answered from
memory (it runs on every request and every device connection). Writes go to the database
first, in a worker thread, one writer at a time, and the cache follows before the call returns:
a revoked credential is refused by the very next check.

Secrets never reach the log: not passwords, not tokens, not TOTP secrets.

`Identity` is the platform service and the one door to all of it; the work is done by its
parts, which share an `IdentityRuntime` (store, cache, clock, write lock):

- `sessions`: logins, refresh tokens, logouts, bearer and device authentication;
- `accounts`: users, passwords, roles, TOTP;
- `credentials`: API keys and device credentials;
- `tenancy`: tenants and sharing;
- `bootstrap`: the first start (the default tenant and its first administrator);
- `guards` (who may manage whom, valid names), `grants` (what a user or key may do) and
  `cache` (the in-memory snapshot of the database) serve them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiln.core.clock import Clock
from kiln.core.platform import Health, Platform, Status
from kiln.security.accounts import Accounts
from kiln.security.accounts import TotpProvisioning as TotpProvisioning
from kiln.security.bootstrap import BOOTSTRAP_ADMIN as BOOTSTRAP_ADMIN
from kiln.security.bootstrap import INITIAL_ADMIN_FILE as INITIAL_ADMIN_FILE
from kiln.security.bootstrap import BootstrapResult as BootstrapResult
from kiln.security.bootstrap import bootstrap_if_empty, open_store
from kiln.security.credentials import MAX_API_KEY_DAYS as MAX_API_KEY_DAYS
from kiln.security.credentials import Credentials
from kiln.security.guards import namespace_root
from kiln.security.passwords import PasswordHasherSettings, PasswordHashing
from kiln.security.permissions import Permission
from kiln.security.principal import ANY_ROOT, AuthError, Principal
from kiln.security.ratelimit import LoginLimiter
from kiln.security.runtime import LOGGER, IdentityRuntime
from kiln.security.secrets import derive_key
from kiln.security.sessions import Sessions
from kiln.security.sessions import TokenPair as TokenPair
from kiln.security.store import (
    ApiKeyInfo,
    DeviceInfo,
    RoleInfo,
    SecurityStore,
    ShareInfo,
    TenantInfo,
    TenantKind,
    UserInfo,
)
from kiln.security.tenancy import DEFAULT_TENANT as DEFAULT_TENANT
from kiln.security.tenancy import SHARE_KINDS as SHARE_KINDS
from kiln.security.tenancy import Tenancy

# How often ended sessions are purged and the last use of API keys is written down.
_HOUSEKEEPING_S = 60.0
# How often a running platform looks for changes another process (`kiln admin`) made.
_FOLLOW_S = 1.0
CHANGE_STAMP_FILE = "security.changed"


def mark_changed(data_dir: Path) -> None:
    """Tell a platform running on `data_dir` that users, roles or credentials changed in the
    database behind its back (`kiln admin`): it reloads within `_FOLLOW_S` seconds.

    A file's modification time, not a database notification, so that it works the same on
    SQLite and PostgreSQL; a platform that shares its database with other hosts needs more.
    """
    stamp = data_dir / CHANGE_STAMP_FILE
    stamp.write_text(f"{datetime.now(UTC).isoformat()}\n")


class Identity:
    """Users, roles, tenants and credentials; a platform service named "identity".

    `bootstrap_roots` are the namespace roots of the tenant created at first start; "*" means
    every path that no other tenant's root covers.
    """

    name = "identity"

    def __init__(
        self,
        url: str,
        *,
        data_dir: Path,
        clock: Clock | None = None,
        password_settings: PasswordHasherSettings | None = None,
        access_ttl_s: int = 900,
        refresh_ttl_s: int = 8 * 3600,
        bootstrap_roots: Sequence[str] = (ANY_ROOT,),
        max_login_failures: int = 5,
        lockout_s: float = 300.0,
    ) -> None:
        if access_ttl_s <= 0 or refresh_ttl_s <= 0:
            raise ValueError("token lifetimes must be positive")
        self._url = url
        self._data_dir = data_dir
        self._hashing = PasswordHashing(password_settings)
        refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._bootstrap_roots = tuple(namespace_root(r) for r in bootstrap_roots)
        self._max_login_failures = max_login_failures
        self._lockout_s = lockout_s
        self._rt = IdentityRuntime(clock, self._hashing)
        self._sessions = Sessions(self._rt, access_ttl_s=access_ttl_s, refresh_ttl=refresh_ttl)
        self._accounts = Accounts(self._rt, self._sessions)
        self._credentials = Credentials(self._rt)
        self._tenancy = Tenancy(self._rt)
        self._status = Status.STARTING
        self.bootstrap_result: BootstrapResult | None = None
        self._seen_stamp: int | None = None  # the change stamp the cache reflects

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        """Migrate, load the install secret, create the first administrator if there is no
        user at all, and load the caches."""
        rt = self._rt
        if rt.clock is None:
            rt.clock = platform.clock
        clock = rt.clock
        store: SecurityStore | None = None
        try:
            store = SecurityStore(self._url)
            secret = await asyncio.to_thread(open_store, store, self._data_dir, self._hashing)
            rt.jwt_key = derive_key(secret, "jwt")
            rt.totp_key = derive_key(secret, "totp")
            rt.store = store
            self.bootstrap_result = await asyncio.to_thread(
                bootstrap_if_empty, rt, store, self._data_dir, self._bootstrap_roots
            )
            self._seen_stamp = self._stamp()
            await rt.reload()
        except BaseException:
            rt.store = None
            if store is not None:
                store.dispose()
            self._status = Status.FAILED
            raise
        rt.limiter = LoginLimiter(
            clock, per_user=self._max_login_failures, lockout_s=self._lockout_s
        )
        platform.spawn(self._housekeeping(clock), name="identity-housekeeping")
        platform.spawn(self._follow_changes(clock), name="identity-follow")
        self._status = Status.OK
        LOGGER.debug(
            "Identity loaded: %d tenants, %d users, %d live sessions",
            len(rt.cache.tenants),
            len(rt.cache.users),
            len(rt.live_sessions),
        )

    async def stop(self) -> None:
        rt = self._rt
        async with rt.write_lock:
            store, rt.store = rt.store, None
            if store is not None:
                try:
                    await asyncio.to_thread(store.touch_api_keys, rt.key_last_used)
                finally:
                    await asyncio.to_thread(store.dispose)
            self._status = Status.STOPPED

    def health(self) -> Health:
        state = self._rt.cache
        return Health(
            self._status,
            {
                "tenants": len(state.tenants),
                "users": len(state.users),
                "sessions": len(self._rt.live_sessions),
                "api_keys": len(state.keys),
                "devices": len(state.devices),
            },
        )

    # -- authentication (sessions) --------------------------------------------------------

    async def login(
        self, username: str, password: str, *, totp: str | None = None, source: str
    ) -> TokenPair:
        """Check a user's password (and TOTP code, if enrolled) and start a session.

        Raises AuthError: "rate_limited" after too many failures for this user name or source,
        "invalid_credentials" (the same message and about the same time for an unknown user, a
        wrong password and a disabled account), "totp_required", "invalid_totp".
        """
        return await self._sessions.login(username, password, totp=totp, source=source)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new access token and a new refresh token for a valid refresh token.

        The presented token is used up. Presenting it again revokes the whole session: one of
        the two presenters is a thief, and the service cannot tell which.
        """
        return await self._sessions.refresh(refresh_token)

    async def logout(self, credential: str | Principal) -> None:
        """End a session, given its refresh token or the principal of one of its access tokens.

        Unknown tokens are ignored: logging out twice is not an error.
        """
        await self._sessions.logout(credential)

    async def authenticate_bearer(self, token: str) -> Principal:
        """The principal of an access token (a JWT of a live session) or of an API key.

        Raises AuthError("invalid_token") for anything else, without saying why (the reason is
        logged at debug level).
        """
        try:
            return await self._sessions.authenticate_bearer(token)
        except AuthError:
            if not await self._catch_up():
                raise
        return await self._sessions.authenticate_bearer(token)

    async def authenticate_device(self, token: str) -> Principal:
        """The principal of a device credential; AuthError("invalid_token") if it is unknown
        or revoked. Answered from memory: revocation updates it before returning."""
        try:
            return await self._sessions.authenticate_device(token)
        except AuthError:
            # A credential `kiln admin` made a moment ago works at once, not a second later.
            if not await self._catch_up():
                raise
        return await self._sessions.authenticate_device(token)

    # -- the local operator (sessions) ----------------------------------------------------

    def local_operator(self, name: str) -> Principal:
        """Whoever runs `kiln admin` on the platform's machine, as a tenant-wide administrator
        of the default tenant. Being able to read the data directory (and the install secret
        in it) already gives that power; this makes it explicit, named, and audited."""
        return self._sessions.local_operator(name)

    def principal_of(self, username: str) -> Principal:
        """A user's principal without a session, for `kiln admin keys add --user`; LookupError
        for an unknown or disabled user."""
        return self._sessions.principal_of(username)

    # -- tenants and sharing (tenancy) ----------------------------------------------------

    def tenants(self) -> list[TenantInfo]:
        return self._tenancy.tenants()

    def tenant_of(self, path: str) -> str | None:
        """The tenant that owns `path`, or None if no tenant's root covers it."""
        return self._tenancy.tenant_of(path)

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
        """Create a tenant, with its first administrator if `admin_username` is given (nobody
        else can create users in it: administrators act in their own tenant only).

        Only tenant-wide administrators of the default tenant create tenants. An owner's
        roots may not overlap another tenant's roots (except "*", which yields to them);
        a partner has no roots: it sees only what is shared with it.
        """
        return await self._tenancy.create_tenant(
            actor,
            name,
            kind,
            roots,
            admin_username=admin_username,
            admin_password=admin_password,
        )

    async def share(
        self,
        actor: Principal,
        partner: str,
        kind: str,
        resource_id: str,
        permission: Permission | str = Permission.VALUES_READ,
    ) -> ShareInfo:
        """Share one of the actor's tenant's records with a partner tenant.

        Kind "namespace" shares a subtree, read-only: the partner's principals that hold
        values:read in their own tenant may read it.
        """
        return await self._tenancy.share(actor, partner, kind, resource_id, permission)

    def shares(self, actor: Principal) -> list[ShareInfo]:
        """What the actor's tenant shares, within the actor's users:manage scope, and what
        other tenants share with it."""
        return self._tenancy.shares(actor)

    def shared_with(self, partner: str, kind: str) -> dict[str, set[str]]:
        """What each owner tenant shares with tenant `partner` of `kind` ("valuechain":
        genealogy, forecasts, quality): owner -> resource ids."""
        return self._tenancy.shared_with(partner, kind)

    async def unshare(self, actor: Principal, partner: str, kind: str, resource_id: str) -> None:
        """Withdraw a share of the actor's tenant; LookupError when there is none."""
        await self._tenancy.unshare(actor, partner, kind, resource_id)

    # -- users (accounts) -----------------------------------------------------------------

    async def list_users(self, actor: Principal, tenant: str) -> list[UserInfo]:
        return await self._accounts.list_users(actor, tenant)

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
        """Create a user holding `roles` over `scope` (the whole tenant if None).

        Raises PermissionDenied unless the actor manages users of `tenant` at that scope,
        ValueError for an invalid name, a password the policy refuses or an unknown role,
        Conflict if the name is taken (in any case, in any tenant).
        """
        return await self._accounts.create_user(
            actor, tenant, username, password, roles, scope=scope
        )

    async def set_password(
        self,
        actor: Principal,
        username: str,
        new_password: str,
        *,
        current_password: str | None = None,
    ) -> None:
        """Change a password: one's own (the current password is required) or, as an
        administrator, another user's. Ends every other session of that user."""
        await self._accounts.set_password(
            actor, username, new_password, current_password=current_password
        )

    async def disable_user(self, actor: Principal, username: str, disabled: bool = True) -> None:
        """Disable (or re-enable) a user: its sessions end and its API keys stop working."""
        await self._accounts.disable_user(actor, username, disabled)

    # -- roles (accounts) -----------------------------------------------------------------

    def list_roles(self, actor: Principal, tenant: str) -> list[RoleInfo]:
        """Built-in roles and the tenant's custom roles."""
        return self._accounts.list_roles(actor, tenant)

    async def create_role(
        self, actor: Principal, tenant: str, name: str, permissions: Iterable[str]
    ) -> RoleInfo:
        """A custom role of `tenant` from named permissions; ValueError naming an unknown one."""
        return await self._accounts.create_role(actor, tenant, name, permissions)

    async def assign_role(
        self, actor: Principal, username: str, role: str, scope: str | None = None
    ) -> bool:
        """Give a user of the actor's tenant a role over `scope`; False if it had it already.

        Nobody changes their own roles (OWASP API3): another administrator must.
        """
        return await self._accounts.assign_role(actor, username, role, scope)

    async def revoke_role(
        self, actor: Principal, username: str, role: str, scope: str | None = None
    ) -> bool:
        """Take a role (at exactly this scope) from a user; False if it did not hold it."""
        return await self._accounts.revoke_role(actor, username, role, scope)

    # -- API keys (credentials) -----------------------------------------------------------

    async def create_api_key(
        self,
        owner: Principal,
        name: str,
        permissions: Iterable[str],
        scope: str | None,
        expires_in_days: int,
    ) -> tuple[str, ApiKeyInfo]:
        """A key acting for `owner` (a signed-in user) with some of its permissions.

        Returns the token, which is shown once and never stored, and the key's record. Raises
        PermissionDenied if a permission exceeds what the owner holds at `scope`.
        """
        return await self._credentials.create_api_key(
            owner, name, permissions, scope, expires_in_days
        )

    async def revoke_api_key(self, actor: Principal, key_id: str) -> None:
        """Revoke a key: one's own, or as an administrator any of the tenant's. Refused at once.

        A key the actor may not list is unknown to it (LookupError), not forbidden."""
        await self._credentials.revoke_api_key(actor, key_id)

    async def list_api_keys(
        self, actor: Principal, *, username: str | None = None
    ) -> list[ApiKeyInfo]:
        """The keys of the acting user, or (as an administrator) of `username`; revoked and
        expired ones included, so that their history stays visible."""
        return await self._credentials.list_api_keys(actor, username=username)

    # -- devices (credentials) ------------------------------------------------------------

    async def create_device(
        self, actor: Principal, tenant: str, name: str, prefix: str
    ) -> tuple[str, DeviceInfo]:
        """A credential for a device that publishes below `prefix`; the token is shown once.

        A revoked device's name can be issued again; a live one's cannot (Conflict).
        """
        return await self._credentials.create_device(actor, tenant, name, prefix)

    async def revoke_device(self, actor: Principal, tenant: str, name: str) -> None:
        """Revoke a device credential; the next `authenticate_device` refuses it.

        One of another tenant or outside the actor's scope is unknown to it (LookupError)."""
        await self._credentials.revoke_device(actor, tenant, name)

    async def list_devices(self, actor: Principal, tenant: str) -> list[DeviceInfo]:
        """The tenant's device credentials whose prefix the actor manages, revoked ones too."""
        return await self._credentials.list_devices(actor, tenant)

    # -- TOTP (accounts) ------------------------------------------------------------------

    async def enable_totp(self, principal: Principal) -> TotpProvisioning:
        """Start enrolling the signed-in user in TOTP; in force after `confirm_totp`.

        A user already enrolled must be reset by an administrator first, so that a stolen
        session cannot move the second factor to the thief's phone.
        """
        return await self._accounts.enable_totp(principal)

    async def confirm_totp(self, principal: Principal, code: str) -> None:
        """Put the pending TOTP secret in force, given a code from the authenticator app."""
        await self._accounts.confirm_totp(principal, code)

    async def reset_totp(self, actor: Principal, username: str) -> None:
        """Remove a user's TOTP (a lost phone); an administrator's task, never one's own."""
        await self._accounts.reset_totp(actor, username)

    # -- internals: housekeeping, following other processes -------------------------------

    async def _housekeeping(self, clock: Clock) -> None:
        """Purge ended sessions and write down when API keys were last used, every minute."""
        rt = self._rt
        while True:
            await clock.sleep(_HOUSEKEEPING_S)
            async with rt.write_lock:
                store = rt.store
                if store is None:
                    return
                used, rt.key_last_used = rt.key_last_used, {}
                now = rt.now()
                await asyncio.to_thread(store.touch_api_keys, used)
                purged = await asyncio.to_thread(store.purge_refresh_tokens, now)
                for family, session in list(rt.live_sessions.items()):
                    if session.expires_at <= now:
                        del rt.live_sessions[family]
            if purged:
                LOGGER.debug("Purged %d refresh tokens of ended sessions", purged)

    def _stamp(self) -> int | None:
        try:
            return (self._data_dir / CHANGE_STAMP_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    async def _follow_changes(self, clock: Clock) -> None:
        """Reload when another process marked a change (`mark_changed`): a device revoked
        with `kiln admin devices revoke` is refused by a running server within a second."""
        while self._rt.store is not None:
            await clock.sleep(_FOLLOW_S)
            await self._catch_up()

    async def _catch_up(self) -> bool:
        """Reload if another process marked a change since the cache was loaded; whether it
        did. Also asked when a credential is unknown, so one just made elsewhere is found."""
        now = self._stamp()
        if now == self._seen_stamp:
            return False
        async with self._rt.write_lock:
            if self._rt.store is None:
                return False
            if now == self._seen_stamp:
                # Reloaded by another task while this one waited: worth asking again.
                return True
            await self._rt.reload()
            # Only once the reload is done: a request that finds the stamp already seen must
            # be able to trust the cache (it answered 401 while the reload was half way).
            self._seen_stamp = now
        LOGGER.info("Identity reloaded: changed by another process")
        return True
