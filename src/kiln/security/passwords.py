"""Password hashing (argon2id) and the password policy.

Hashes are PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) that carry their own
parameters, so raising the cost later leaves old hashes verifiable; `needs_rehash` tells the
login path when to store a new hash.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

_LOGGER = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
# Generous for passphrases, but bounds the work one login request can ask for.
MAX_PASSWORD_LENGTH = 1024

# Passwords of 12 characters or more that top public breach lists, plus the obvious ones for this
# product. Shorter ones are already refused by the length rule. Compared case-insensitively.
_COMMON_PASSWORDS = frozenset(
    p.casefold()
    for p in (
        "000000000000",
        "111111111111",
        "123123123123",
        "123456789012",
        "1234567890123",
        "12345678901234567890",
        "123456654321",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "aaaaaaaaaaaa",
        "abc123456789",
        "abcdefghijkl",
        "admin1234567",
        "adminadmin123",
        "administrator",
        "asdfghjkl123",
        "baseball1234",
        "changeme1234",
        "football1234",
        "iloveyou1234",
        "kiln12345678",
        "kilnadmin123",
        "kilnkilnkiln",
        "letmein12345",
        "password1234",
        "password12345",
        "password123!",
        "passwordpassword",
        "princess1234",
        "qazwsxedcrfv",
        "qwerty123456",
        "qwertyuiop12",
        "qwertyuiopasdfghjkl",
        "sunshine1234",
        "welcome12345",
        "zaq12wsxcde3",
    )
)


@dataclass(frozen=True, slots=True)
class PasswordHasherSettings:
    """Argon2id cost parameters.

    The defaults are RFC 9106 section 4's second recommended option (t=3, 64 MiB, p=4): about
    50-100 ms on a current server core, which bounds an attacker holding the hashes without
    making logins slow. Lower them only for tests (`for_tests`).
    """

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    @classmethod
    def for_tests(cls) -> PasswordHasherSettings:
        """The cheapest parameters argon2 accepts; microseconds per hash. Never in production."""
        return cls(time_cost=1, memory_kib=8, parallelism=1)


class PasswordHashing:
    """Hashes and verifies passwords with one set of argon2id parameters."""

    def __init__(self, settings: PasswordHasherSettings | None = None) -> None:
        s = settings or PasswordHasherSettings()
        self._hasher = argon2.PasswordHasher(
            time_cost=s.time_cost,
            memory_cost=s.memory_kib,
            parallelism=s.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash_password(self, password: str) -> str:
        """A salted argon2id PHC string for `password`."""
        return self._hasher.hash(password)

    def verify_password(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; false, never an exception, if not.

        A stored value that is not an argon2 hash (e.g. "!" for an account without a password)
        never matches.
        """
        try:
            return self._hasher.verify(password_hash, password)
        except InvalidHashError:
            _LOGGER.debug("stored password hash is not an argon2 hash; refusing")
            return False
        except VerificationError:  # includes VerifyMismatchError, the wrong-password case
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than these and should be replaced."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one verification, for a login naming a user who does not exist.

        Without it, "no such user" answers faster than "wrong password", which tells an attacker
        which user names exist.
        """
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self.verify_password(self._dummy_hash, password)


def check_policy(password: str, username: str) -> None:
    """Raise ValueError naming the rule `password` breaks; return None if it is acceptable.

    Rules (after NIST SP 800-63B section 3.1.1.2: length and a blocklist, no composition rules):
    at least 12 characters, at most 1024, must not contain the user name, must not be a very
    common password.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"password is too short: at least {MIN_PASSWORD_LENGTH} characters "
            f"(got {len(password)}); a passphrase of a few words is easiest to remember"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password is too long: at most {MAX_PASSWORD_LENGTH} characters")
    folded = password.casefold()
    name = username.strip().casefold()
    if name and name in folded:
        raise ValueError("password must not contain the user name")
    if folded in _COMMON_PASSWORDS:
        raise ValueError("password is one of the most common passwords; choose another")
