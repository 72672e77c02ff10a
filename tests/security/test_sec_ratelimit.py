from __future__ import annotations

import pytest

from kiln.security.ratelimit import LoginLimiter
from kiln.testing import FakeClock


def _fail(limiter: LoginLimiter, n: int, username: str = "alice", source: str = "10.0.0.1") -> None:
    for _ in range(n):
        limiter.failed(username, source)


async def test_five_failures_lock_the_user_until_the_lockout_ends_exactly() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    _fail(limiter, 4)
    assert limiter.check("alice", "10.0.0.1") is None
    limiter.failed("alice", "10.0.0.1")
    assert limiter.check("alice", "10.0.0.1") == 300.0
    # Locked from any source: the lock is on the user name.
    assert limiter.check("alice", "192.0.2.7") == 300.0
    assert limiter.check("bob", "10.0.0.1") is None
    await clock.advance(299.5)
    assert limiter.check("alice", "10.0.0.1") == pytest.approx(0.5)
    await clock.advance(0.5)
    assert limiter.check("alice", "10.0.0.1") is None


async def test_after_a_lockout_the_count_starts_afresh() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    _fail(limiter, 5)
    await clock.advance(300)
    _fail(limiter, 4)
    assert limiter.check("alice", "10.0.0.1") is None
    limiter.failed("alice", "10.0.0.1")
    assert limiter.check("alice", "10.0.0.1") == 300.0


async def test_failures_while_locked_do_not_extend_the_lock() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    _fail(limiter, 5)
    await clock.advance(100)
    _fail(limiter, 3)
    assert limiter.check("alice", "10.0.0.1") == 200.0


async def test_window_slides() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, window_s=300)
    _fail(limiter, 2)  # t=0
    await clock.advance(100)
    _fail(limiter, 2)  # t=100
    await clock.advance(200)
    # t=300: the two failures at t=0 have left the window, three remain, this one included.
    limiter.failed("alice", "10.0.0.1")
    assert limiter.check("alice", "10.0.0.1") is None
    await clock.advance(99)
    # t=399: the failures at t=100 are still inside; this is the fifth in the window.
    _fail(limiter, 1)
    assert limiter.check("alice", "10.0.0.1") is None
    limiter.failed("alice", "10.0.0.1")
    assert limiter.check("alice", "10.0.0.1") == 300.0


async def test_success_resets_the_user_count() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    _fail(limiter, 4)
    limiter.succeeded("alice", "10.0.0.1")
    _fail(limiter, 4)
    assert limiter.check("alice", "10.0.0.1") is None


async def test_user_names_are_counted_case_insensitively() -> None:
    limiter = LoginLimiter(FakeClock())
    for name in ("alice", "Alice", "ALICE", " alice", "aLiCe"):
        limiter.failed(name, "10.0.0.1")
    assert limiter.check("alice", "10.0.0.2") == 300.0


async def test_one_source_spraying_many_users_is_locked() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=5, per_source=20)
    for i in range(19):
        limiter.failed(f"user{i}", "10.0.0.1")
    assert limiter.check("someone", "10.0.0.1") is None
    limiter.failed("user19", "10.0.0.1")
    assert limiter.check("someone", "10.0.0.1") == 300.0
    assert limiter.check("someone", "10.0.0.2") is None
    # Logging into one account it holds does not clear the source's count.
    limiter.succeeded("user0", "10.0.0.1")
    assert limiter.check("user0", "10.0.0.1") == 300.0


async def test_check_reports_the_longer_of_user_and_source_waits() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, per_user=2, per_source=3, lockout_s=60)
    _fail(limiter, 2, "alice", "10.0.0.1")  # alice locked until t=60
    await clock.advance(30)
    _fail(limiter, 1, "bob", "10.0.0.1")  # the source's third failure: locked until t=90
    assert limiter.check("alice", "10.0.0.1") == 60.0
    assert limiter.check("alice", "10.0.0.9") == 30.0


async def test_memory_is_bounded_and_least_recently_used_are_forgotten() -> None:
    limiter = LoginLimiter(FakeClock(), per_user=5, per_source=1000, max_entries=4)
    _fail(limiter, 5, "a", "s1")
    assert limiter.check("a", "elsewhere") == 300.0
    limiter.failed("b", "s1")
    limiter.failed("c", "s1")
    assert len(limiter) == 4  # users a, b, c and source s1
    limiter.failed("d", "s1")
    assert len(limiter) == 4
    # "a" was touched least recently and is forgotten; the others are kept.
    assert limiter.check("a", "elsewhere") is None
    _fail(limiter, 4, "d", "s1")
    assert limiter.check("d", "elsewhere") == 300.0
    for i in range(1000):
        limiter.failed(f"u{i}", f"s{i}")
    assert len(limiter) == 4


def test_limits_are_validated() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="at least 1"):
        LoginLimiter(clock, per_user=0)
    with pytest.raises(ValueError, match="positive"):
        LoginLimiter(clock, window_s=0)
    with pytest.raises(ValueError, match="max_entries"):
        LoginLimiter(clock, max_entries=1)
