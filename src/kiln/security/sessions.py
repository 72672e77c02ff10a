"""Signing in: logins, refresh-token rotation, logouts, bearer and device authentication,
and the principals of those who act without a session (the local operator, `kiln admin`).

IEC 62443-4-2 CR 1.1 and CR 1.2 (authentication of people and of devices), CR 1.11
(unsuccessful login attempts are rate limited); OWASP API Security Top 10 API2 (broken
authentication). Secrets never reach the log: not passwords, not tokens, not TOTP secrets.
"""

from __future__ import annotations

import asyncio
import secrets as _random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from typing import TypeVar

from kiln.security.cache import IdentityCache
from kiln.security.grants import key_grants
from kiln.security.guards import user_id
from kiln.security.permissions import BUILTIN_ROLES, Grant
from kiln.security.principal import AuthError, Principal, PrincipalKind
from kiln.security.runtime import LOGGER, IdentityRuntime, running
from kiln.security.store import (
    Hashed,
    Rotation,
    SecurityStore,
    SessionInfo,
    UserCredentials,
    UserInfo,
    username_key,
)
from kiln.security.tenancy import DEFAULT_TENANT
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
from kiln.security.totp import TotpSecretError, decrypt_secret, verify_totp

# One message for an unknown user, a wrong password and a disabled account: no enumeration.
_BAD_LOGIN = "invalid username or password"
_BAD_TOKEN = "invalid or expired credentials"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or a refresh hands out. `expires_in` is the access token's lifetime in s."""

    access: str = field(repr=False)
    refresh: str = field(repr=False)
    expires_in: int
    token_type: str = "Bearer"


