"""Access tokens (short-lived JWTs) and opaque secrets (refresh tokens, API keys, devices).

Access tokens are HS256 JWTs signed with a key derived from the install secret
(`derive_key(secret, "jwt")`), so a token from another install never verifies here. Time comes
from the caller (`now_us`), never from the system clock, so expiry is tested exactly.

Opaque tokens look like `kiln_key_<id>_<secret>`: the prefix lets secret scanners and people
recognise a leaked Kiln credential, the id finds the stored record, and only the SHA-256 of the
whole token is stored. A 256-bit random secret cannot be guessed, so a slow hash would add
nothing but login latency.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

import jwt

from kiln.core.errors import KilnError

ISSUER = "kiln"
AUDIENCE = "kiln-api"
ALGORITHM = "HS256"
DEFAULT_ACCESS_TTL_S = 900
MAX_LEEWAY_S = 30.0
MIN_KEY_SIZE = 32  # RFC 7518 section 3.2: an HS256 key must have at least 256 bits

REFRESH_TOKEN_PREFIX = "kiln_rt"
API_KEY_PREFIX = "kiln_key"
DEVICE_CREDENTIAL_PREFIX = "kiln_dev"

TokenKind = Literal["user", "apikey", "device"]
_KINDS: frozenset[str] = frozenset(get_args(TokenKind))
_RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "tenant", "kind"})

# The id is lowercase hex so that it never contains "_", which separates it from the secret;
# the secret is url-safe base64 and may contain "_" and "-": it is everything after the id.
_OPAQUE_ID_BYTES = 8
_OPAQUE_SECRET_BYTES = 32
_OPAQUE_ID_RE = f"[0-9a-f]{{{_OPAQUE_ID_BYTES * 2}}}"
_OPAQUE_SECRET_RE = f"[A-Za-z0-9_-]{{{(_OPAQUE_SECRET_BYTES * 4 + 2) // 3}}}"
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class Rejection(StrEnum):
    """Why a token was refused. For logs and metrics; clients get a plain 401."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    MALFORMED = "malformed"


