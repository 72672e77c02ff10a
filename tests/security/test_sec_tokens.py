from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest

from kiln.security.secrets import derive_key
from kiln.security.tokens import (
    API_KEY_PREFIX,
    DEVICE_CREDENTIAL_PREFIX,
    REFRESH_TOKEN_PREFIX,
    InvalidToken,
    Rejection,
    decode_access_token,
    hashes_match,
    issue_access_token,
    new_opaque_token,
    parse_opaque_token,
    token_hash,
)

NOW_US = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z
NOW_S = NOW_US // 1_000_000
KEY = derive_key(bytes(range(32)), "jwt")
OTHER_INSTALL_KEY = derive_key(bytes(range(100, 132)), "jwt")


def _issue(**overrides: Any) -> str:
    args: dict[str, Any] = {"subject": "u-1", "tenant": "acme", "kind": "user", "now_us": NOW_US}
    args.update(overrides)
    return issue_access_token(KEY, **args)


def _rejected(token: str, *, now_us: int = NOW_US, key: bytes = KEY) -> Rejection:
    with pytest.raises(InvalidToken) as info:
        decode_access_token(key, token, now_us=now_us)
    assert info.value.reason.value in str(info.value)
    return info.value.reason


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _valid_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": "kiln",
        "aud": "kiln-api",
        "sub": "u-1",
        "tenant": "acme",
        "kind": "user",
        "iat": NOW_S,
        "exp": NOW_S + 900,
        "jti": "j1",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def test_round_trip() -> None:
    token = _issue(kind="apikey", extra={"sid": "s-9", "scope": ["a"]})
    claims = decode_access_token(KEY, token, now_us=NOW_US)
    assert claims.subject == "u-1"
    assert claims.tenant == "acme"
    assert claims.kind == "apikey"
    assert claims.issued_at_us == NOW_S * 1_000_000
    assert claims.expires_at_us == (NOW_S + 900) * 1_000_000
    assert claims.extra == {"sid": "s-9", "scope": ["a"]}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    raw = jwt.decode(token, options={"verify_signature": False})
    assert (raw["iss"], raw["aud"]) == ("kiln", "kiln-api")


def test_each_token_has_its_own_id() -> None:
    ids = {decode_access_token(KEY, _issue(), now_us=NOW_US).token_id for _ in range(20)}
    assert len(ids) == 20


def test_expiry_is_exact_and_leeway_extends_it() -> None:
    token = _issue(ttl_s=60)
    exp_us = (NOW_S + 60) * 1_000_000
    decode_access_token(KEY, token, now_us=exp_us - 1)
    assert _rejected(token, now_us=exp_us) is Rejection.EXPIRED
    decode_access_token(KEY, token, now_us=exp_us + 29_999_999, leeway_s=30)
    with pytest.raises(InvalidToken, match="expired"):
        decode_access_token(KEY, token, now_us=exp_us + 30_000_000, leeway_s=30)


def test_leeway_is_bounded() -> None:
    with pytest.raises(ValueError, match="between 0 and 30"):
        decode_access_token(KEY, _issue(), now_us=NOW_US, leeway_s=31)
    with pytest.raises(ValueError, match="between 0 and 30"):
        decode_access_token(KEY, _issue(), now_us=NOW_US, leeway_s=-1)


def test_token_issued_in_the_future_is_refused() -> None:
    token = _issue(now_us=NOW_US + 60_000_000)
    assert _rejected(token) is Rejection.NOT_YET_VALID


def test_tampered_token_is_refused() -> None:
    header, payload, signature = _issue().split(".")
    forged_payload = _b64(_valid_payload(sub="admin"))
    assert _rejected(f"{header}.{forged_payload}.{signature}") is Rejection.BAD_SIGNATURE
    # The first character of the signature carries six signature bits, never padding.
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert _rejected(f"{header}.{payload}.{flipped}") is Rejection.BAD_SIGNATURE


def test_token_from_another_install_is_refused() -> None:
    foreign = issue_access_token(
        OTHER_INSTALL_KEY, subject="u-1", tenant="acme", kind="user", now_us=NOW_US
    )
    assert _rejected(foreign) is Rejection.BAD_SIGNATURE


