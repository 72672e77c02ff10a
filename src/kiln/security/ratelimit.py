"""Login throttling per account and per source address (IEC 62443-4-2 CR 1.11), built so that
nobody can turn it into a lockout of someone else.

- **Per account.** After `per_user` failures for one user name (from anywhere), each further
  try waits `base_delay_s`, doubling with every failure up to `lockout_s`, counted from the last
  failure. Guessing one password is slowed from one address and from many alike. The wait does
  not apply to an address the account has logged in from before and has not failed from since
  (a *known* address, the address form of OWASP's "device cookies"): a stranger failing on
  purpose cannot keep the owner out of an account from where the owner works.
- **Per address.** After `per_source` failures from one address (on any names), its further
  tries on the names it has failed on wait `base_delay_s`, doubling up to `source_lockout_s`.
  The names it has not failed on are held back only past `spray_factor` times that many
  failures (500 by default): behind a plant's NAT one client failing on fifteen names does not
  stop a colleague signing in at the same address, while one address spraying guesses over
  thousands of names is still slowed.
- A success forgets the account's failures and makes the address known for it. The address's
  own count stays: otherwise an attacker holding one valid account could log into it between
  guesses at others and never reach the address limit.
- Counts are forgotten `window_s` after their last failure. An IPv6 address counts as its /64.

Time is the injected clock's monotonic seconds, so tests drive it exactly with `FakeClock`.
State is in memory and bounded: at most `max_entries` counts (names, addresses and their
pairs) and as many known addresses, each least recently touched forgotten first, except that
a count still holding a caller back is passed over while others can go (so failures on fresh
names cannot flush an account's backoff); failures cannot push known addresses out, since only
successes add them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass

from kiln.core.clock import Clock

_LOGGER = logging.getLogger(__name__)

_Key = tuple[str, ...]


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # monotonic time of the last failure


class LoginLimiter:
    """Counts failed logins and says how long a caller must wait before the next try."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_user: int = 5,
        per_source: int = 50,
        base_delay_s: float = 1.0,
        lockout_s: float = 300.0,
        source_lockout_s: float = 60.0,
        window_s: float = 900.0,
        max_entries: int = 10_000,
        spray_factor: int = 10,
    ) -> None:
        if per_user < 1 or per_source < 1 or max_entries < 2:
            raise ValueError("limits must be at least 1 and max_entries at least 2")
        if min(base_delay_s, lockout_s, source_lockout_s, window_s) <= 0:
            raise ValueError(
                "base_delay_s, lockout_s, source_lockout_s and window_s must be positive"
            )
        self._clock = clock
        self._per_user = per_user
        self._per_source = per_source
        self._spray = per_source * max(1, spray_factor)
        self._base_s = base_delay_s
        self._cap_s = lockout_s
        self._source_cap_s = source_lockout_s
        self._window_s = window_s
        self._max_entries = max_entries
        self._counts: OrderedDict[_Key, _Count] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        """How many counts and known addresses are kept."""
        return len(self._counts) + len(self._known)

    def check(self, username: str, source: str) -> float | None:
        """Seconds to wait before this user name may try from this source, or None if allowed.

        Call before verifying the password, so a held-back try costs no hashing.
        """
        now = self._clock.monotonic()
        user, source = _user(username), _source(source)
        wait = 0.0
        if (user, source) not in self._known:
            wait = self._wait(("user", user), self._per_user, self._cap_s, now)
        # The address's own names from per_source failures on, any name from the spray limit.
        threshold = (
            self._per_source if self._live(("pair", user, source), now) is not None else self._spray
        )
        wait = max(wait, self._wait(("source", source), threshold, self._source_cap_s, now))
        return wait if wait > 0 else None

    def failed(self, username: str, source: str) -> None:
        """Record a failed login (wrong password, unknown user or wrong TOTP code alike)."""
        now = self._clock.monotonic()
        user, source = _user(username), _source(source)
        self._known.pop((user, source), None)
        self._count(("pair", user, source), now)
        if self._count(("user", user), now) == self._per_user:
            _LOGGER.warning(
                "logins as %r slowed after %d failures (from %s last)", user, self._per_user, source
            )
        if self._count(("source", source), now) == self._per_source:
            _LOGGER.warning(
                "logins from %s slowed after %d failures, on the names it failed on",
                source,
                self._per_source,
            )

    def succeeded(self, username: str, source: str) -> None:
        """Forget the account's failures and remember the address as known for it."""
        user, source = _user(username), _source(source)
        self._counts.pop(("user", user), None)
        self._counts.pop(("pair", user, source), None)
        self._known[(user, source)] = None
        self._known.move_to_end((user, source))
        if len(self._known) > self._max_entries:
            self._known.popitem(last=False)

    def _live(self, key: _Key, now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and now - count.last >= self._window_s:
            del self._counts[key]
            return None
        return count

    def _wait(self, key: _Key, threshold: int, cap_s: float, now: float) -> float:
        count = self._live(key, now)
        if count is None or count.failures < threshold:
            return 0.0
        # The exponent is bounded so that a long run of failures cannot overflow the float.
        delay = min(cap_s, self._base_s * 2.0 ** min(count.failures - threshold, 64))
        return max(0.0, count.last + delay - now)

    def _count(self, key: _Key, now: float) -> int:
        count = self._live(key, now)
        if count is None:
            count = self._counts[key] = _Count()
            if len(self._counts) > self._max_entries:
                self._evict(now)
        else:
            self._counts.move_to_end(key)
        count.failures += 1
        count.last = now
        return count.failures

    def _evict(self, now: float) -> None:
        """Forget the least recently touched count, passing over (a bounded number of) counts
        that still hold a caller back: those go to the end, the next oldest is forgotten."""
        for _ in range(_EVICTION_TRIES):
            key, count = self._counts.popitem(last=False)
            if not self._holds_back(key, count, now):
                return
            self._counts[key] = count  # back, as the most recent
        self._counts.popitem(last=False)  # all tried hold back: the oldest goes after all

    def _holds_back(self, key: _Key, count: _Count, now: float) -> bool:
        if now - count.last >= self._window_s:
            return False
        threshold = {"user": self._per_user, "source": self._per_source}.get(key[0])
        return threshold is not None and count.failures >= threshold


# How many counts an eviction passes over at most: bounded work per failure.
_EVICTION_TRIES = 16


def _user(username: str) -> str:
    # Folded so "Admin" and "admin" share one count whether or not the user store folds case:
    # counting too much errs on the safe side.
    return username.strip().casefold()


def _source(source: str) -> str:
    # An IPv6 host is usually given a whole /64 and may take any address in it: counted per
    # address, it could fail from a fresh one every time.
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source  # "testclient", "session:<id>"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return source
