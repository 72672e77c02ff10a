"""Verification of the whole audit trail: archive segments and database as one chain, and the
head anchor after it. Synchronous, for `kiln audit verify`; read-only.

Each record's MAC is checked with its stored fields and stored prev_mac (a changed field shows
as a MAC mismatch on that record alone), then its link: its prev_mac must be the MAC of the
record before it, and its seq one more (a deleted record shows as a seq jump). A record whose
MAC verifies only under another seq was moved; moves that permute each other are reported as
records out of order. Finally the newest record is compared with the head anchor, which is
what shows deleted newest records. Every problem names the seq it concerns.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from kiln.security.audit.archive import Segment, archive_dir, list_segments, read_segment
from kiln.security.audit.chain import ZERO_MAC, chain_key, mac_matches
from kiln.security.audit.engine import create_audit_engine, default_url, parse_url, sqlite_file
from kiln.security.audit.errors import AuditError
from kiln.security.audit.head import Head, HeadInvalidError, head_path, read_head
from kiln.security.audit.schema import AUDIT_LOG

MAX_PROBLEMS = 100  # listed; the rest are counted
# A record that fails its MAC is tried under seqs this far from its own, to tell a moved
# record from a changed one; only for the first failures, so a wrong key stays cheap.
_MOVE_WINDOW = 32
_MOVE_SEARCHES = 100
_ROWS_PER_FETCH = 5000
_LAST = math.inf  # sorts problems about the whole log after those about a record


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """`ok` when no problem was found; `checked` records were verified, `archived` of them in
    archive segments; `newest` is the highest seq found (0 for none)."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    archived: int = 0
    newest: int = 0


def verify(url: str, key: bytes, data_dir: Path) -> VerifyResult:
    """Check the audit log at `url` with its anchor and archive in `data_dir`.

    `key` is the per-install secret the log was written with. Raises AuditError when there is
    no log to check (no database and no anchor), and SQLAlchemyError/OSError when it cannot
    be read.
    """
    secret = chain_key(key)
    anchor_file = head_path(data_dir)
    # The anchor is read first: it may lag the database, never lead it, only if read before.
    anchor: Head | None = None
    anchor_problem: str | None = None
    try:
        anchor = read_head(anchor_file, secret)
    except HeadInvalidError:
        anchor_problem = f"wrong key or anchor tampered ({anchor_file.name} does not verify)"
    anchor_exists = anchor is not None or anchor_problem is not None
    checker = _Checker(secret, None if anchor is None else anchor.seq)
    engine = _reader_engine(url)
    if engine is None:
        return _no_database(url, anchor, anchor_problem)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(AUDIT_LOG.name):
                if anchor_exists:
                    return VerifyResult(False, 0, ["the audit table is missing from the database"])
                raise AuditError(f"there is no audit log in {_shown(url)}")
            rows = (
                conn.execution_options(stream_results=True, yield_per=_ROWS_PER_FETCH)
                .execute(select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq))
                .mappings()
            )
            # Listed once the query holds its snapshot: a segment archived meanwhile is then
            # both in a file and in the rows, which the checker accepts when they agree.
            for segment in list_segments(archive_dir(data_dir)):
                checker.feed_segment(segment)
            for row in rows:
                checker.feed(row, "")
    finally:
        engine.dispose()
    return checker.finish(anchor, anchor_problem, anchor_file)


def verify_main(data_dir: Path, url: str | None = None, *, key: bytes | None = None) -> int:
    """`kiln audit verify`: print a report; 0 when intact, 1 when tampered, 2 when unreadable.

    The key is the install secret in `data_dir` unless given.
    """
    if key is None:
        # Imported here: only the command line reads the secret from disk.
        from kiln.security.secrets import load_secret

        try:
            key = load_secret(data_dir)
        except (OSError, ValueError) as err:
            print(f"kiln audit verify: cannot read the install secret: {err}", file=sys.stderr)
            return 2
    target = url or default_url(data_dir)
    try:
        result = verify(target, key, data_dir)
    except (AuditError, SQLAlchemyError, OSError, ValueError) as err:
        print(f"kiln audit verify: cannot read the audit log: {err}", file=sys.stderr)
        return 2
    if result.ok:
        print(
            f"audit log OK: {result.checked} records verified ({result.archived} archived, "
            f"{result.checked - result.archived} in the database), newest record {result.newest}"
        )
        return 0
    print(
        f"audit log TAMPERED: problems found in {result.checked} records checked "
        f"({_shown(target)}, {data_dir}):"
    )
    for problem in result.problems:
        print(f"  {problem}")
    return 1


