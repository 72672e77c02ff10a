"""Time-based one-time passwords (RFC 6238) and the encryption of their secrets at rest.

`verify_totp` returns the time step a code matched so the caller can store it and refuse the
same code a second time (RFC 6238 section 5.2: a verifier must not accept an OTP twice).
"""

from __future__ import annotations

import hmac
import os
import re

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiln.core.errors import KilnError

STEP_S = 30  # RFC 6238 section 5.2 recommends 30 s; authenticator apps assume it
DIGITS = 6
MAX_WINDOW = 10

_CODE_RE = re.compile(rf"[0-9]{{{DIGITS}}}")
_BLOB_VERSION = b"\x01"
_NONCE_SIZE = 12  # 96 bits, the nonce size AES-GCM is specified for (NIST SP 800-38D)
_AAD_PREFIX = b"kiln/totp-secret/v1\x00"


class TotpSecretError(KilnError):
    """An encrypted TOTP secret could not be decrypted."""


def new_totp_secret() -> str:
    """A new random base32 secret of 160 bits, the length RFC 4226 section 4 recommends."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str = "Kiln") -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=issuer
    )


def verify_totp(
    secret: str,
    code: str,
    *,
    now_s: float,
    window: int = 1,
    last_used_step: int | None,
) -> int | None:
    """The time step `code` matches, or None if it matches none that may still be used.

    Steps from `window` before to `window` after the current one are accepted, to tolerate a
    phone's clock drift and a code typed just as it changed. A step at or before
    `last_used_step` is refused, so a code (or an older one) seen once cannot be replayed.
    Spaces in `code` are ignored, as authenticator apps show "123 456".
    """
    if not 0 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be between 0 and {MAX_WINDOW} steps, got {window}")
    code = code.replace(" ", "")
    if not _CODE_RE.fullmatch(code):
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int(now_s) // STEP_S
    earliest = current - window
    if last_used_step is not None:
        earliest = max(earliest, last_used_step + 1)
    matched: int | None = None
    # Every candidate is computed and compared in constant time, matched or not, so the time
    # taken does not tell which step (if any) a guess hit.
    for step in range(current - window, current + window + 1):
        hit = hmac.compare_digest(otp.generate_otp(step), code)
        if hit and step >= earliest and matched is None:
            matched = step
    return matched


def encrypt_secret(key: bytes, secret: str, *, context: str = "") -> bytes:
    """Encrypt a TOTP secret with AES-256-GCM under `key` (`derive_key(secret, "totp")`).

    `context` (the user's id, say) is authenticated but not stored: decryption needs the same
    value, so a ciphertext copied onto another user's record does not decrypt.
    """
    nonce = os.urandom(_NONCE_SIZE)
    sealed = AESGCM(_check_key(key)).encrypt(nonce, secret.encode("utf-8"), _aad(context))
    return _BLOB_VERSION + nonce + sealed


def decrypt_secret(key: bytes, blob: bytes, *, context: str = "") -> str:
    """The TOTP secret in `blob`; `TotpSecretError` if it was altered or the key is not the one used."""
    if len(blob) < 1 + _NONCE_SIZE + 16 or blob[:1] != _BLOB_VERSION:
        raise TotpSecretError("encrypted TOTP secret is truncated or of an unknown format")
    nonce, sealed = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
    try:
        plain = AESGCM(_check_key(key)).decrypt(nonce, sealed, _aad(context))
    except InvalidTag:
        raise TotpSecretError(
            "encrypted TOTP secret failed authentication: it was altered, belongs to another "
            "user, or the install secret changed (then the user must enrol TOTP again)"
        ) from None
    return plain.decode("utf-8")


def _aad(context: str) -> bytes:
    return _AAD_PREFIX + context.encode("utf-8")


def _check_key(key: bytes) -> bytes:
    if len(key) != 32:
        raise ValueError(f"TOTP encryption key must be 32 bytes (AES-256), got {len(key)}")
    return key
