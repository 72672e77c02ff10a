"""The head anchor: the newest record's seq and MAC, kept in a file beside the database.

A chain shows a changed, removed or reordered record, but not the newest records cut off: what
remains is still a valid chain. The anchor, rewritten after every commit and itself MACed,
says where the chain ended. It may lag the database by the records of a commit that crashed
before the anchor was written, never lead it; so a database that ends before its anchor has
lost records.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from kiln.core.files import atomic_write
from kiln.security.audit.chain import head_mac

HEAD_FILE = "audit.head"
_VERSION = 1


class HeadInvalidError(ValueError):
    """The anchor file exists but is malformed, or its MAC does not verify with the key."""


@dataclass(frozen=True, slots=True)
class Head:
    """The newest record's place in the chain."""

    seq: int
    mac: str


def head_path(data_dir: Path) -> Path:
    return data_dir / HEAD_FILE


def write_head(path: Path, key: bytes, head: Head) -> None:
    """Replace the anchor at `path` atomically and durably."""
    document = {
        "version": _VERSION,
        "seq": head.seq,
        "mac": head.mac,
        "anchor_mac": head_mac(key, head.seq, head.mac),
    }
    atomic_write(path, json.dumps(document).encode("ascii") + b"\n")


def read_head(path: Path, key: bytes) -> Head | None:
    """The anchor at `path`, None when there is none; HeadInvalidError when it cannot be trusted."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(raw)
        seq, mac, anchor_mac = document["seq"], document["mac"], document["anchor_mac"]
        if not (isinstance(seq, int) and isinstance(mac, str) and isinstance(anchor_mac, str)):
            raise TypeError("seq must be an integer, mac and anchor_mac strings")
    except (ValueError, KeyError, TypeError) as err:
        raise HeadInvalidError(f"{path} is not a head anchor: {err}") from err
    if not hmac.compare_digest(head_mac(key, seq, mac), anchor_mac):
        raise HeadInvalidError(f"{path} does not verify: wrong key or anchor tampered")
    return Head(seq, mac)
