from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from kiln.security.secrets import derive_key
from kiln.security.totp import (
    TotpSecretError,
    decrypt_secret,
    encrypt_secret,
    new_totp_secret,
    provisioning_uri,
    verify_totp,
)

# RFC 6238 Appendix B, SHA-1: the seed is the ASCII "12345678901234567890". The RFC lists 8-digit
# codes; a 6-digit code is the same truncated number modulo 10^6 (RFC 4226 section 5.3), i.e.
# its last six digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
KEY = derive_key(bytes(range(32)), "totp")


@pytest.mark.parametrize(("now_s", "code8"), RFC_VECTORS)
def test_rfc6238_vectors(now_s: int, code8: str) -> None:
    step = verify_totp(RFC_SECRET, code8[-6:], now_s=now_s, window=0, last_used_step=None)
    assert step == now_s // 30


def test_window_accepts_neighbouring_steps_only() -> None:
    # 1111111111 is step 37037037; 1111111109 is step 37037036, whose code is 081804.
    prev_code = "081804"
    assert (
        verify_totp(RFC_SECRET, prev_code, now_s=1111111111, window=1, last_used_step=None)
        == 37037036
    )
    assert (
        verify_totp(RFC_SECRET, prev_code, now_s=1111111111, window=0, last_used_step=None) is None
    )
    # Two steps later it is out of a window of one.
    assert (
        verify_totp(RFC_SECRET, prev_code, now_s=1111111109 + 60, window=1, last_used_step=None)
        is None
    )


def test_a_used_step_cannot_be_replayed() -> None:
    secret = new_totp_secret()
    otp = pyotp.TOTP(secret)
    now = 1_767_225_600
    code = otp.at(now)
    step = verify_totp(secret, code, now_s=now, last_used_step=None)
    assert step == now // 30
    assert verify_totp(secret, code, now_s=now, last_used_step=step) is None
    assert verify_totp(secret, code, now_s=now + 10, last_used_step=step) is None
    # The previous step's code is still in the window but older than the one used: refused.
    assert verify_totp(secret, otp.at(now - 30), now_s=now, last_used_step=step) is None
    # The next code is fine.
    assert verify_totp(secret, otp.at(now + 30), now_s=now + 30, last_used_step=step) == step + 1


@pytest.mark.parametrize("code", ["287 082", " 287082 "])
def test_spaces_in_the_code_are_ignored(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, now_s=59, window=0, last_used_step=None) == 1


@pytest.mark.parametrize(
    "code", ["", "28708", "2870820", "28708a", "\uff12\uff18\uff17\uff10\uff18\uff12", "287-082"]
)
def test_codes_of_the_wrong_shape_never_match(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, now_s=59, window=1, last_used_step=None) is None


def test_window_is_bounded() -> None:
    with pytest.raises(ValueError, match="window"):
        verify_totp(RFC_SECRET, "287082", now_s=59, window=11, last_used_step=None)


def test_new_secrets_are_160_bit_base32() -> None:
    secrets = {new_totp_secret() for _ in range(20)}
    assert len(secrets) == 20
    for s in secrets:
        assert len(base64.b32decode(s)) == 20


def test_provisioning_uri() -> None:
    uri = provisioning_uri(RFC_SECRET, "alice@acme")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Kiln:alice@acme"
    query = parse_qs(parts.query)
    assert query["secret"] == [RFC_SECRET]
    assert query["issuer"] == ["Kiln"]


def test_encryption_round_trip_hides_the_secret() -> None:
    secret = new_totp_secret()
    blob = encrypt_secret(KEY, secret, context="user-1")
    assert secret.encode() not in blob
    assert encrypt_secret(KEY, secret, context="user-1") != blob  # fresh nonce
    assert decrypt_secret(KEY, blob, context="user-1") == secret


def test_any_altered_byte_is_detected() -> None:
    blob = encrypt_secret(KEY, new_totp_secret())
    for i in range(len(blob)):
        altered = bytearray(blob)
        altered[i] ^= 0x01
        with pytest.raises(TotpSecretError):
            decrypt_secret(KEY, bytes(altered))


def test_wrong_key_context_or_truncation_is_detected() -> None:
    blob = encrypt_secret(KEY, new_totp_secret(), context="user-1")
    with pytest.raises(TotpSecretError, match="install secret changed"):
        decrypt_secret(derive_key(bytes(range(1, 33)), "totp"), blob, context="user-1")
    with pytest.raises(TotpSecretError, match="another user"):
        decrypt_secret(KEY, blob, context="user-2")
    with pytest.raises(TotpSecretError, match="truncated"):
        decrypt_secret(KEY, blob[:20], context="user-1")
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_secret(b"short", "x")
