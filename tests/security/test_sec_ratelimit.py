"""Login throttling: per account an exponential wait that a known address does not share, per
address a higher threshold that holds back only the names it failed on (docs/security.md)."""

from __future__ import annotations

import pytest

from kiln.security.ratelimit import LoginLimiter
from kiln.testing import FakeClock

NAT = "10.0.0.1"


def _fail(limiter: LoginLimiter, n: int, username: str = "alice", source: str = NAT) -> None:
    for _ in range(n):
        limiter.failed(username, source)


async def _guess_until(
    clock: FakeClock, limiter: LoginLimiter, seconds: float, sources: list[str]
) -> int:
    """How many guesses at alice an attacker gets in `seconds`, trying as soon as it may,
    from each of `sources` in turn."""
    guesses, t, i = 0, 0.0, 0
    while t < seconds:
        source = sources[i % len(sources)]
        wait = limiter.check("alice", source)
        if wait is None:
            limiter.failed("alice", source)
            guesses += 1
            i += 1
            wait = 0.001
        await clock.advance(wait)
        t += wait
    return guesses


async def test_five_failures_then_the_wait_doubles_from_one_second_to_the_cap() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=5, base_delay_s=1, lockout_s=300)
    _fail(limiter, 4)
    assert limiter.check("alice", NAT) is None
    waits = []
    for _ in range(12):
        limiter.failed("alice", NAT)
        wait = limiter.check("alice", NAT)
        assert wait is not None
        waits.append(wait)
        await clock.advance(wait)
        assert limiter.check("alice", NAT) is None
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    # From any address that has not signed in as alice: the count is the account's.
    limiter.failed("alice", NAT)
    assert limiter.check("alice", "192.0.2.7") == 300.0
    assert limiter.check("bob", NAT) is None


async def test_brute_force_on_one_account_is_slowed_from_one_or_many_addresses() -> None:
    for sources in (["10.0.0.1"], [f"198.51.100.{i}" for i in range(200)]):
        clock = FakeClock()
        limiter = LoginLimiter(clock)
        # An hour of guessing as fast as allowed: 5 free, 9 more after waits of 1, 2, ...,
        # 256 s (511 s in all), then one per 300 s for the remaining 3089 s.
        assert await _guess_until(clock, limiter, 3600, sources) == 5 + 9 + 10


async def test_a_stranger_failing_on_purpose_does_not_keep_the_owner_out_of_a_known_address() -> (
    None
):
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    limiter.succeeded("alice", "10.1.1.1")  # alice's workstation
    _fail(limiter, 20, "alice", "203.0.113.9")
    assert limiter.check("alice", "203.0.113.9") == 300.0
    assert limiter.check("alice", "10.1.1.1") is None
    # A new address is held back like the attacker's: the price of slowing distributed guessing.
    assert limiter.check("alice", "10.1.1.2") == 300.0
    # A failure from the known address makes it a stranger again.
    limiter.failed("alice", "10.1.1.1")
    assert limiter.check("alice", "10.1.1.1") == 300.0


async def test_one_client_failing_on_many_names_behind_a_nat_does_not_lock_the_others_out() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=5, per_source=50)
    for i in range(15):
        limiter.failed(f"user{i}", NAT)
    assert limiter.check("carol", NAT) is None
    for i in range(200):  # far past the address threshold
        limiter.failed(f"user{i % 40}", NAT)
    assert limiter.check("carol", NAT) is None, "a name the address never failed on waits not"
    assert limiter.check("user1", NAT) is not None, "the names it failed on are held back"


async def test_the_address_threshold_holds_back_spraying_with_a_short_wait() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=100, per_source=10, source_lockout_s=60)
    for i in range(9):
        limiter.failed(f"user{i}", NAT)
    assert limiter.check("user0", NAT) is None
    limiter.failed("user9", NAT)
    assert limiter.check("user0", NAT) == 1.0
    assert limiter.check("user0", "10.0.0.2") is None  # the account itself is not slowed
    for i in range(20):
        limiter.failed(f"user{i}", NAT)
    assert limiter.check("user0", NAT) == 60.0  # capped short
    await clock.advance(60)
    assert limiter.check("user0", NAT) is None


async def test_an_ipv6_host_counts_as_its_slash_64() -> None:
    limiter = LoginLimiter(FakeClock(), per_user=100, per_source=10)
    for i in range(10):
        limiter.failed("alice", f"2001:db8:0:1::{i + 1:x}")
    assert limiter.check("alice", "2001:db8:0:1::ffff") == 1.0
    assert limiter.check("alice", "2001:db8:0:2::1") is None
    for i in range(10):
        limiter.failed("bob", "10.0.0.1" if i % 2 else "::ffff:10.0.0.2")  # IPv4, even mapped
    assert limiter.check("bob", "10.0.0.1") is None


