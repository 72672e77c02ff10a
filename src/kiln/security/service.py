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
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets as _random
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from math import ceil
from pathlib import Path
from typing import TypeVar

from kiln.core.clock import Clock, us_to_datetime
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import path_has_prefix, validate_path
from kiln.security.passwords import PasswordHasherSettings, PasswordHashing, check_policy
from kiln.security.permissions import (
    BUILTIN_ROLES,
    Grant,
    Permission,
    parse_permissions,
)
from kiln.security.principal import (
    ANY_ROOT,
    AuthError,
    PermissionDenied,
    Principal,
    PrincipalKind,
    TenantMap,
)
from kiln.security.ratelimit import LoginLimiter
from kiln.security.secrets import (
    derive_key,
    generate_password,
    load_or_create_secret,
    write_private_file,
)
from kiln.security.store import (
    ApiKeyInfo,
    Conflict,
    DeviceInfo,
    Hashed,
    RoleAssignment,
    RoleInfo,
    Rotation,
    SecurityStore,
    SessionInfo,
    ShareInfo,
    Snapshot,
    TenantInfo,
    TenantKind,
    UserCredentials,
    UserInfo,
    username_key,
)
from kiln.security.tokens import (
    API_KEY_PREFIX,
    DEVICE_CREDENTIAL_PREFIX,
    REFRESH_TOKEN_PREFIX,
    InvalidToken,
    decode_access_token,
    hashes_match,
    issue_access_token,
    new_opaque_token,
    parse_opaque_token,
)
from kiln.security.totp import (
    TotpSecretError,
    decrypt_secret,
    encrypt_secret,
    new_totp_secret,
    provisioning_uri,
    verify_totp,
)

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

P = Permission

# The tenant created at first start. Its tenant-wide administrators run the installation:
# they alone create tenants.
DEFAULT_TENANT = "default"
BOOTSTRAP_ADMIN = "admin"
INITIAL_ADMIN_FILE = "initial-admin.txt"

MAX_API_KEY_DAYS = 365
SHARE_KINDS = frozenset({"namespace"})  # later: orders

# One message for an unknown user, a wrong password and a disabled account: no enumeration.
_BAD_LOGIN = "invalid username or password"
_BAD_TOKEN = "invalid or expired credentials"

_TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ROLE_NAME = _TENANT_NAME
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_DEVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_KEY_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")

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


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or a refresh hands out. `expires_in` is the access token's lifetime in s."""

    access: str = field(repr=False)
    refresh: str = field(repr=False)
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """The first administrator, created on the first start; the CLI shows the password once."""

    username: str
    password: str = field(repr=False)
    path: Path


