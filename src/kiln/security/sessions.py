"""Signing in: logins, refresh-token rotation, logouts, bearer and device authentication.

IEC 62443-4-2 CR 1.1 and CR 1.2 (authentication of people and of devices), CR 1.11
(unsuccessful login attempts are rate limited); OWASP API Security Top 10 API2 (broken
authentication). Secrets never reach the log: not passwords, not tokens, not TOTP secrets.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as _random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil

from kiln.security.grants import key_grants
from kiln.security.guards import user_id
from kiln.security.principal import AuthError, Principal, PrincipalKind
from kiln.security.runtime import IdentityRuntime, running
from kiln.security.store import (
    Rotation,
    SecurityStore,
    SessionInfo,
    UserCredentials,
    UserInfo,
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
from kiln.security.totp import TotpSecretError, decrypt_secret, verify_totp

_LOGGER = logging.getLogger(__name__)

# One message for an unknown user, a wrong password and a disabled account: no enumeration.
_BAD_LOGIN = "invalid username or password"
_BAD_TOKEN = "invalid or expired credentials"


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or a refresh hands out. `expires_in` is the access token's lifetime in s."""

    access: str = field(repr=False)
    refresh: str = field(repr=False)
    expires_in: int
    token_type: str = "Bearer"


class Sessions:
    """Starts, rotates and ends user sessions and turns credentials into principals."""

    def __init__(self, rt: IdentityRuntime, *, access_ttl_s: int, refresh_ttl: timedelta) -> None:
        self._rt = rt
        self._access_ttl_s = access_ttl_s
        self._refresh_ttl = refresh_ttl

    async def login(
        self, username: str, password: str, *, totp: str | None = None, source: str
    ) -> TokenPair:
        """Check a user's password (and TOTP code, if enrolled) and start a session.

        Raises AuthError: "rate_limited" after too many failures for this user name or source,
        "invalid_credentials" (the same message and about the same time for an unknown user, a
        wrong password and a disabled account), "totp_required", "invalid_totp".
        """
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
        _LOGGER.info("User %s logged in from %s", user.username, source)
        return TokenPair(
            self._access_token(user, session.family_id), refresh.token, self._access_ttl_s
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new access token and a new refresh token for a valid refresh token.

        The presented token is used up. Presenting it again revokes the whole session: one of
        the two presenters is a thief, and the service cannot tell which.
        """
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
            _LOGGER.warning(
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
        """End a session, given its refresh token or the principal of one of its access tokens.

        Unknown tokens are ignored: logging out twice is not an error.
        """
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
        """The principal of an access token (a JWT of a live session) or of an API key.

        Raises AuthError("invalid_token") for anything else, without saying why (the reason is
        logged at debug level).
        """
        if token.startswith(API_KEY_PREFIX + "_"):
            return self._authenticate_key(token)
        rt = self._rt
        try:
            claims = decode_access_token(rt.jwt_key, token, now_us=rt.now_us())
        except InvalidToken as err:
            _LOGGER.debug("Access token refused: %s", err.reason.value)
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
        return Principal(
            kind=PrincipalKind.USER,
            id=str(user.id),
            name=user.username,
            tenant=user.tenant,
            grants=cache.grants.get(user.id, ()),
            token_id=session.family_id,
            user=user.username,
            namespace=cache.namespace,
        )

    async def authenticate_device(self, token: str) -> Principal:
        """The principal of a device credential; AuthError("invalid_token") if it is unknown
        or revoked. Answered from memory: revocation updates it before returning."""
        try:
            token_id, presented = parse_opaque_token(token, DEVICE_CREDENTIAL_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        cache = self._rt.cache
        entry = cache.devices.get(token_id)
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
            namespace=cache.namespace,
        )

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
            _LOGGER.error(
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
        try:
            token_id, presented = parse_opaque_token(token, API_KEY_PREFIX)
        except InvalidToken:
            raise AuthError("invalid_token", _BAD_TOKEN) from None
        cache = self._rt.cache
        entry = cache.keys.get(token_id)
        if entry is None or not hashes_match(entry.token_hash, presented):
            raise AuthError("invalid_token", _BAD_TOKEN)
        key = entry.info
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
