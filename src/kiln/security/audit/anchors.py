"""Published anchors: the chain's head copied, now and then, to a place the data directory's
holder cannot write (another disk, a mounted share, a write-once bucket synced from it).

Whoever holds the chain key can rewrite the chain so that it verifies again; an anchor
published before the rewrite still names the old MAC of its record, so `verify` with the
anchors finds the rewrite. Each line of `audit-anchors.jsonl` is one anchor: seq, MAC and the
time it was published. The file is only ever appended to, so an anchor, once written, is never
rewritten by Kiln; records newer than the last anchor are not covered by it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kiln.security.audit.errors import AuditError

ANCHORS_FILE = "audit-anchors.jsonl"


@dataclass(frozen=True, slots=True)
class PublishedAnchor:
    """Record `seq` had MAC `mac` when the anchor was published; `where` names the line."""

    seq: int
    mac: str
    where: str


def read_published(directory: Path) -> dict[int, PublishedAnchor]:
    """The anchors published in `directory` by seq (the earliest line for a seq wins: later
    ones cannot be more trustworthy). Raises AuditError when the directory is missing or a line
    is not an anchor: silently checking against fewer anchors than were published is what a
    rewrite would want."""
    if not directory.is_dir():
        raise AuditError(
            f"the audit anchor directory {directory} does not exist; mount it or correct "
            "security.audit_anchor_dir (or --anchors)"
        )
    path = directory / ANCHORS_FILE
    anchors: dict[int, PublishedAnchor] = {}
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return anchors
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            seq, mac = doc["seq"], doc["mac"]
            if not (isinstance(seq, int) and seq >= 1 and isinstance(mac, str)):
                raise TypeError("seq must be a positive integer and mac a string")
        except (ValueError, KeyError, TypeError) as err:
            raise AuditError(
                f"{path} line {number} is not an audit anchor ({err}); restore the file "
                "from where it was copied"
            ) from err
        anchors.setdefault(seq, PublishedAnchor(seq, mac, f"{path.name} line {number}"))
    return anchors


def publish(directory: Path, seq: int, mac: str, ts_us: int) -> None:
    """Append the anchor (`seq`, `mac`) to `directory`'s anchor file, durably.

    Appending (never replacing) keeps every earlier anchor even if this write is cut short: a
    torn last line is what `read_published` reports, and nothing before it is lost.
    """
    # Only the folder itself: if the share it lives on is not mounted, its parent is missing
    # and this fails, rather than quietly writing anchors to the data disk.
    directory.mkdir(exist_ok=True)
    line = json.dumps({"seq": seq, "mac": mac, "ts_us": ts_us}, sort_keys=True) + "\n"
    fd = os.open(directory / ANCHORS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