@dataclass(frozen=True, slots=True)
class TotpProvisioning:
    """A TOTP secret waiting for its first code (`confirm_totp`); `uri` is for a QR code."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)


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
        self._clock = clock
        self._hashing = PasswordHashing(password_settings)
        self._access_ttl_s = access_ttl_s
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._bootstrap_roots = tuple(_root(r) for r in bootstrap_roots)
        self._max_login_failures = max_login_failures
        self._lockout_s = lockout_s
        self._store: SecurityStore | None = None
        self._limiter: LoginLimiter | None = None
        self._jwt_key = b""
        self._totp_key = b""
        self._state = _State.build(Snapshot([], [], [], [], [], [], []))
        # Live sessions by refresh token family: an access token is good only while its
        # session is, so a logout or a password change ends it at once.
        self._sessions: dict[str, SessionInfo] = {}
        self._key_last_used: dict[str, datetime] = {}
        # One writer at a time: every write replaces the cache from the database afterwards.
        self._write_lock = asyncio.Lock()
        self._status = Status.STARTING
        self.bootstrap_result: BootstrapResult | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        """Migrate, load the install secret, create the first administrator if there is no
        user at all, and load the caches."""
        if self._clock is None:
            self._clock = platform.clock
        clock = self._clock
        store: SecurityStore | None = None
        try:
            store = SecurityStore(self._url)
            secret = await asyncio.to_thread(_open, store, self._data_dir, self._hashing)
            self._jwt_key = derive_key(secret, "jwt")
            self._totp_key = derive_key(secret, "totp")
            self._store = store
            self.bootstrap_result = await asyncio.to_thread(self._bootstrap_if_empty, store)
            await self._reload()
        except BaseException:
            self._store = None
            if store is not None:
                store.dispose()
            self._status = Status.FAILED
            raise
        self._limiter = LoginLimiter(
            clock, per_user=self._max_login_failures, lockout_s=self._lockout_s
        )
        platform.spawn(self._housekeeping(clock), name="identity-housekeeping")
        platform.spawn(self._follow_changes(clock), name="identity-follow")
        self._status = Status.OK
        _LOGGER.info(
            "Identity loaded: %d tenants, %d users, %d live sessions",
            len(self._state.tenants),
            len(self._state.users),
            len(self._sessions),
        )

    async def stop(self) -> None:
        async with self._write_lock:
            store, self._store = self._store, None
            if store is not None:
                try:
                    await asyncio.to_thread(store.touch_api_keys, self._key_last_used)
                finally:
                    await asyncio.to_thread(store.dispose)
            self._status = Status.STOPPED

    def health(self) -> Health:
        state = self._state
        return Health(
            self._status,
            {
                "tenants": len(state.tenants),
                "users": len(state.users),
                "sessions": len(self._sessions),
                "api_keys": len(state.keys),
                "devices": len(state.devices),
            },
        )

    # -- authentication -------------------------------------------------------------------

    async def login(
        self, username: str, password: str, *, totp: str | None = None, source: str
    ) -> TokenPair:
        """Check a user's password (and TOTP code, if enrolled) and start a session.

        Raises AuthError: "rate_limited" after too many failures for this user name or source,
        "invalid_credentials" (the same message and about the same time for an unknown user, a
        wrong password and a disabled account), "totp_required", "invalid_totp".
        """
        limiter = _running(self._limiter)
        wait = limiter.check(username, source)
        if wait is not None:
            raise AuthError(
                "rate_limited",
                f"too many failed logins; try again in {ceil(wait)} s",
                retry_after_s=wait,
            )
        store = _running(self._store)
        creds, new_hash = await asyncio.to_thread(self._check_password, store, username, password)
        if creds is None or creds.user.disabled:
            limiter.failed(username, source)
            raise AuthError("invalid_credentials", _BAD_LOGIN)
        user = creds.user
        if user.totp_enabled:
            if totp is None:
                raise AuthError("totp_required", "this account needs a TOTP code")
            step = self._totp_step(creds, totp)
            async with self._write_lock:
                fresh = step is not None and await asyncio.to_thread(
                    store.use_totp_step, user.id, step
                )
            if not fresh:
                limiter.failed(username, source)
                raise AuthError("invalid_totp", "invalid TOTP code")
        limiter.succeeded(username, source)
        now = self._now()
        refresh = new_opaque_token(REFRESH_TOKEN_PREFIX)
        session = SessionInfo(_random.token_hex(16), user.id, now + self._refresh_ttl)
        async with self._write_lock:
            await asyncio.to_thread(
                _start_session, store, refresh.id, refresh.hash, session, now, new_hash
            )
            self._sessions[session.family_id] = session
        _LOGGER.info("User %s logged in from %s", user.username, source)
        return TokenPair(
            self._access_token(user, session.family_id), refresh.token, self._access_ttl_s
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new access token and a new refresh token for a valid refresh token.

        The presented token is used up. Presenting it again revokes the whole session: one of
        the two presenters is a thief, and the service cannot tell which.
        """
        store = _running(self._store)
        try:
            token_id, presented = parse_opaque_token(refresh_token, REFRESH_TOKEN_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        successor = new_opaque_token(REFRESH_TOKEN_PREFIX)
        async with self._write_lock:
            result = await asyncio.to_thread(
                store.rotate_refresh_token,
                token_id,
                presented,
                now=self._now(),
                new_id=successor.id,
                new_hash=successor.hash,
            )
            if result.family_id is not None and result.outcome is not Rotation.ROTATED:
                self._sessions.pop(result.family_id, None)
        user = self._state.users.get(result.user_id or -1)
        if result.outcome is Rotation.REUSED:
            _LOGGER.warning(
                "A used refresh token of user %s was presented again; the session is revoked "
                "because the token is presumed stolen",
                user.username if user else result.user_id,
            )
        family = result.family_id
        if result.outcome is not Rotation.ROTATED or user is None or family is None:
            raise AuthError("invalid_token", _BAD_TOKEN)
        if user.disabled or family not in self._sessions:
            raise AuthError("invalid_token", _BAD_TOKEN)
        return TokenPair(self._access_token(user, family), successor.token, self._access_ttl_s)

    async def logout(self, credential: str | Principal) -> None:
        """End a session, given its refresh token or the principal of one of its access tokens.

        Unknown tokens are ignored: logging out twice is not an error.
        """
        store = _running(self._store)
        now = self._now()
        if isinstance(credential, Principal):
            if credential.kind is not PrincipalKind.USER or credential.token_id is None:
                raise ValueError(
                    "only a user's session can be logged out; revoke an API key or a device "
                    "credential instead"
                )
            async with self._write_lock:
                await asyncio.to_thread(store.revoke_families, [credential.token_id], now=now)
                self._sessions.pop(credential.token_id, None)
            return
        try:
            token_id, presented = parse_opaque_token(credential, REFRESH_TOKEN_PREFIX)
        except InvalidToken:
            return
        async with self._write_lock:
            family = await asyncio.to_thread(store.revoke_family_of, token_id, presented, now=now)
            if family is not None:
                self._sessions.pop(family, None)

    async def authenticate_bearer(self, token: str) -> Principal:
        """The principal of an access token (a JWT of a live session) or of an API key.

        Raises AuthError("invalid_token") for anything else, without saying why (the reason is
        logged at debug level).
        """
        if token.startswith(API_KEY_PREFIX + "_"):
            return self._authenticate_key(token)
        try:
            claims = decode_access_token(self._jwt_key, token, now_us=self._now_us())
        except InvalidToken as err:
            _LOGGER.debug("Access token refused: %s", err.reason.value)
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        state = self._state
        user = state.users.get(_int(claims.subject))
        sid = claims.extra.get("sid")
        session = self._sessions.get(sid) if isinstance(sid, str) else None
        if (
            claims.kind != "user"
            or user is None
            or user.disabled
            or user.tenant != claims.tenant
            or session is None
            or session.user_id != user.id
            or session.expires_at <= self._now()
        ):
            raise AuthError("invalid_token", _BAD_TOKEN)
        return Principal(
            kind=PrincipalKind.USER,
            id=str(user.id),
            name=user.username,
            tenant=user.tenant,
            grants=state.grants.get(user.id, ()),
            token_id=session.family_id,
            user=user.username,
            namespace=state.namespace,
        )

    async def authenticate_device(self, token: str) -> Principal:
        """The principal of a device credential; AuthError("invalid_token") if it is unknown
        or revoked. Answered from memory: revocation updates it before returning."""
        try:
            token_id, presented = parse_opaque_token(token, DEVICE_CREDENTIAL_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        state = self._state
        entry = state.devices.get(token_id)
        if entry is None or not hashes_match(entry.token_hash, presented):
            raise AuthError("invalid_token", _BAD_TOKEN)
        device = entry.info
        return Principal(
            kind=PrincipalKind.DEVICE,
            id=device.id,
            name=device.name,
            tenant=device.tenant,
            device_prefix=device.prefix,
            token_id=device.id,
            namespace=state.namespace,
        )

    # -- the local operator ---------------------------------------------------------------

    def local_operator(self, name: str) -> Principal:
        """Whoever runs `kiln admin` on the platform's machine, as a tenant-wide administrator
        of the default tenant. Being able to read the data directory (and the install secret
        in it) already gives that power; this makes it explicit, named, and audited."""
        return Principal(
            kind=PrincipalKind.USER,
            id=f"local:{name}",  # never a user id, so never "oneself" of any user
            name=name,
            tenant=DEFAULT_TENANT,
            grants=(Grant(DEFAULT_TENANT, BUILTIN_ROLES["admin"]),),
            namespace=self._state.namespace,
        )

    def principal_of(self, username: str) -> Principal:
        """A user's principal without a session, for `kiln admin keys add --user`; LookupError
        for an unknown or disabled user."""
        state = self._state
        user = state.users.get(state.user_ids.get(username_key(username), -1))
        if user is None or user.disabled:
            raise LookupError(f"no enabled user {username!r}")
        return Principal(
            kind=PrincipalKind.USER,
            id=str(user.id),
            name=user.username,
            tenant=user.tenant,
            grants=state.grants.get(user.id, ()),
            user=user.username,
            namespace=state.namespace,
        )

    # -- tenants and sharing --------------------------------------------------------------

    def tenants(self) -> list[TenantInfo]:
        return sorted(self._state.tenants.values(), key=lambda t: t.name)

    def tenant_of(self, path: str) -> str | None:
        """The tenant that owns `path`, or None if no tenant's root covers it."""
        return self._state.namespace.tenant_of(path)

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
        self._require_manage(actor, DEFAULT_TENANT, None)
        kind = TenantKind(kind)
        if not _TENANT_NAME.fullmatch(name):
            raise ValueError(
                f"tenant name {name!r} is invalid: 1-64 lowercase letters, digits, '_' and '-'"
            )
        if name in self._state.tenants:
            raise Conflict(f"tenant {name!r} already exists")
        normalized = tuple(dict.fromkeys(_root(r) for r in roots))
        if kind is TenantKind.PARTNER and normalized:
            raise ValueError(
                "a partner tenant owns no namespace; share subtrees with it instead (share())"
            )
        self._check_roots_free(normalized)
        if (admin_username is None) != (admin_password is None):
            raise ValueError("give both admin_username and admin_password, or neither")
        admin_hash = None
        if admin_username is not None and admin_password is not None:
            self._check_new_username(admin_username)
            admin_hash = await self._new_password_hash(admin_username, admin_password)
        store = _running(self._store)
        now = self._now()
        async with self._write_lock:
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
            await self._reload()
        _LOGGER.info("Tenant %s (%s) created by %s", name, kind.value, actor.name)
        return self._state.tenants[name]

    async def share(
        self,
        actor: Principal,
        partner: str,
        kind: str,
        resource_id: str,
        permission: Permission | str = P.VALUES_READ,
    ) -> ShareInfo:
        """Share one of the actor's tenant's records with a partner tenant.

        Kind "namespace" shares a subtree, read-only: the partner's principals that hold
        values:read in their own tenant may read it.
        """
        if kind not in SHARE_KINDS:
            raise ValueError(
                f"unknown share kind {kind!r}; known: {', '.join(sorted(SHARE_KINDS))}"
            )
        (permission,) = parse_permissions([permission])
        if permission is not P.VALUES_READ:
            raise ValueError("namespace subtrees are shared read-only: permission values:read")
        state = self._state
        resource_id = self._scope_in(actor.tenant, resource_id)
        self._require_manage(actor, actor.tenant, resource_id)
        target = state.tenants.get(partner)
        if target is None or target.kind is not TenantKind.PARTNER or partner == actor.tenant:
            raise LookupError(f"no partner tenant named {partner!r}")
        share = ShareInfo(actor.tenant, partner, kind, resource_id, permission)
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.add_share, share, now=self._now())
            await self._reload()
        _LOGGER.info("%s shared %s %s with %s", actor.name, kind, resource_id, partner)
        return share

    # -- users ----------------------------------------------------------------------------

    async def list_users(self, actor: Principal, tenant: str) -> list[UserInfo]:
        self._require_manage(actor, tenant, _ANY_SCOPE)
        return await asyncio.to_thread(_running(self._store).list_users, tenant)

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
        self._require_manage(actor, tenant, _ANY_SCOPE)
        scope = None if scope is None else self._scope_in(tenant, scope)
        self._require_manage(actor, tenant, scope)
        self._check_new_username(username)
        assignments = [RoleAssignment(self._role_in(tenant, r), scope) for r in roles]
        password_hash = await self._new_password_hash(username, password)
        store = _running(self._store)
        async with self._write_lock:
            user_id = await asyncio.to_thread(
                store.create_user, tenant, username, password_hash, assignments, now=self._now()
            )
            await self._reload()
        _LOGGER.info("User %s created in tenant %s by %s", username, tenant, actor.name)
        return self._state.users[user_id]

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
        target = self._user_in(actor.tenant, username)
        store = _running(self._store)
        keep: str | None = None
        if _is_self(actor, target):
            # Rate limited like a login: a stolen session must not become a password oracle.
            source = self._session_source(actor)
            creds, _ = await asyncio.to_thread(
                self._check_password, store, username, current_password or ""
            )
            if current_password is None or creds is None:
                _running(self._limiter).failed(target.username, source)
                raise AuthError("invalid_credentials", "the current password is wrong")
            keep = actor.token_id
        else:
            self._require_manage_user(actor, target)
        password_hash = await self._new_password_hash(target.username, new_password)
        now = self._now()
        async with self._write_lock:
            await asyncio.to_thread(store.set_password, target.id, password_hash, now=now)
            await self._end_sessions(store, target.id, now, keep=keep)
        _LOGGER.info("Password of %s changed by %s", target.username, actor.name)

    async def disable_user(self, actor: Principal, username: str, disabled: bool = True) -> None:
        """Disable (or re-enable) a user: its sessions end and its API keys stop working."""
        target = self._user_in(actor.tenant, username)
        if _is_self(actor, target):
            raise PermissionDenied("a user cannot disable or enable itself")
        self._require_manage_user(actor, target)
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.set_disabled, target.id, disabled)
            if disabled:
                await self._end_sessions(store, target.id, self._now())
            await self._reload()
        _LOGGER.info(
            "User %s %s by %s", target.username, "disabled" if disabled else "enabled", actor.name
        )

    # -- roles ----------------------------------------------------------------------------

    def list_roles(self, actor: Principal, tenant: str) -> list[RoleInfo]:
        """Built-in roles and the tenant's custom roles."""
        self._require_manage(actor, tenant, _ANY_SCOPE)
        builtin = [RoleInfo(None, name, perms) for name, perms in BUILTIN_ROLES.items()]
        custom = [
            RoleInfo(t, name, perms)
            for (t, name), perms in self._state.roles.items()
            if t == tenant
        ]
        return builtin + sorted(custom, key=lambda r: r.name)

    async def create_role(
        self, actor: Principal, tenant: str, name: str, permissions: Iterable[str]
    ) -> RoleInfo:
        """A custom role of `tenant` from named permissions; ValueError naming an unknown one."""
        self._require_manage(actor, tenant, None)
        if not _ROLE_NAME.fullmatch(name):
            raise ValueError(
                f"role name {name!r} is invalid: 1-64 lowercase letters, digits, '_' and '-'"
            )
        if name in BUILTIN_ROLES:
            raise Conflict(f"{name!r} is a built-in role; choose another name")
        if (tenant, name) in self._state.roles:
            raise Conflict(f"role {name!r} already exists in tenant {tenant!r}")
        perms = parse_permissions(permissions)
        if not perms:
            raise ValueError(f"role {name!r} has no permissions; name at least one")
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.create_role, tenant, name, perms, now=self._now())
            await self._reload()
        _LOGGER.info("Role %s created in tenant %s by %s", name, tenant, actor.name)
        return RoleInfo(tenant, name, perms)

    async def assign_role(
        self, actor: Principal, username: str, role: str, scope: str | None = None
    ) -> bool:
        """Give a user of the actor's tenant a role over `scope`; False if it had it already.

        Nobody changes their own roles (OWASP API3): another administrator must.
        """
        target, assignment = self._role_change(actor, username, role, scope)
        store = _running(self._store)
        async with self._write_lock:
            added = await asyncio.to_thread(
                store.add_assignment, target.id, target.tenant, assignment
            )
            await self._reload()
        if added:
            _LOGGER.info(
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
        """Take a role (at exactly this scope) from a user; False if it did not hold it."""
        target, assignment = self._role_change(actor, username, role, scope)
        store = _running(self._store)
        async with self._write_lock:
            removed = await asyncio.to_thread(
                store.remove_assignment, target.id, target.tenant, assignment
            )
            await self._reload()
        if removed:
            _LOGGER.info(
                "Role %s (scope %s) taken from %s by %s",
                assignment.role,
                assignment.scope or "*",
                target.username,
                actor.name,
            )
        return removed

    # -- API keys -------------------------------------------------------------------------

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
        user = self._acting_user(owner)
        if not _KEY_NAME.fullmatch(name.strip()):
            raise ValueError("API key name must be 1-64 characters without control characters")
        if not 1 <= expires_in_days <= MAX_API_KEY_DAYS:
            raise ValueError(
                f"API keys expire within 1 to {MAX_API_KEY_DAYS} days, not {expires_in_days}"
            )
        perms = parse_permissions(permissions)
        if not perms:
            raise ValueError("an API key needs at least one permission")
        scope = None if scope is None else self._scope_in(user.tenant, scope)
        own = self._state.grants.get(user.id, ())
        missing = sorted(p.value for p in perms if not _holds(own, user.tenant, p, scope))
        if missing:
            raise PermissionDenied(
                f"an API key cannot have permissions its owner lacks: {', '.join(missing)} "
                f"at {scope or 'the whole tenant'}"
            )
        now = self._now()
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
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.create_api_key, Hashed(info, token.hash))
            await self._reload()
        _LOGGER.info("API key %s (%s) created for %s", info.id, info.name, user.username)
        return token.token, info

    async def revoke_api_key(self, actor: Principal, key_id: str) -> None:
        """Revoke a key: one's own, or as an administrator any of the tenant's. Refused at once.

        A key the actor may not list is unknown to it (LookupError), not forbidden."""
        entry = self._state.keys.get(key_id)
        if entry is None or entry.info.tenant != actor.tenant:
            raise LookupError(f"no live API key {key_id!r}")
        owner = self._state.users.get(entry.info.owner_id)
        try:
            if owner is None:
                self._require_manage(actor, actor.tenant, None)
            elif not _is_self(actor, owner):
                self._require_manage_user(actor, owner)
        except PermissionDenied:
            # A key the actor may not list (list_api_keys) is unknown to it, not forbidden:
            # a 403 would tell that the key exists (OWASP API1).
            raise LookupError(f"no live API key {key_id!r}") from None
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.revoke_api_key, key_id, now=self._now())
            await self._reload()
        _LOGGER.info("API key %s revoked by %s", key_id, actor.name)

    async def list_api_keys(
        self, actor: Principal, *, username: str | None = None
    ) -> list[ApiKeyInfo]:
        """The keys of the acting user, or (as an administrator) of `username`; revoked and
        expired ones included, so that their history stays visible."""
        target = (
            self._acting_user(actor) if username is None else self._user_in(actor.tenant, username)
        )
        if not _is_self(actor, target):
            self._require_manage_user(actor, target)
        store = _running(self._store)
        keys = await asyncio.to_thread(store.list_api_keys, target.tenant, target.id)
        return [self._with_recent_use(k) for k in keys]

    # -- devices --------------------------------------------------------------------------

    async def create_device(
        self, actor: Principal, tenant: str, name: str, prefix: str
    ) -> tuple[str, DeviceInfo]:
        """A credential for a device that publishes below `prefix`; the token is shown once.

        A revoked device's name can be issued again; a live one's cannot (Conflict).
        """
        self._require_manage(actor, tenant, _ANY_SCOPE)
        prefix = self._scope_in(tenant, prefix)
        self._require_manage(actor, tenant, prefix)
        if not _DEVICE_NAME.fullmatch(name):
            raise ValueError(
                f"device name {name!r} is invalid: 1-64 letters, digits, '_', '.' and '-'"
            )
        if self._state.device_named(tenant, name) is not None:
            raise Conflict(f"device {name!r} already has a live credential; revoke it first")
        token = new_opaque_token(DEVICE_CREDENTIAL_PREFIX)
        info = DeviceInfo(token.id, name, tenant, prefix, self._now())
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.put_device, Hashed(info, token.hash))
            await self._reload()
        _LOGGER.info("Device %s created in %s (prefix %s) by %s", name, tenant, prefix, actor.name)
        return token.token, info

    async def revoke_device(self, actor: Principal, tenant: str, name: str) -> None:
        """Revoke a device credential; the next `authenticate_device` refuses it.

        One of another tenant or outside the actor's scope is unknown to it (LookupError)."""
        self._require_manage(actor, actor.tenant, _ANY_SCOPE)
        entry = self._state.device_named(tenant, name) if tenant == actor.tenant else None
        # A credential outside the actor's scope is not listed for it (list_devices) and so is
        # unknown to it, not forbidden: a 403 would tell that it exists (OWASP API1).
        if entry is None or not _manages(actor.grants, tenant, entry.info.prefix):
            raise LookupError(f"no live device credential {name!r} in tenant {actor.tenant!r}")
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.revoke_device, tenant, name, now=self._now())
            await self._reload()
        _LOGGER.info("Device %s of %s revoked by %s", name, tenant, actor.name)

    async def list_devices(self, actor: Principal, tenant: str) -> list[DeviceInfo]:
        """The tenant's device credentials whose prefix the actor manages, revoked ones too."""
        self._require_manage(actor, tenant, _ANY_SCOPE)
        devices = await asyncio.to_thread(_running(self._store).list_devices, tenant)
        return [d for d in devices if _manages(actor.grants, tenant, d.prefix)]

    # -- TOTP -----------------------------------------------------------------------------

    async def enable_totp(self, principal: Principal) -> TotpProvisioning:
        """Start enrolling the signed-in user in TOTP; in force after `confirm_totp`.

        A user already enrolled must be reset by an administrator first, so that a stolen
        session cannot move the second factor to the thief's phone.
        """
        user = self._acting_user(principal)
        if user.totp_enabled:
            raise PermissionDenied(
                "TOTP is already enabled for this user; an administrator must reset it first"
            )
        secret = new_totp_secret()
        blob = encrypt_secret(self._totp_key, secret, context=str(user.id))
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.set_totp, user.id, blob, enabled=False)
        return TotpProvisioning(secret, provisioning_uri(secret, user.username))

    async def confirm_totp(self, principal: Principal, code: str) -> None:
        """Put the pending TOTP secret in force, given a code from the authenticator app."""
        user = self._acting_user(principal)
        source = self._session_source(principal)
        store = _running(self._store)
        creds = await asyncio.to_thread(store.user_credentials, user.username)
        if creds is None or creds.totp_secret is None or creds.user.totp_enabled:
            raise ValueError("no TOTP enrolment is pending; call enable_totp first")
        step = self._totp_step(creds, code)
        async with self._write_lock:
            ok = step is not None and await asyncio.to_thread(
                store.use_totp_step, user.id, step, enable=True
            )
            if ok:
                await self._reload()
        if not ok:
            _running(self._limiter).failed(user.username, source)
            raise AuthError("invalid_totp", "invalid TOTP code")
        _LOGGER.info("TOTP enabled for %s", user.username)

    async def reset_totp(self, actor: Principal, username: str) -> None:
        """Remove a user's TOTP (a lost phone); an administrator's task, never one's own."""
        target = self._user_in(actor.tenant, username)
        if _is_self(actor, target):
            raise PermissionDenied("a user cannot reset its own TOTP; ask an administrator")
        self._require_manage_user(actor, target)
        store = _running(self._store)
        async with self._write_lock:
            await asyncio.to_thread(store.set_totp, target.id, None, enabled=False)
            await self._reload()
        _LOGGER.info("TOTP of %s reset by %s", target.username, actor.name)

    # -- internals: bootstrap, cache, housekeeping ----------------------------------------

    def _bootstrap_if_empty(self, store: SecurityStore) -> BootstrapResult | None:
        """On the very first start (no user at all): the default tenant and its administrator.

        The password goes to a file readable by the owner only, written before the user is
        stored: if storing fails, the next start simply tries again with a new password.
        """
        if store.count_users() > 0:
            return None
        now = self._now()
        password = generate_password()
        path = self._data_dir / INITIAL_ADMIN_FILE
        write_private_file(
            path,
            f"# Kiln initial administrator, created {now.isoformat()}\n"
            "# Sign in, change this password at once, then delete this file.\n"
            f"username: {BOOTSTRAP_ADMIN}\n"
            f"password: {password}\n",
        )
        # The tenant may be left by an earlier start that failed before creating the user.
        with suppress(Conflict):
            store.create_tenant(DEFAULT_TENANT, TenantKind.OWNER, self._bootstrap_roots, now=now)
        store.create_user(
            DEFAULT_TENANT,
            BOOTSTRAP_ADMIN,
            self._hashing.hash_password(password),
            [RoleAssignment("admin")],
            now=now,
        )
        _LOGGER.warning(
            "Created the first administrator %r; its password is in %s (change it, then delete "
            "the file)",
            BOOTSTRAP_ADMIN,
            path,
        )
        return BootstrapResult(BOOTSTRAP_ADMIN, password, path)

    async def _reload(self) -> None:
        """Replace the cache from the database (the caller holds the write lock, or is start)."""
        store = _running(self._store)
        snapshot = await asyncio.to_thread(store.load, self._now())
        self._state = _State.build(snapshot)
        self._sessions = {s.family_id: s for s in snapshot.sessions}

    async def _end_sessions(
        self, store: SecurityStore, user_id: int, now: datetime, *, keep: str | None = None
    ) -> None:
        ended = await asyncio.to_thread(store.revoke_user_sessions, user_id, now=now, keep=keep)
        for family in ended:
            self._sessions.pop(family, None)

    async def _housekeeping(self, clock: Clock) -> None:
        """Purge ended sessions and write down when API keys were last used, every minute."""
        while True:
            await clock.sleep(_HOUSEKEEPING_S)
            async with self._write_lock:
                store = self._store
                if store is None:
                    return
                used, self._key_last_used = self._key_last_used, {}
                now = self._now()
                await asyncio.to_thread(store.touch_api_keys, used)
                purged = await asyncio.to_thread(store.purge_refresh_tokens, now)
                for family, session in list(self._sessions.items()):
                    if session.expires_at <= now:
                        del self._sessions[family]
            if purged:
                _LOGGER.debug("Purged %d refresh tokens of ended sessions", purged)

    def _stamp(self) -> int | None:
        try:
            return (self._data_dir / CHANGE_STAMP_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    async def _follow_changes(self, clock: Clock) -> None:
        """Reload when another process marked a change (`mark_changed`): a device revoked
        with `kiln admin devices revoke` is refused by a running server within a second."""
        seen = self._stamp()
        while True:
            await clock.sleep(_FOLLOW_S)
            now = self._stamp()
            if now == seen:
                continue
            seen = now
            async with self._write_lock:
                if self._store is None:  # stopped while this task slept
                    return
                await self._reload()
            _LOGGER.info("Identity reloaded: changed by another process")

    # -- internals: authentication --------------------------------------------------------

    def _check_password(
        self, store: SecurityStore, username: str, password: str
    ) -> tuple[UserCredentials | None, str | None]:
        """(credentials, new hash if the stored one should be replaced); credentials None when
        the user or the password is wrong. Runs in a worker thread: argon2 is slow on purpose."""
        creds = store.user_credentials(username)
        if creds is None:
            self._hashing.dummy_verify(password)
            return None, None
        if not self._hashing.verify_password(creds.password_hash, password):
            return None, None
        rehash = None
        if self._hashing.needs_rehash(creds.password_hash):
            rehash = self._hashing.hash_password(password)
        return creds, rehash

    def _totp_step(self, creds: UserCredentials, code: str) -> int | None:
        if creds.totp_secret is None:
            return None
        try:
            secret = decrypt_secret(self._totp_key, creds.totp_secret, context=str(creds.user.id))
        except TotpSecretError:
            _LOGGER.error(
                "The TOTP secret of %s cannot be decrypted (was the install secret replaced?); "
                "an administrator must reset its TOTP",
                creds.user.username,
            )
            return None
        return verify_totp(
            secret, code, now_s=self._now_us() / 1_000_000, last_used_step=creds.totp_last_step
        )

    def _session_source(self, principal: Principal) -> str:
        """The rate limiter's source for guesses made within a session; raises AuthError if
        that user name or session is locked out."""
        source = f"session:{principal.token_id}"
        wait = _running(self._limiter).check(principal.user or principal.name, source)
        if wait is not None:
            raise AuthError(
                "rate_limited",
                f"too many failed attempts; try again in {ceil(wait)} s",
                retry_after_s=wait,
            )
        return source

    def _access_token(self, user: UserInfo, session_id: str) -> str:
        return issue_access_token(
            self._jwt_key,
            subject=str(user.id),
            tenant=user.tenant,
            kind="user",
            ttl_s=self._access_ttl_s,
            now_us=self._now_us(),
            extra={"sid": session_id},
        )

    def _authenticate_key(self, token: str) -> Principal:
        try:
            token_id, presented = parse_opaque_token(token, API_KEY_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        state = self._state
        entry = state.keys.get(token_id)
        if entry is None or not hashes_match(entry.token_hash, presented):
            raise AuthError("invalid_token", _BAD_TOKEN)
        key = entry.info
        now = self._now()
        owner = state.users.get(key.owner_id)
        if key.expires_at <= now or owner is None or owner.disabled:
            raise AuthError("invalid_token", _BAD_TOKEN)
        self._key_last_used[key.id] = now
        return Principal(
            kind=PrincipalKind.APIKEY,
            id=key.id,
            name=key.name,
            tenant=key.tenant,
            grants=_key_grants(key, state.grants.get(owner.id, ())),
            token_id=key.id,
            user=owner.username,
            namespace=state.namespace,
        )

    # -- internals: authorization ---------------------------------------------------------

    def _require_manage(self, actor: Principal, tenant: str, scope: str | _Any | None) -> None:
        """Refuse unless `actor` holds users:manage in its own tenant `tenant`, over `scope`
        (None: the whole tenant; _ANY_SCOPE: anywhere in it)."""
        if actor.kind is PrincipalKind.DEVICE or actor.tenant != tenant:
            raise PermissionDenied(f"{actor.name} may not manage tenant {tenant!r}")
        if isinstance(scope, _Any):
            ok = any(g.tenant == tenant and P.USERS_MANAGE in g.permissions for g in actor.grants)
        else:
            ok = _manages(actor.grants, tenant, scope)
        if not ok:
            where = "" if isinstance(scope, _Any) else f" over {scope or 'the whole tenant'}"
            raise PermissionDenied(
                f"{actor.name} lacks {P.USERS_MANAGE.value} in tenant {tenant!r}{where}"
            )

    def _require_manage_user(self, actor: Principal, target: UserInfo) -> None:
        """An administrator manages a user only if it manages every scope the user holds a role
        at: an administrator of one line cannot take over the plant's administrator."""
        self._require_manage(actor, target.tenant, _ANY_SCOPE)
        for assignment in target.roles:
            self._require_manage(actor, target.tenant, assignment.scope)

    def _role_change(
        self, actor: Principal, username: str, role: str, scope: str | None
    ) -> tuple[UserInfo, RoleAssignment]:
        target = self._user_in(actor.tenant, username)
        if _is_self(actor, target):
            raise PermissionDenied("nobody changes their own roles; ask another administrator")
        scope = None if scope is None else self._scope_in(target.tenant, scope)
        self._require_manage(actor, target.tenant, scope)
        return target, RoleAssignment(self._role_in(target.tenant, role), scope)

    def _acting_user(self, principal: Principal) -> UserInfo:
        """The user behind a principal signed in as a user (not an API key, not a device)."""
        user = self._state.users.get(_int(principal.id))
        if principal.kind is not PrincipalKind.USER or user is None or user.disabled:
            raise PermissionDenied("only a signed-in user may do this")
        return user

    def _user_in(self, tenant: str, username: str) -> UserInfo:
        """A user of `tenant`. Users of other tenants are reported as unknown, not forbidden:
        an administrator must not learn which names exist elsewhere."""
        user = self._state.users.get(self._state.user_ids.get(username_key(username), -1))
        if user is None or user.tenant != tenant:
            raise LookupError(f"no user {username!r} in tenant {tenant!r}")
        return user

    def _role_in(self, tenant: str, role: str) -> str:
        if role in BUILTIN_ROLES or (tenant, role) in self._state.roles:
            return role
        known = sorted(set(BUILTIN_ROLES) | {n for t, n in self._state.roles if t == tenant})
        raise ValueError(f"unknown role {role!r}; roles of tenant {tenant!r}: {', '.join(known)}")

    def _scope_in(self, tenant: str, scope: str) -> str:
        """`scope` as a valid namespace prefix inside `tenant`'s namespace."""
        normalized = _prefix(scope, "scope")
        owner = self._state.namespace.tenant_of(normalized)
        if owner != tenant:
            raise ValueError(f"{normalized!r} is not in the namespace of tenant {tenant!r}")
        return normalized

    def _check_roots_free(self, roots: Sequence[str]) -> None:
        taken = [(root, t) for root, t in self._state.namespace.roots]
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

    def _check_new_username(self, username: str) -> None:
        if not _USERNAME.fullmatch(username):
            raise ValueError(
                f"user name {username!r} is invalid: 1-64 letters, digits, '_', '.', '@' and '-'"
            )
        if username_key(username) in self._state.user_ids:
            raise Conflict(f"user {username!r} already exists")

    async def _new_password_hash(self, username: str, password: str) -> str:
        check_policy(password, username)
        return await asyncio.to_thread(self._hashing.hash_password, password)

    def _with_recent_use(self, key: ApiKeyInfo) -> ApiKeyInfo:
        recent = self._key_last_used.get(key.id)
        if recent is None or (key.last_used_at is not None and key.last_used_at >= recent):
            return key
        return replace(key, last_used_at=recent)

    def _now_us(self) -> int:
        return _running(self._clock).now_us()

    def _now(self) -> datetime:
        return us_to_datetime(self._now_us())


# -- the cache ------------------------------------------------------------------------------


class _Any:
    """Marks "at any scope" where a scope or None (the whole tenant) is expected."""


_ANY_SCOPE = _Any()


@dataclass(frozen=True, slots=True)
class _State:
    tenants: dict[str, TenantInfo]
    namespace: TenantMap
    users: dict[int, UserInfo]
    user_ids: dict[str, int]  # by username_key
    roles: dict[tuple[str, str], frozenset[Permission]]  # custom roles by (tenant, name)
    keys: dict[str, Hashed[ApiKeyInfo]]  # live keys by id
    devices: dict[str, Hashed[DeviceInfo]]  # live credentials by id
    grants: dict[int, tuple[Grant, ...]]  # by user id

    @classmethod
    def build(cls, snapshot: Snapshot) -> _State:
        tenants = {t.name: t for t in snapshot.tenants}
        roles = {(r.tenant, r.name): r.permissions for r in snapshot.roles if r.tenant}
        shares: dict[str, list[ShareInfo]] = {}
        for share in snapshot.shares:
            shares.setdefault(share.partner, []).append(share)
        grants = {u.id: _user_grants(u, roles, shares.get(u.tenant, ())) for u in snapshot.users}
        return cls(
            tenants=tenants,
            namespace=TenantMap.build((r, t.name) for t in snapshot.tenants for r in t.roots),
            users={u.id: u for u in snapshot.users},
            user_ids={username_key(u.username): u.id for u in snapshot.users},
            roles=roles,
            keys={k.info.id: k for k in snapshot.api_keys},
            devices={d.info.id: d for d in snapshot.devices},
            grants=grants,
        )

    def device_named(self, tenant: str, name: str) -> Hashed[DeviceInfo] | None:
        for entry in self.devices.values():
            if entry.info.tenant == tenant and entry.info.name == name:
                return entry
        return None


def _user_grants(
    user: UserInfo,
    roles: dict[tuple[str, str], frozenset[Permission]],
    shares: Sequence[ShareInfo],
) -> tuple[Grant, ...]:
    """The user's role assignments as grants, plus the subtrees shared with its tenant for the
    permissions it holds there (a partner's viewer reads what is shared; its admin need not)."""
    own: list[Grant] = []
    for assignment in user.roles:
        perms = BUILTIN_ROLES.get(assignment.role) or roles.get((user.tenant, assignment.role))
        if perms:
            own.append(Grant(user.tenant, perms, assignment.scope))
    held = {p for g in own for p in g.permissions}
    shared = [
        Grant(s.owner, frozenset({s.permission}), s.resource_id)
        for s in shares
        if s.kind == "namespace" and s.permission in held
    ]
    return tuple(own + shared)


def _key_grants(key: ApiKeyInfo, owner: tuple[Grant, ...]) -> tuple[Grant, ...]:
    """What a key may do now: its permissions that its owner still holds at its scope, so that
    taking a role from a user shrinks the user's keys at once."""
    perms = frozenset(p for p in key.permissions if _holds(owner, key.tenant, p, key.scope))
    if not perms:
        return ()
    grants = [Grant(key.tenant, perms, key.scope)]
    if key.scope is None:  # a partner's integration reads what is shared with its tenant
        grants += [
            Grant(g.tenant, g.permissions & perms, g.scope)
            for g in owner
            if g.tenant != key.tenant and g.permissions & perms
        ]
    return tuple(grants)


def _holds(grants: Iterable[Grant], tenant: str, permission: Permission, scope: str | None) -> bool:
    """Whether `grants` give `permission` everywhere in `scope` (None: the whole tenant)."""
    return any(
        g.tenant == tenant
        and permission in g.permissions
        and (g.scope is None or (scope is not None and path_has_prefix(scope, g.scope)))
        for g in grants
    )


def _manages(grants: Iterable[Grant], tenant: str, scope: str | None) -> bool:
    return _holds(grants, tenant, P.USERS_MANAGE, scope)


def _is_self(actor: Principal, user: UserInfo) -> bool:
    """Whether `actor` is `user`, signed in or through one of its API keys."""
    if actor.kind is PrincipalKind.USER:
        return actor.id == str(user.id)
    return actor.kind is PrincipalKind.APIKEY and actor.user == user.username


def _running(value: _T | None) -> _T:
    if value is None:
        raise RuntimeError("the identity service is not running: start the platform first")
    return value


def _open(store: SecurityStore, data_dir: Path, hashing: PasswordHashing) -> bytes:
    store.upgrade()
    # The dummy hash for unknown users is made now, so that the first such login does not
    # take twice as long as a wrong password and give the difference away.
    hashing.dummy_verify("")
    return load_or_create_secret(data_dir)


def _start_session(
    store: SecurityStore,
    token_id: str,
    token_hash: str,
    session: SessionInfo,
    now: datetime,
    new_hash: str | None,
) -> None:
    store.add_refresh_token(
        token_id,
        token_hash,
        family_id=session.family_id,
        user_id=session.user_id,
        now=now,
        expires_at=session.expires_at,
    )
    store.record_login(session.user_id, now=now, password_hash=new_hash)


def _prefix(value: str, what: str) -> str:
    """A namespace prefix: a path that may have a single segment (a root such as "acme")."""
    stripped = value.strip().strip("/")
    try:
        # A prefix is a path without its last segment; check it as one with a placeholder.
        validate_path(f"{stripped}/x")
    except ValueError as err:
        raise ValueError(f"{what} {value!r} is not a namespace path: {err}") from None
    return stripped


def _root(value: str) -> str:
    return ANY_ROOT if value.strip() == ANY_ROOT else _prefix(value, "namespace root")


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1