class InvalidToken(KilnError):
    """A token was refused; `reason` says why."""

    def __init__(self, reason: Rejection, detail: str = "") -> None:
        super().__init__(f"invalid token: {reason.value}" + (f" ({detail})" if detail else ""))
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says. Times are microseconds since the Unix epoch."""

    subject: str
    tenant: str
    kind: TokenKind
    token_id: str
    issued_at_us: int
    expires_at_us: int
    extra: Mapping[str, Any] = field(default_factory=dict)


def issue_access_token(
    key: bytes,
    *,
    subject: str,
    tenant: str,
    kind: TokenKind,
    now_us: int,
    ttl_s: int = DEFAULT_ACCESS_TTL_S,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A signed JWT for `subject` in `tenant`, valid for `ttl_s` seconds from `now_us`.

    `extra` adds private claims; it may not override the standard ones.
    """
    _check_key(key)
    if kind not in _KINDS:
        raise ValueError(f"token kind must be one of {sorted(_KINDS)}, not {kind!r}")
    if ttl_s <= 0:
        raise ValueError(f"token lifetime must be positive, got {ttl_s} s")
    if not subject or not tenant:
        raise ValueError("a token needs a subject and a tenant")
    clash = _RESERVED_CLAIMS.intersection(extra or ())
    if clash:
        raise ValueError(f"extra claims may not set reserved claims {sorted(clash)}")
    # NumericDate is whole seconds (RFC 7519 section 2); round down so a token never outlives
    # its lifetime.
    now_s = now_us // 1_000_000
    payload: dict[str, Any] = {
        **(extra or {}),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "tenant": tenant,
        "kind": kind,
        "iat": now_s,
        "exp": now_s + ttl_s,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def decode_access_token(key: bytes, token: str, *, now_us: int, leeway_s: float = 0.0) -> Claims:
    """Verify `token` and return its claims; raise `InvalidToken` with the reason otherwise.

    Only HS256 is accepted (never "none", never an algorithm chosen by the token). `exp` is
    required; `leeway_s` (0 to 30 s) tolerates clock skew between nodes.
    """
    _check_key(key)
    if not 0.0 <= leeway_s <= MAX_LEEWAY_S:
        raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_S:g} s, got {leeway_s}")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                # Times are checked below against the injected clock, not the system clock.
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "iat", "iss", "aud", "sub", "jti"],
            },
        )
    except jwt.InvalidAlgorithmError as exc:
        raise InvalidToken(Rejection.BAD_ALGORITHM, str(exc)) from None
    except jwt.InvalidSignatureError:
        raise InvalidToken(Rejection.BAD_SIGNATURE) from None
    except jwt.InvalidAudienceError:
        raise InvalidToken(Rejection.WRONG_AUDIENCE) from None
    except jwt.InvalidIssuerError:
        raise InvalidToken(Rejection.WRONG_ISSUER) from None
    except jwt.InvalidTokenError as exc:  # DecodeError, missing claims, wrong claim types
        raise InvalidToken(Rejection.MALFORMED, str(exc)) from None

    exp, iat = payload["exp"], payload["iat"]
    tenant, kind = payload.get("tenant"), payload.get("kind")
    if not _is_int(exp) or not _is_int(iat):
        raise InvalidToken(Rejection.MALFORMED, "exp and iat must be integers")
    if not isinstance(tenant, str) or not tenant or kind not in _KINDS:
        raise InvalidToken(Rejection.MALFORMED, "tenant or kind missing or invalid")
    leeway_us = round(leeway_s * 1_000_000)
    # RFC 7519 section 4.1.4: the current time must be before exp.
    if now_us >= exp * 1_000_000 + leeway_us:
        raise InvalidToken(Rejection.EXPIRED)
    if iat * 1_000_000 > now_us + leeway_us:
        raise InvalidToken(Rejection.NOT_YET_VALID, "issued in the future")
    nbf = payload.get("nbf")
    if nbf is not None and (not _is_int(nbf) or nbf * 1_000_000 > now_us + leeway_us):
        raise InvalidToken(Rejection.NOT_YET_VALID)
    return Claims(
        subject=payload["sub"],
        tenant=tenant,
        kind=kind,
        token_id=payload["jti"],
        issued_at_us=iat * 1_000_000,
        expires_at_us=exp * 1_000_000,
        extra={k: v for k, v in payload.items() if k not in _RESERVED_CLAIMS},
    )


@dataclass(frozen=True, slots=True)
class OpaqueToken:
    """A new opaque credential: show `token` once, store `id` and `hash`."""

    id: str
    token: str = field(repr=False)
    hash: str


def new_opaque_token(prefix: str) -> OpaqueToken:
    """A fresh `<prefix>_<id>_<secret>` with a 64-bit id and a 256-bit secret."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"token prefix must be lowercase words joined by '_', not {prefix!r}")
    token_id = secrets.token_hex(_OPAQUE_ID_BYTES)
    token = f"{prefix}_{token_id}_{secrets.token_urlsafe(_OPAQUE_SECRET_BYTES)}"
    return OpaqueToken(id=token_id, token=token, hash=token_hash(token))


def parse_opaque_token(token: str, prefix: str) -> tuple[str, str]:
    """The id and the SHA-256 hex of `token`; `InvalidToken` if it is not a `prefix` token.

    The shape is checked exactly (length included) before anything is looked up, so a
    credential of another kind or arbitrary input never reaches the database.
    """
    pattern = f"{re.escape(prefix)}_({_OPAQUE_ID_RE})_{_OPAQUE_SECRET_RE}"
    match = re.fullmatch(pattern, token)
    if match is None:
        raise InvalidToken(Rejection.MALFORMED, f"not a {prefix} token")
    return match.group(1), token_hash(token)


def token_hash(token: str) -> str:
    """SHA-256 hex of the whole token: what is stored instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hashes_match(stored_hash: str, presented_hash: str) -> bool:
    """Compare two token hashes in constant time."""
    return hmac.compare_digest(stored_hash.encode("ascii"), presented_hash.encode("ascii"))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_SIZE:
        raise ValueError(
            f"signing key has {len(key)} bytes; at least {MIN_KEY_SIZE} needed "
            '(use derive_key(secret, "jwt"))'
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