class Sessions:
    """Starts, rotates and ends user sessions and turns credentials into principals.

    The methods named like `Identity`'s are its (it documents them and delegates to them);
    `check_password`, `totp_step`, `session_source` and `end_sessions` serve `Accounts` too.
    """

    def __init__(self, rt: IdentityRuntime, *, access_ttl_s: int, refresh_ttl: timedelta) -> None:
        self._rt = rt
        self._access_ttl_s = access_ttl_s
        self._refresh_ttl = refresh_ttl

    async def login(
        self, username: str, password: str, *, totp: str | None = None, source: str
    ) -> TokenPair:
        """Check a user's password (and TOTP code, if enrolled) and start a session."""
        rt = self._rt
        limiter = running(rt.limiter)
        wait = limiter.check(username, source)
        if wait is not None:
            raise AuthError(
                "rate_limited",
                f"too many failed logins; try again in {ceil(wait)} s",
                retry_after_s=wait,
            )
        store = running(rt.store)
        creds, new_hash = await asyncio.to_thread(self.check_password, store, username, password)
        if creds is None or creds.user.disabled:
            limiter.failed(username, source)
            raise AuthError("invalid_credentials", _BAD_LOGIN)
        user = creds.user
        if user.totp_enabled:
            if totp is None:
                raise AuthError("totp_required", "this account needs a TOTP code")
            step = self.totp_step(creds, totp)
            async with rt.write_lock:
                fresh = step is not None and await asyncio.to_thread(
                    store.use_totp_step, user.id, step
                )
            if not fresh:
                limiter.failed(username, source)
                raise AuthError("invalid_totp", "invalid TOTP code")
        limiter.succeeded(username, source)
        now = rt.now()
        refresh = new_opaque_token(REFRESH_TOKEN_PREFIX)
        session = SessionInfo(_random.token_hex(16), user.id, now + self._refresh_ttl)
        async with rt.write_lock:
            await asyncio.to_thread(
                _start_session, store, refresh.id, refresh.hash, session, now, new_hash
            )
            rt.live_sessions[session.family_id] = session
        LOGGER.info("User %s logged in from %s", user.username, source)
        return TokenPair(
            self._access_token(user, session.family_id), refresh.token, self._access_ttl_s
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; a used one presented again revokes its whole session."""
        rt = self._rt
        store = running(rt.store)
        try:
            token_id, presented = parse_opaque_token(refresh_token, REFRESH_TOKEN_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        successor = new_opaque_token(REFRESH_TOKEN_PREFIX)
        async with rt.write_lock:
            result = await asyncio.to_thread(
                store.rotate_refresh_token,
                token_id,
                presented,
                now=rt.now(),
                new_id=successor.id,
                new_hash=successor.hash,
            )
            if result.family_id is not None and result.outcome is not Rotation.ROTATED:
                rt.live_sessions.pop(result.family_id, None)
        user = rt.cache.users.get(result.user_id or -1)
        if result.outcome is Rotation.REUSED:
            LOGGER.warning(
                "A used refresh token of user %s was presented again; the session is revoked "
                "because the token is presumed stolen",
                user.username if user else result.user_id,
            )
        family = result.family_id
        if result.outcome is not Rotation.ROTATED or user is None or family is None:
            raise AuthError("invalid_token", _BAD_TOKEN)
        if user.disabled or family not in rt.live_sessions:
            raise AuthError("invalid_token", _BAD_TOKEN)
        return TokenPair(self._access_token(user, family), successor.token, self._access_ttl_s)

    async def logout(self, credential: str | Principal) -> None:
        """End a session; unknown tokens are ignored."""
        rt = self._rt
        store = running(rt.store)
        now = rt.now()
        if isinstance(credential, Principal):
            if credential.kind is not PrincipalKind.USER or credential.token_id is None:
                raise ValueError(
                    "only a user's session can be logged out; revoke an API key or a device "
                    "credential instead"
                )
            async with rt.write_lock:
                await asyncio.to_thread(store.revoke_families, [credential.token_id], now=now)
                rt.live_sessions.pop(credential.token_id, None)
            return
        try:
            token_id, presented = parse_opaque_token(credential, REFRESH_TOKEN_PREFIX)
        except InvalidToken:
            return
        async with rt.write_lock:
            family = await asyncio.to_thread(store.revoke_family_of, token_id, presented, now=now)
            if family is not None:
                rt.live_sessions.pop(family, None)

    async def end_sessions(
        self, store: SecurityStore, user: int, now: datetime, *, keep: str | None = None
    ) -> None:
        """End every session of a user but `keep` (the caller holds the write lock)."""
        ended = await asyncio.to_thread(store.revoke_user_sessions, user, now=now, keep=keep)
        for family in ended:
            self._rt.live_sessions.pop(family, None)

    async def authenticate_bearer(self, token: str) -> Principal:
        """The principal of an access token or an API key; AuthError("invalid_token") else."""
        if token.startswith(API_KEY_PREFIX + "_"):
            return self._authenticate_key(token)
        rt = self._rt
        try:
            claims = decode_access_token(rt.jwt_key, token, now_us=rt.now_us())
        except InvalidToken as err:
            LOGGER.debug("Access token refused: %s", err.reason.value)
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        cache = rt.cache
        user = cache.users.get(user_id(claims.subject))
        sid = claims.extra.get("sid")
        session = rt.live_sessions.get(sid) if isinstance(sid, str) else None
        if (
            claims.kind != "user"
            or user is None
            or user.disabled
            or user.tenant != claims.tenant
            or session is None
            or session.user_id != user.id
            or session.expires_at <= rt.now()
        ):
            raise AuthError("invalid_token", _BAD_TOKEN)
        return _user_principal(cache, user, token_id=session.family_id)

    async def authenticate_device(self, token: str) -> Principal:
        """The principal of a live device credential, answered from memory."""
        cache = self._rt.cache
        device = _presented(cache.devices, token, DEVICE_CREDENTIAL_PREFIX)
        return Principal(
            kind=PrincipalKind.DEVICE,
            id=device.id,
            name=device.name,
            tenant=device.tenant,
            device_prefix=device.prefix,
            token_id=device.id,
            namespace=cache.namespace,
        )

    # -- principals without a session -----------------------------------------------------

    def local_operator(self, name: str) -> Principal:
        """The principal of the local operator `name`: a tenant-wide administrator of the
        default tenant (`Identity.local_operator` says why)."""
        return Principal(
            kind=PrincipalKind.USER,
            id=f"local:{name}",  # never a user id, so never "oneself" of any user
            name=name,
            tenant=DEFAULT_TENANT,
            grants=(Grant(DEFAULT_TENANT, BUILTIN_ROLES["admin"]),),
            namespace=self._rt.cache.namespace,
        )

    def principal_of(self, username: str) -> Principal:
        """A user's principal without a session; LookupError for an unknown or disabled user."""
        cache = self._rt.cache
        user = cache.users.get(cache.user_ids.get(username_key(username), -1))
        if user is None or user.disabled:
            raise LookupError(f"no enabled user {username!r}")
        return _user_principal(cache, user)

    # -- helpers of the other collaborators -----------------------------------------------

    def check_password(
        self, store: SecurityStore, username: str, password: str
    ) -> tuple[UserCredentials | None, str | None]:
        """(credentials, new hash if the stored one should be replaced); credentials None when
        the user or the password is wrong. Runs in a worker thread: argon2 is slow on purpose."""
        hashing = self._rt.hashing
        creds = store.user_credentials(username)
        if creds is None:
            hashing.dummy_verify(password)
            return None, None
        if not hashing.verify_password(creds.password_hash, password):
            return None, None
        rehash = None
        if hashing.needs_rehash(creds.password_hash):
            rehash = hashing.hash_password(password)
        return creds, rehash

    def totp_step(self, creds: UserCredentials, code: str) -> int | None:
        """The time step `code` is valid for, or None (wrong, reused, or no secret)."""
        if creds.totp_secret is None:
            return None
        try:
            secret = decrypt_secret(
                self._rt.totp_key, creds.totp_secret, context=str(creds.user.id)
            )
        except TotpSecretError:
            LOGGER.error(
                "The TOTP secret of %s cannot be decrypted (was the install secret replaced?); "
                "an administrator must reset its TOTP",
                creds.user.username,
            )
            return None
        return verify_totp(
            secret, code, now_s=self._rt.now_us() / 1_000_000, last_used_step=creds.totp_last_step
        )

    def session_source(self, principal: Principal) -> str:
        """The rate limiter's source for guesses made within a session; raises AuthError if
        that user name or session is locked out."""
        source = f"session:{principal.token_id}"
        wait = running(self._rt.limiter).check(principal.user or principal.name, source)
        if wait is not None:
            raise AuthError(
                "rate_limited",
                f"too many failed attempts; try again in {ceil(wait)} s",
                retry_after_s=wait,
            )
        return source

    def _access_token(self, user: UserInfo, session_id: str) -> str:
        return issue_access_token(
            self._rt.jwt_key,
            subject=str(user.id),
            tenant=user.tenant,
            kind="user",
            ttl_s=self._access_ttl_s,
            now_us=self._rt.now_us(),
            extra={"sid": session_id},
        )

    def _authenticate_key(self, token: str) -> Principal:
        cache = self._rt.cache
        key = _presented(cache.keys, token, API_KEY_PREFIX)
        now = self._rt.now()
        owner = cache.users.get(key.owner_id)
        if key.expires_at <= now or owner is None or owner.disabled:
            raise AuthError("invalid_token", _BAD_TOKEN)
        self._rt.key_last_used[key.id] = now
        return Principal(
            kind=PrincipalKind.APIKEY,
            id=key.id,
            name=key.name,
            tenant=key.tenant,
            grants=key_grants(key, cache.grants.get(owner.id, ())),
            token_id=key.id,
            user=owner.username,
            namespace=cache.namespace,
        )


def _presented(entries: dict[str, Hashed[_T]], token: str, prefix: str) -> _T:
    """The record of the live credential `token` (an opaque token with `prefix`) among
    `entries`; AuthError("invalid_token") if it is malformed, unknown or its secret is wrong."""
    try:
        token_id, presented = parse_opaque_token(token, prefix)
    except InvalidToken:
        raise AuthError("invalid_token", _BAD_TOKEN) from None
    entry = entries.get(token_id)
    if entry is None or not hashes_match(entry.token_hash, presented):
        raise AuthError("invalid_token", _BAD_TOKEN)
    return entry.info


def _user_principal(
    cache: IdentityCache, user: UserInfo, *, token_id: str | None = None
) -> Principal:
    """A user's principal with its grants; `token_id` is its session, if it has one."""
    return Principal(
        kind=PrincipalKind.USER,
        id=str(user.id),
        name=user.username,
        tenant=user.tenant,
        grants=cache.grants.get(user.id, ()),
        token_id=token_id,
        user=user.username,
        namespace=cache.namespace,
    )


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