class _Checker:
    """Walks the records in seq order, archive segments first, and collects the problems."""

    def __init__(self, key: bytes, anchor_seq: int | None) -> None:
        self._key = key
        self._anchor_seq = anchor_seq
        self._anchor_record_mac: Any = None
        self.checked = 0
        self.archived = 0
        self._failed = 0
        self._prev_seq = 0
        self._prev_mac: Any = ZERO_MAC
        self._prev_ok = True
        # The newest segment's verified MACs: rows still in the database after their segment
        # was written (archiving interrupted before the delete) must match them.
        self._segment_macs: dict[int, Any] = {}
        self._searches = 0
        self._moved: dict[int, tuple[int, str]] = {}  # stored seq -> (seq it verifies as, where)
        self._modified: list[tuple[float, str]] = []
        self._problems: list[tuple[float, str]] = []

    def feed_segment(self, segment: Segment) -> None:
        where = f"archive {segment.name}: "
        records: list[dict[str, Any]] = []
        for number, data in read_segment(segment):
            if data is None or not _is_seq(data.get("seq")):
                self._problems.append((segment.first, f"{where}line {number} is not a record"))
                continue
            records.append(data)
        # Line order is not evidence, seq is: the database is read by seq too.
        records.sort(key=lambda data: int(data["seq"]))
        macs: dict[int, Any] = {}
        checked = self.checked
        for data in records:
            if self.feed(data, where):
                macs[data["seq"]] = data.get("mac")
        self.archived += self.checked - checked
        self._segment_macs = macs

    def feed(self, data: Mapping[Any, Any], where: str) -> bool:
        """Check the next record; True when it verifies and is not a repeat."""
        seq: int = data["seq"]
        mac = data.get("mac")
        if seq <= self._prev_seq:
            if self._segment_macs.get(seq) == mac and self._verifies(data):
                return False  # the same record archived and not yet deleted: not a problem
            self._problems.append(
                (seq, f"{where}record {seq} appears twice, with different content")
            )
            return False
        self.checked += 1
        ok = self._verifies(data)
        if not ok:
            self._failed += 1
            original = self._original_seq(data)
            if original is None:
                self._modified.append((seq, f"{where}record {seq} was modified (MAC mismatch)"))
            else:
                self._moved[seq] = (original, where)
        if seq > self._prev_seq + 1:
            first, last = self._prev_seq + 1, seq - 1
            what = f"record {first} is" if first == last else f"records {first} to {last} are"
            why = f"the log starts at {seq}" if first == 1 else f"seq jumps {first - 1} -> {seq}"
            self._problems.append((first, f"{where}{what} missing ({why})"))
        elif ok and self._prev_ok and data.get("prev_mac") != self._prev_mac:
            if seq == 1:
                message = "record 1 does not start the chain (its prev_mac is not zero)"
            else:
                message = f"record {seq} does not follow record {seq - 1} (chain link broken)"
            self._problems.append((seq, where + message))
        if seq == self._anchor_seq:
            self._anchor_record_mac = mac
        self._prev_seq, self._prev_mac, self._prev_ok = seq, mac, ok
        return ok

    def finish(self, anchor: Head | None, anchor_problem: str | None, path: Path) -> VerifyResult:
        problems = self._problems + self._moved_problems()
        if self.checked and self._failed == self.checked and not self._moved and anchor is None:
            # Not one record verifies and neither does an anchor: listing each one hides the cause.
            problems.append((0, f"no record verifies ({self.checked} checked): wrong key?"))
        else:
            problems += self._modified
        if anchor_problem is not None:
            problems.append((_LAST, anchor_problem))
        elif anchor is None:
            if self.checked:
                problems.append(
                    (
                        _LAST,
                        f"the head anchor {path.name} is missing: cannot tell whether the "
                        "newest records were deleted",
                    )
                )
        elif self._prev_seq < anchor.seq:
            problems.append(
                (
                    _LAST,
                    f"the newest records after {self._prev_seq} were deleted "
                    f"(anchor says {anchor.seq})",
                )
            )
        elif self._anchor_record_mac is not None and self._anchor_record_mac != anchor.mac:
            problems.append(
                (anchor.seq, f"record {anchor.seq} is not the record the head anchor names")
            )
        problems.sort(key=lambda p: p[0])
        listed = [message for _, message in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            listed.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        return VerifyResult(
            ok=not problems,
            checked=self.checked,
            problems=listed,
            archived=self.archived,
            newest=self._prev_seq,
        )

    def _verifies(self, data: Mapping[str, Any]) -> bool:
        return mac_matches(self._key, data, data.get("prev_mac"), data.get("mac"))  # type: ignore[arg-type]

    def _original_seq(self, data: Mapping[str, Any]) -> int | None:
        """The seq under which `data` verifies, if one is near its own."""
        if self._searches >= _MOVE_SEARCHES:
            return None
        self._searches += 1
        seq: int = data["seq"]
        for distance in range(1, _MOVE_WINDOW + 1):
            for candidate in (seq - distance, seq + distance):
                if candidate >= 1 and self._verifies({**data, "seq": candidate}):
                    return candidate
        return None

    def _moved_problems(self) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        reported: set[int] = set()
        for start in sorted(self._moved):
            if start in reported:
                continue
            cycle = [start]
            following = self._moved[start][0]
            while following in self._moved and following not in cycle:
                cycle.append(following)
                following = self._moved[following][0]
            where = self._moved[start][1]
            if following == start:  # records that took each other's places
                reported.update(cycle)
                seqs = [str(s) for s in sorted(cycle)]
                names = ", ".join(seqs[:-1]) + " and " + seqs[-1]
                out.append((min(cycle), f"{where}records {names} are out of order"))
            else:
                reported.add(start)
                original = self._moved[start][0]
                out.append((start, f"{where}record {start} is record {original} renumbered"))
        return out


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _reader_engine(url: str) -> Engine | None:
    """An engine that reads without creating anything; None when the SQLite file is absent."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        return None
    return create_audit_engine(url, writer=False)


def _no_database(url: str, anchor: Head | None, anchor_problem: str | None) -> VerifyResult:
    if anchor is None and anchor_problem is None:
        raise AuditError(f"there is no audit log at {_shown(url)} (no database, no head anchor)")
    said = "" if anchor is None else f" (anchor says {anchor.seq})"
    return VerifyResult(False, 0, [f"the audit database {_shown(url)} is missing{said}"])


def _shown(url: str) -> str:
    return parse_url(url).render_as_string(hide_password=True)
