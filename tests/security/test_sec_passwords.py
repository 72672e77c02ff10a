from __future__ import annotations

import argon2
import pytest

from kiln.security.passwords import PasswordHasherSettings, PasswordHashing, check_policy

CHEAP = PasswordHasherSettings.for_tests()


@pytest.fixture
def hashing() -> PasswordHashing:
    return PasswordHashing(CHEAP)


def test_hash_round_trip_and_wrong_password(hashing: PasswordHashing) -> None:
    h = hashing.hash_password("correct horse battery")
    assert h.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "correct horse" not in h
    assert hashing.verify_password(h, "correct horse battery")
    assert not hashing.verify_password(h, "correct horse batterY")
    assert not hashing.verify_password(h, "")


def test_same_password_hashes_differently_each_time(hashing: PasswordHashing) -> None:
    a, b = hashing.hash_password("same password!"), hashing.hash_password("same password!")
    assert a != b  # a fresh salt each time
    assert hashing.verify_password(a, "same password!")
    assert hashing.verify_password(b, "same password!")


@pytest.mark.parametrize("stored", ["", "!", "plaintext", "$argon2id$v=19$m=8,t=1,p=1$broken"])
def test_a_stored_value_that_is_not_a_hash_never_matches(
    hashing: PasswordHashing, stored: str
) -> None:
    assert hashing.verify_password(stored, stored) is False


def test_needs_rehash_when_parameters_change(hashing: PasswordHashing) -> None:
    h = hashing.hash_password("a long passphrase")
    assert not hashing.needs_rehash(h)
    stronger = PasswordHashing(PasswordHasherSettings(time_cost=2, memory_kib=16, parallelism=1))
    assert stronger.needs_rehash(h)
    # An old hash stays verifiable after the parameters change; it carries its own.
    assert stronger.verify_password(h, "a long passphrase")
    assert hashing.needs_rehash("not a hash")


def test_argon2i_hash_is_verified_but_flagged_for_rehash(hashing: PasswordHashing) -> None:
    legacy = argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.I
    ).hash("legacy password")
    assert hashing.verify_password(legacy, "legacy password")
    assert hashing.needs_rehash(legacy)


def test_default_parameters_are_rfc9106_second_recommendation() -> None:
    s = PasswordHasherSettings()
    p = argon2.profiles.RFC_9106_LOW_MEMORY
    assert (s.time_cost, s.memory_kib, s.parallelism) == (p.time_cost, p.memory_cost, p.parallelism)


def test_dummy_verify_accepts_any_input_without_raising(hashing: PasswordHashing) -> None:
    for password in ("anything at all", "", "x" * 1024):
        hashing.dummy_verify(password)


@pytest.mark.parametrize(
    ("password", "username", "message"),
    [
        ("short", "alice", "too short: at least 12 characters"),
        ("elevenchars", "alice", "too short"),
        ("x" * 1025, "alice", "too long"),
        ("alice-is-my-name", "alice", "must not contain the user name"),
        ("MyNameIsALICE123", "Alice", "must not contain the user name"),
        ("password1234", "alice", "most common passwords"),
        ("PASSWORD1234", "alice", "most common passwords"),
        ("administrator", "bob", "most common passwords"),
    ],
)
def test_policy_names_the_rule_broken(password: str, username: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_policy(password, username)


@pytest.mark.parametrize("password", ["twelve chars", "kettle-granite-autumn-7", "x" * 1024])
def test_policy_accepts_long_uncommon_passwords(password: str) -> None:
    check_policy(password, "alice")