def test_alg_none_is_refused() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_valid_payload())}."
    assert _rejected(token) is Rejection.BAD_ALGORITHM


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithms_are_refused_even_with_the_right_key(alg: str) -> None:
    # A 64-byte key keeps PyJWT's short-key warning quiet; the algorithm is refused before
    # the signature is checked.
    token = jwt.encode(_valid_payload(), KEY * 2, algorithm=alg)
    assert _rejected(token) is Rejection.BAD_ALGORITHM


def test_wrong_audience_and_issuer_are_refused() -> None:
    assert _rejected(jwt.encode(_valid_payload(aud="other-api"), KEY)) is Rejection.WRONG_AUDIENCE
    assert _rejected(jwt.encode(_valid_payload(iss="someone"), KEY)) is Rejection.WRONG_ISSUER


@pytest.mark.parametrize(
    "payload",
    [
        _valid_payload(exp=None),  # exp is required
        _valid_payload(aud=None),
        _valid_payload(iat=None),
        _valid_payload(jti=None),
        _valid_payload(tenant=None),
        _valid_payload(kind="root"),
        _valid_payload(exp=float(NOW_S + 900)),
        _valid_payload(sub=42),
    ],
)
def test_tokens_missing_or_mistyping_claims_are_malformed(payload: dict[str, Any]) -> None:
    assert _rejected(jwt.encode(payload, KEY)) is Rejection.MALFORMED


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "\u00e9.\u00e9.\u00e9"])
def test_garbage_is_malformed(token: str) -> None:
    assert _rejected(token) is Rejection.MALFORMED


def test_issue_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="reserved claims"):
        _issue(extra={"exp": 1})
    with pytest.raises(ValueError, match="kind"):
        _issue(kind="root")
    with pytest.raises(ValueError, match="positive"):
        _issue(ttl_s=0)
    with pytest.raises(ValueError, match="at least 32"):
        issue_access_token(b"k" * 16, subject="u", tenant="t", kind="user", now_us=NOW_US)
    with pytest.raises(ValueError, match="at least 32"):
        decode_access_token(b"k" * 16, _issue(), now_us=NOW_US)


@pytest.mark.parametrize("prefix", [REFRESH_TOKEN_PREFIX, API_KEY_PREFIX, DEVICE_CREDENTIAL_PREFIX])
def test_opaque_token_shape_parse_and_hash(prefix: str) -> None:
    new = new_opaque_token(prefix)
    assert new.token.startswith(f"{prefix}_{new.id}_")
    secret = new.token.removeprefix(f"{prefix}_{new.id}_")
    assert len(secret) >= 43  # 32 random bytes, url-safe base64
    assert new.hash == hashlib.sha256(new.token.encode()).hexdigest() == token_hash(new.token)
    assert parse_opaque_token(new.token, prefix) == (new.id, new.hash)
    assert new.token not in repr(new)


def test_opaque_tokens_parse_whatever_characters_the_secret_holds() -> None:
    tokens = [new_opaque_token(API_KEY_PREFIX) for _ in range(300)]
    assert len({t.id for t in tokens}) == 300
    assert len({t.token for t in tokens}) == 300
    # The secret's alphabet includes "_" and "-", the first being the separator.
    assert any("_" in t.token.split("_", 3)[3] for t in tokens)
    for t in tokens:
        assert parse_opaque_token(t.token, API_KEY_PREFIX) == (t.id, t.hash)


def test_opaque_token_of_another_kind_or_shape_is_refused() -> None:
    key = new_opaque_token(API_KEY_PREFIX).token
    for prefix in (REFRESH_TOKEN_PREFIX, DEVICE_CREDENTIAL_PREFIX, "kiln"):
        with pytest.raises(InvalidToken) as info:
            parse_opaque_token(key, prefix)
        assert info.value.reason is Rejection.MALFORMED
    for broken in (key[:-1], key + "A", key + "\n", " " + key, key.replace("_", "-", 2), ""):
        with pytest.raises(InvalidToken):
            parse_opaque_token(broken, API_KEY_PREFIX)


@pytest.mark.parametrize("prefix", ["", "Kiln_key", "kiln_", "_kiln", "kiln key", "kiln__key"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_opaque_token(prefix)


def test_hashes_match() -> None:
    new = new_opaque_token(REFRESH_TOKEN_PREFIX)
    _, presented = parse_opaque_token(new.token, REFRESH_TOKEN_PREFIX)
    assert hashes_match(new.hash, presented)
    other = new_opaque_token(REFRESH_TOKEN_PREFIX)
    assert not hashes_match(new.hash, other.hash)
