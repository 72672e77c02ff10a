"""The per-install secret and the keys derived from it.

Kiln ships no default key (a static signing key shipped with a product is how CVE-2023-26462
happened elsewhere): each install generates its own 32 random bytes on first start and keeps them
in `<data_dir>/secret.key`, readable by the owner only. Every use (JWT signing, the audit MAC,
encrypting TOTP secrets) gets its own key derived with HKDF, so one key never serves two purposes.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import string
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiln.core.errors import ConfigError
from kiln.core.files import O_BINARY, O_NOFOLLOW, POSIX, create_exclusive

_LOGGER = logging.getLogger(__name__)

SECRET_FILE_NAME = "secret.key"
SECRET_SIZE = 32  # bytes: 256 bits, the least RFC 7518 section 3.2 allows for an HS256 key
DERIVED_KEY_SIZE = 32

# Letters and digits only: safe in a URL, a shell and a double-click selection. 62 symbols give
# 5.95 bits each, so the default 20 characters carry 119 bits.
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
_MIN_GENERATED_PASSWORD = 12


class SecretFileError(ConfigError):
    """The install secret file is unsafe or damaged. The message says how to fix it."""


def load_or_create_secret(data_dir: Path) -> bytes:
    """The install secret in `<data_dir>/secret.key`, generated on the first start.

    The file is created complete or not at all (a crash never leaves a short file behind) with
    mode 0600. Raises `SecretFileError` if it is readable by group or others, is not a regular
    file, or does not hold exactly 32 bytes.
    """
    path = data_dir / SECRET_FILE_NAME
    try:
        return load_secret(data_dir)
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_SIZE)
    if create_exclusive(path, secret):
        _LOGGER.info("generated a new install secret in %s", path)
        return secret
    # Another process created it between our read and our create: use theirs.
    return load_secret(data_dir)


def load_secret(data_dir: Path) -> bytes:
    """The existing install secret; never creates one.

    Raises FileNotFoundError if the install has no secret yet, `SecretFileError` if the file
    is unsafe or damaged.
    """
    path = data_dir / SECRET_FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_BINARY)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no install secret at {path}; start Kiln once with this data directory "
            "(it generates one) or check the --data-dir option"
        ) from None
    except OSError as exc:
        if O_NOFOLLOW and path.is_symlink():
            raise SecretFileError(
                f"{path} is a symbolic link; the install secret must be a regular file. "
                f"Replace the link with the file it points to"
            ) from exc
        raise
    with os.fdopen(fd, "rb") as f:
        # fstat on the open descriptor: the checked file is the file read.
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise SecretFileError(f"{path} is not a regular file; it must hold the install secret")
        if POSIX and st.st_mode & 0o077:
            raise SecretFileError(
                f"{path} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"anyone who reads it can forge sessions. Fix: chmod 600 {path}"
            )
        data = f.read(SECRET_SIZE + 1)
    if len(data) != SECRET_SIZE:
        raise SecretFileError(
            f"{path} holds {len(data)}{'+' if len(data) > SECRET_SIZE else ''} bytes, "
            f"expected {SECRET_SIZE}; it is damaged or not a Kiln secret. Restore it from "
            "backup; deleting it makes Kiln generate a new one, which logs everyone out and "
            "makes stored TOTP secrets and audit MACs unverifiable"
        )
    return data


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose ("jwt", "audit", "totp", ...), derived with HKDF-SHA256.

    Keys for different purposes are independent: learning one reveals neither the install
    secret nor any other derived key (RFC 5869).
    """
    if len(secret) < SECRET_SIZE:
        raise ValueError(f"install secret has {len(secret)} bytes; at least {SECRET_SIZE} needed")
    if not purpose:
        raise ValueError("key purpose must not be empty")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=DERIVED_KEY_SIZE,
        # The secret is already uniformly random, so a salt adds nothing (RFC 5869 section 3.1).
        salt=None,
        info=b"kiln/" + purpose.encode("utf-8"),
    )
    return hkdf.derive(secret)


def generate_password(length: int = 20, *, username: str = "") -> str:
    """A random password of letters and digits, e.g. for the first administrator.

    It never contains `username` (case folded), which the password policy forbids: a short
    name such as "a3" turns up by chance in about one random password of a hundred.
    """
    if length < _MIN_GENERATED_PASSWORD:
        raise ValueError(f"generated passwords need at least {_MIN_GENERATED_PASSWORD} characters")
    name = username.strip().casefold()
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        if not name or name not in password.casefold():
            return password