async def test_success_resets_the_account_and_makes_the_address_known() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    _fail(limiter, 7)
    assert limiter.check("alice", NAT) is not None
    limiter.succeeded("alice", NAT)
    assert limiter.check("alice", NAT) is None
    assert limiter.check("alice", "192.0.2.1") is None  # the account's count is gone too
    _fail(limiter, 4, source="192.0.2.1")
    assert limiter.check("alice", "192.0.2.1") is None


async def test_success_does_not_reset_the_address_count() -> None:
    # An attacker holding one valid account logs into it between guesses at the others.
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_source=10)
    for i in range(10):
        limiter.failed(f"user{i}", NAT)
        limiter.succeeded("mallory", NAT)
    assert limiter.check("user0", NAT) == 1.0


async def test_counts_are_forgotten_a_window_after_the_last_failure() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, window_s=900)
    _fail(limiter, 8)
    await clock.advance(899)
    assert limiter.check("alice", NAT) is None  # the 8 s wait is over, the count is not
    limiter.failed("alice", NAT)
    assert limiter.check("alice", NAT) == 16.0
    await clock.advance(900)
    _fail(limiter, 4)
    assert limiter.check("alice", NAT) is None


async def test_user_names_are_counted_case_insensitively() -> None:
    limiter = LoginLimiter(FakeClock())
    for name in ("alice", "Alice", "ALICE", " alice", "aLiCe"):
        limiter.failed(name, NAT)
    assert limiter.check("alice", "10.0.0.2") == 1.0


async def test_check_reports_the_longer_of_account_and_address_waits() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=2, per_source=3, lockout_s=60, source_lockout_s=60)
    _fail(limiter, 3, "alice", NAT)  # alice waits 2 s, the address 1 s on alice
    assert limiter.check("alice", NAT) == 2.0
    _fail(limiter, 3, "bob", NAT)  # the address's sixth: 8 s on alice and bob
    assert limiter.check("alice", NAT) == 8.0
    assert limiter.check("alice", "10.0.0.9") == 2.0


async def test_memory_is_bounded_and_least_recently_used_are_forgotten() -> None:
    limiter = LoginLimiter(FakeClock(), per_user=5, per_source=1000, max_entries=4)
    _fail(limiter, 5, "a", "s1")  # counts of a, (a, s1), s1
    assert limiter.check("a", "elsewhere") == 1.0
    limiter.failed("b", "s1")
    assert len(limiter) == 4
    for i in range(1000):
        limiter.failed(f"u{i}", f"s{i}")
        limiter.succeeded(f"k{i}", f"s{i}")
    assert len(limiter) == 8
    # Still bounded, but a count that holds a caller back is passed over while others can
    # go: a flood of failures on fresh names no longer flushes an account's backoff.
    assert limiter.check("a", "elsewhere") == 1.0


async def test_an_expired_count_is_forgotten_first() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=5, per_source=1000, max_entries=4, window_s=60)
    _fail(limiter, 5, "a", "s1")
    await clock.advance(61)  # a's count has expired: nothing holds it
    for i in range(10):
        limiter.failed(f"u{i}", "s2")
    assert len(limiter) == 4
    assert limiter.check("a", "elsewhere") is None


async def test_one_address_spraying_many_names_is_slowed_after_the_spray_limit() -> None:
    """Names an address has not failed on are spared (the NAT case), but only up to
    spray_factor x per_source failures: past that every name from it waits."""
    limiter = LoginLimiter(FakeClock(), per_source=50, spray_factor=10)
    for i in range(499):
        limiter.failed(f"user{i}", "203.0.113.7")
    assert limiter.check("colleague", "203.0.113.7") is None  # 499 failures: still spared
    limiter.failed("user499", "203.0.113.7")
    assert limiter.check("colleague", "203.0.113.7") is not None  # 500: slowed for any name
    assert limiter.check("colleague", "198.51.100.1") is None  # another address is not


async def test_failures_cannot_push_known_addresses_out() -> None:
    limiter = LoginLimiter(FakeClock(), max_entries=10)
    limiter.succeeded("alice", "10.1.1.1")
    _fail(limiter, 10, "alice", "203.0.113.9")
    for i in range(1000):
        limiter.failed(f"u{i}", f"198.51.100.{i % 250}")
    _fail(limiter, 10, "alice", "203.0.113.9")
    assert limiter.check("alice", "10.1.1.1") is None


def test_limits_are_validated() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="at least 1"):
        LoginLimiter(clock, per_user=0)
    with pytest.raises(ValueError, match="positive"):
        LoginLimiter(clock, window_s=0)
    with pytest.raises(ValueError, match="positive"):
        LoginLimiter(clock, base_delay_s=0)
    with pytest.raises(ValueError, match="max_entries"):
        LoginLimiter(clock, max_entries=1)
