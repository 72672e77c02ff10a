"""What an audit record holds (the IEC 62443-4-2 CR 2.8 fields) and how its input is cleaned.

Pure: no I/O. Everything a caller hands in is normalised here, before it is chained, so that
what is stored is exactly what was MACed: secrets are redacted from `detail`, text is made
storable on every backend, and sizes are bounded (a failed login's user name is chosen by the
attacker, and must neither break the write nor bloat the log).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any

from kiln.core.clock import us_to_datetime


class Category(StrEnum):
    """The kind of event; CR 2.8 names access control, request errors, control system events,
    backup and restore, configuration changes and audit log events."""

    AUTHENTICATION = "authentication"  # login, logout, failed login
    ACCOUNT = "account"  # users, API keys, tokens, device credentials created or revoked
    AUTHORIZATION = "authorization"  # role changes, denied requests
    CONFIGURATION = "configuration"
    DEVICE_WRITE = "device_write"
    ALARM = "alarm"
    PRODUCTION = "production"  # downtime reasons, work orders, products, calendars
    VALUECHAIN = "valuechain"  # master data, orders, planning, lot transactions, recalls
    AUDIT = "audit"  # the log about itself: archiving, integrity findings, exports
    SYSTEM = "system"  # start, stop, capacity


class Result(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


REDACTED = "[redacted]"
# Any detail key containing one of these (case-insensitive) has its value replaced. Broad on
# purpose ("monkey" matches too): a false positive costs a little context, a false negative
# leaks a secret into a file every auditor can read. Identifiers belong in `target`.
SECRET_WORDS = ("password", "secret", "token", "key", "otp", "credential")

# Bounds, in characters, on the text fields; longer values are cut and marked.
FIELD_LIMITS = {"actor": 256, "source": 256, "action": 64, "target": 1024, "tenant": 64}
# A detail whose canonical JSON is longer is replaced by its size and digest.
MAX_DETAIL_BYTES = 64 * 1024
_MAX_DEPTH = 32
_CUT_MARK = "…"

# The fields the chain MAC covers, in the order exports show them.
CHAINED_FIELDS = (
    "seq",
    "ts_us",
    "actor",
    "source",
    "category",
    "action",
    "target",
    "result",
    "tenant",
    "detail",
)


def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value MACs as: sorted keys, no spaces, ASCII only."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class Entry:
    """An event to record, cleaned and bounded, before it has a place in the chain."""

    actor: str
    source: str
    category: Category
    action: str
    target: str
    result: Result
    tenant: str | None
    detail: dict[str, Any]

    @classmethod
    def create(
        cls,
        *,
        actor: str,
        source: str,
        category: Category | str,
        action: str,
        target: str = "",
        result: Result | str = Result.SUCCESS,
        tenant: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Validate and clean an event; raises ValueError for an unknown category or result
        or an empty actor, source or action (a programming error, not an attacker's input)."""
        for name, value in (("actor", actor), ("source", source), ("action", action)):
            if not value:
                raise ValueError(f"an audit record needs a non-empty {name}")
        return cls(
            actor=_field("actor", actor),
            source=_field("source", source),
            category=Category(category),
            action=_field("action", action),
            target=_field("target", target),
            result=Result(result),
            tenant=None if tenant is None else _field("tenant", tenant),
            detail=clean_detail(detail),
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record: the event, its place in the chain (`seq`), and its chain MACs.

    `mac` = HMAC-SHA256(chain key, canonical_json(chained fields) || prev_mac); see
    `kiln.security.audit.chain`. `detail` must not be mutated.
    """

    seq: int
    ts_us: int
    actor: str
    source: str
    category: Category
    action: str
    target: str
    result: Result
    tenant: str | None
    detail: dict[str, Any]
    prev_mac: str
    mac: str

    @property
    def time(self) -> datetime:
        """`ts_us` as a UTC datetime."""
        return us_to_datetime(self.ts_us)

    def chained(self) -> dict[str, Any]:
        """The fields the MAC covers, as plain JSON values."""
        return {
            "seq": self.seq,
            "ts_us": self.ts_us,
            "actor": self.actor,
            "source": self.source,
            "category": self.category.value,
            "action": self.action,
            "target": self.target,
            "result": self.result.value,
            "tenant": self.tenant,
            "detail": self.detail,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every stored field: the form of a database row and of an archive line."""
        return {**self.chained(), "prev_mac": self.prev_mac, "mac": self.mac}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from `to_dict` output (a row, an archive line); KeyError/ValueError if not one."""
        detail = data["detail"]
        if not isinstance(detail, dict):
            raise ValueError(f"detail must be a JSON object, got {type(detail).__name__}")
        return cls(
            seq=int(data["seq"]),
            ts_us=int(data["ts_us"]),
            actor=str(data["actor"]),
            source=str(data["source"]),
            category=Category(data["category"]),
            action=str(data["action"]),
            target=str(data["target"]),
            result=Result(data["result"]),
            tenant=None if data["tenant"] is None else str(data["tenant"]),
            detail=detail,
            prev_mac=str(data["prev_mac"]),
            mac=str(data["mac"]),
        )


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of `detail` with secrets redacted at every depth, bounded in size.

    Values JSON cannot hold become text (datetimes as ISO 8601, bytes as hex, anything else via
    str), so that a record never fails to be written because of what its detail carries.
    """
    if not detail:
        return {}
    cleaned = _clean_mapping(detail, 0)
    size = len(canonical_json(cleaned))
    if size > MAX_DETAIL_BYTES:
        return {
            "truncated": True,
            "bytes": size,
            "sha256": hashlib.sha256(canonical_json(cleaned)).hexdigest(),
        }
    return cleaned


def _clean_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in mapping.items():
        key = _text(str(raw_key))
        out[key] = REDACTED if is_secret_name(key) else _clean(value, depth + 1)
    return out


def _clean(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "[too deep]"
    if value is None or isinstance(value, bool | int):
        return int(value) if isinstance(value, Enum) else value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return _clean_mapping(value, depth)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_clean(v, depth + 1) for v in value]
        if isinstance(value, set | frozenset):  # no order of its own; give it a stable one
            items.sort(key=canonical_json)
        return items
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _clean(value.value, depth + 1)
    return _text(str(value))


def _field(name: str, value: str) -> str:
    text = _text(str(value))
    limit = FIELD_LIMITS[name]
    return text if len(text) <= limit else text[: limit - len(_CUT_MARK)] + _CUT_MARK


def _text(value: str) -> str:
    """Text every backend can store: PostgreSQL refuses NUL characters, and lone surrogates
    (from undecodable input) cannot be encoded as UTF-8."""
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
