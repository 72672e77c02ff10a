"""The hash chain: each record's MAC covers its fields and the MAC before it.

mac_n = HMAC-SHA256(K, canonical_json(fields of record n, seq included) || mac_{n-1}), with
mac_0 = 32 zero bytes. K is derived from the install secret (`kiln.security.secrets`), so
whoever can write the database but cannot read the secret cannot recompute the chain after
changing, removing or reordering a record. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from kiln.security.audit.record import CHAINED_FIELDS, AuditRecord, Entry, canonical_json
from kiln.security.secrets import derive_key

MAC_BYTES = 32
ZERO_MAC = "00" * MAC_BYTES
# The anchor's MAC and the records' share the key; a label keeps one from passing for the other.
_HEAD_LABEL = b"kiln audit head anchor v1\x00"


def chain_key(secret: bytes) -> bytes:
    """The audit chain's key: derived from the per-install secret for this purpose alone.

    Raises ValueError for a secret shorter than an install secret.
    """
    return derive_key(secret, "audit")


def record_mac(key: bytes, fields: Mapping[str, Any], prev_mac: str) -> str:
    """The MAC of a record with these chained `fields` following `prev_mac` (hex).

    Raises ValueError when `prev_mac` is not a hex MAC or a field is missing (a row someone
    edited by hand, say).
    """
    prev = bytes.fromhex(prev_mac)
    if len(prev) != MAC_BYTES:
        raise ValueError(f"a MAC has {MAC_BYTES} bytes, got {len(prev)}")
    message = canonical_json({name: fields[name] for name in CHAINED_FIELDS}) + prev
    # The one-shot digest: the same HMAC, computed in C without a Python HMAC object, which a
    # pass over a million records feels.
    return hmac.digest(key, message, "sha256").hex()


def mac_matches(key: bytes, fields: Mapping[str, Any], prev_mac: str, mac: str) -> bool:
    """Whether `mac` is the MAC of `fields` after `prev_mac`; False for malformed input."""
    try:
        expected = record_mac(key, fields, prev_mac)
    except (ValueError, KeyError, TypeError):
        return False
    return hmac.compare_digest(expected, str(mac))


def chain(key: bytes, entry: Entry, *, seq: int, ts_us: int, prev_mac: str) -> AuditRecord:
    """`entry` as record `seq`, linked after `prev_mac`."""
    unlinked = AuditRecord(
        seq=seq,
        ts_us=ts_us,
        actor=entry.actor,
        source=entry.source,
        category=entry.category,
        action=entry.action,
        target=entry.target,
        result=entry.result,
        tenant=entry.tenant,
        detail=entry.detail,
        prev_mac=prev_mac,
        mac="",
    )
    mac = record_mac(key, unlinked.chained(), prev_mac)
    return dataclasses.replace(unlinked, mac=mac)


def head_mac(key: bytes, seq: int, mac: str) -> str:
    """The MAC that authenticates a head anchor (the newest record's seq and MAC)."""
    message = _HEAD_LABEL + canonical_json({"seq": seq, "mac": mac})
    return hmac.new(key, message, hashlib.sha256).hexdigest()
