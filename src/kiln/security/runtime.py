"""What the identity service's collaborators share while it runs.

The database is the source of truth at start; afterwards authentication is answered from
memory. Writes go to the database first, in a worker thread, one writer at a time, and the
cache follows before the call returns: a revoked credential is refused by the very next check.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TypeVar

from kiln.core.clock import Clock, us_to_datetime
from kiln.security.cache import IdentityCache
from kiln.security.passwords import PasswordHashing, check_policy
from kiln.security.ratelimit import LoginLimiter
from kiln.security.store import SecurityStore, SessionInfo

_T = TypeVar("_T")

# One log for the whole identity service, whichever part writes, under the name it has always
# had: operators filter on it (the log format shows it).
LOGGER = logging.getLogger("kiln.security.service")


class IdentityRuntime:
    """The store, the caches, the write lock and the derived keys of one identity service.

    `Identity.start` fills in the store, the limiter, the keys and (if none was given) the
    clock; the collaborators (sessions, accounts, credentials, tenancy) read them at each call.
    """

    def __init__(self, clock: Clock | None, hashing: PasswordHashing) -> None:
        self.clock = clock
        self.hashing = hashing
        self.store: SecurityStore | None = None
        self.limiter: LoginLimiter | None = None
        self.jwt_key = b""
        self.totp_key = b""
        self.cache = IdentityCache.empty()
        # Live sessions by refresh token family: an access token is good only while its
        # session is, so a logout or a password change ends it at once.
        self.live_sessions: dict[str, SessionInfo] = {}
        self.key_last_used: dict[str, datetime] = {}
        # One writer at a time: every write replaces the cache from the database afterwards.
        self.write_lock = asyncio.Lock()

    async def reload(self) -> None:
        """Replace the cache from the database (the caller holds the write lock, or is start)."""
        store = running(self.store)
        snapshot = await asyncio.to_thread(store.load, self.now())
        self.cache = IdentityCache.build(snapshot)
        self.live_sessions = {s.family_id: s for s in snapshot.sessions}

    async def new_password_hash(self, username: str, password: str) -> str:
        """The hash of a new password, after the password policy has accepted it."""
        check_policy(password, username)
        return await asyncio.to_thread(self.hashing.hash_password, password)

    def now_us(self) -> int:
        """The clock's time in microseconds since the epoch."""
        return running(self.clock).now_us()

    def now(self) -> datetime:
        """The clock's time as an aware datetime."""
        return us_to_datetime(self.now_us())


def running(value: _T | None) -> _T:
    """`value`, which only a started identity service has; RuntimeError if it is missing."""
    if value is None:
        raise RuntimeError("the identity service is not running: start the platform first")
    return value
