"""Login throttling per user name and per source address (IEC 62443-4-2 CR 1.11).

After `per_user` failures for one user name within `window_s` seconds, that name is locked for
`lockout_s`; likewise `per_source` failures from one address. Counting both stops guessing one
account from many addresses and spraying many accounts from one. Time is the injected clock's
monotonic seconds, so tests drive it exactly with `FakeClock`.

State is in memory and bounded: at most `max_entries` user names and addresses together; the
least recently touched are forgotten first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from kiln.core.clock import Clock

_LOGGER = logging.getLogger(__name__)

_Key = tuple[Literal["user", "source"], str]


@dataclass(slots=True)
class _Entry:
    # At most limit - 1 times are kept: the limit-th failure locks and clears them.
    failures: deque[float] = field(default_factory=deque)
    locked_until: float | None = None


class LoginLimiter:
    """Counts failed logins on a sliding window and says how long a caller must wait."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_user: int = 5,
        per_source: int = 20,
        window_s: float = 300.0,
        lockout_s: float = 300.0,
        max_entries: int = 10_000,
    ) -> None:
        if per_user < 1 or per_source < 1 or max_entries < 2:
            raise ValueError("limits must be at least 1 and max_entries at least 2")
        if window_s <= 0 or lockout_s <= 0:
            raise ValueError("window_s and lockout_s must be positive")
        self._clock = clock
        self._per_user = per_user
        self._per_source = per_source
        self._window_s = window_s
        self._lockout_s = lockout_s
        self._max_entries = max_entries
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    def __len__(self) -> int:
        """How many user names and sources are tracked."""
        return len(self._entries)

    def check(self, username: str, source: str) -> float | None:
        """Seconds to wait before this user name may try from this source, or None if allowed.

        Call before verifying the password, so a locked account costs no hashing.
        """
        now = self._clock.monotonic()
        wait = 0.0
        for key in (_user_key(username), _source_key(source)):
            entry = self._entries.get(key)
            if entry is not None and entry.locked_until is not None:
                wait = max(wait, entry.locked_until - now)
        return wait if wait > 0 else None

    def failed(self, username: str, source: str) -> None:
        """Record a failed login (wrong password, unknown user or wrong TOTP code alike)."""
        now = self._clock.monotonic()
        self._count(_user_key(username), self._per_user, now)
        self._count(_source_key(source), self._per_source, now)

    def succeeded(self, username: str, source: str) -> None:
        """Forget the user name's failures after a successful login.

        The source's failures stay: otherwise an attacker holding one valid account could log
        into it between guesses at others and never reach the source limit.
        """
        self._entries.pop(_user_key(username), None)

    def _count(self, key: _Key, limit: int, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if entry.locked_until is not None:
            if now < entry.locked_until:
                return  # already locked; a failure the caller let through does not extend it
            entry.locked_until = None
        while entry.failures and entry.failures[0] <= now - self._window_s:
            entry.failures.popleft()
        entry.failures.append(now)
        if len(entry.failures) >= limit:
            entry.failures.clear()
            entry.locked_until = now + self._lockout_s
            _LOGGER.warning(
                "login locked for %s %r for %.0f s after %d failures in %.0f s",
                key[0],
                key[1],
                self._lockout_s,
                limit,
                self._window_s,
            )


def _user_key(username: str) -> _Key:
    # Folded so "Admin" and "admin" share one count whether or not the user store folds case:
    # counting too much errs on the safe side.
    return ("user", username.strip().casefold())


def _source_key(source: str) -> _Key:
    return ("source", source)
