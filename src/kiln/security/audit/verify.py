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
import threading
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from kiln.db.engines import create_db_engine, parse_url, sqlite_file
from kiln.db.urls import sqlite_url
from kiln.security.audit.anchors import PublishedAnchor, read_published
from kiln.security.audit.archive import Segment, archive_dir, list_segments, read_segment
from kiln.security.audit.chain import ZERO_MAC, chain_key, mac_matches
from kiln.security.audit.errors import AuditError
from kiln.security.audit.head import Head, HeadInvalidError, head_path, read_head
from kiln.security.audit.schema import AUDIT_LOG, DB_FILE
from kiln.security.audit.store import HIDE_PARAMETERS

MAX_PROBLEMS = 100  # listed; the rest are counted
# A record that fails its MAC is tried under seqs this far from its own, to tell a moved
# record from a changed one; only for the first failures, so a wrong key stays cheap.
_MOVE_WINDOW = 32
_MOVE_SEARCHES = 100
_ROWS_PER_FETCH = 5000
_LAST = math.inf  # sorts problems about the whole log after those about a record


class VerifyStopped(AuditError):
    """The check was asked to stop before it ended (the server is shutting down)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A place in the chain that was verified: the record's seq and MAC, and which of the
    keys (oldest first) signed it. The next check starts after it."""

    seq: int
    mac: str
    key_index: int = 0


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """`ok` when no problem was found; `checked` records were verified, `archived` of them in
    archive segments; `newest` is the highest seq found (0 for none). `first_problem_seq` is
    the record the first problem concerns (None when it concerns the log as a whole), `end`
    where the chain verified up to, for the next incremental check."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    archived: int = 0
    newest: int = 0
    first_problem_seq: int | None = None
    end: Checkpoint | None = None
    key_starts: dict[int, int] = field(default_factory=dict)


def chain_keys(key: bytes, previous_keys: Sequence[bytes] = ()) -> list[bytes]:
    """The chain keys of secrets `previous_keys` then `key`, oldest first."""
    return [chain_key(secret) for secret in (*previous_keys, key)]


def verify(
    url: str,
    key: bytes,
    data_dir: Path,
    *,
    previous_keys: Sequence[bytes] = (),
    anchors_dir: Path | None = None,
    stop: threading.Event | None = None,
    anchor_required: bool = True,
) -> VerifyResult:
    """Check the audit log at `url` with its anchor and archive in `data_dir`.

    `key` is the secret the log is written with now; `previous_keys` secrets it was written
    with before, oldest first (records signed by one key never follow records signed by a
    newer one). With `anchors_dir`, every published anchor there must name a record of the
    chain as it is: a chain rewritten with the key after an anchor was published shows there.
    Setting `stop` ends the check early with VerifyStopped. Without `anchor_required`, a
    missing head anchor is no problem (the running writer reports that itself, and its first
    anchor may be written just after its first record was read). Raises AuditError when there is no log to check (no database and no anchor), and
    SQLAlchemyError/OSError when it cannot be read.
    """
    keys = chain_keys(key, previous_keys)
    published = {} if anchors_dir is None else read_published(anchors_dir)
    anchor, anchor_problem, anchor_file = _read_anchor(data_dir, keys[-1])
    anchor_exists = anchor is not None or anchor_problem is not None
    checker = _Checker(keys, None if anchor is None else anchor.seq, published=published, stop=stop)
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
            with closing(rows):
                for segment in list_segments(archive_dir(data_dir)):
                    checker.feed_segment(segment)
                for row in rows:
                    checker.feed(row, "")
    finally:
        engine.dispose()
    return checker.finish(anchor, anchor_problem, anchor_file, anchor_required=anchor_required)


def verify_from(
    url: str,
    keys: Sequence[bytes],
    data_dir: Path,
    start: Checkpoint,
    *,
    published: Mapping[int, PublishedAnchor] | None = None,
    stop: threading.Event | None = None,
) -> VerifyResult | None:
    """Check only the records after `start` (chain keys `keys`, oldest first), and the head
    anchor after them; None when that cannot be done from the database alone (the records
    after `start` were archived meanwhile) and a full `verify` is needed. A missing head
    anchor is not a problem here (see `verify`'s `anchor_required`)."""
    anchor, anchor_problem, anchor_file = _read_anchor(data_dir, keys[-1])
    checker = _Checker(
        keys, None if anchor is None else anchor.seq, published=published, start=start, stop=stop
    )
    engine = _reader_engine(url)
    if engine is None:
        return _no_database(url, anchor, anchor_problem)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                select(AUDIT_LOG.c.mac).where(AUDIT_LOG.c.seq == start.seq)
            ).scalar_one_or_none()
            rows = (
                conn.execution_options(stream_results=True, yield_per=_ROWS_PER_FETCH)
                .execute(
                    select(AUDIT_LOG).where(AUDIT_LOG.c.seq > start.seq).order_by(AUDIT_LOG.c.seq)
                )
                .mappings()
            )
            with closing(rows):
                for row in rows:
                    if not checker.checked and row["seq"] != start.seq + 1 and stored is None:
                        return None  # the records between were archived: a full pass is needed
                    checker.feed(row, "")
    finally:
        engine.dispose()
    if stored is not None and stored != start.mac:
        checker.problem(start.seq, f"record {start.seq} was replaced after it was verified")
    return checker.finish(anchor, anchor_problem, anchor_file, anchor_required=False)


def verify_range(
    url: str,
    keys: Sequence[bytes],
    first: int,
    last: int,
    key_index: int = 0,
    *,
    stop: threading.Event | None = None,
) -> VerifyResult:
    """Re-check the records `first`..`last` still in the database, and their link to the
    record before; `key_index` is the oldest key that may have signed them. No head anchor."""
    engine = _reader_engine(url)
    if engine is None:
        return VerifyResult(False, 0, [f"the audit database {_shown(url)} is missing"])
    seq = AUDIT_LOG.c.seq
    try:
        with engine.connect() as conn:
            before = conn.execute(
                select(seq, AUDIT_LOG.c.mac).where(seq < first).order_by(seq.desc()).limit(1)
            ).first()
            rows = (
                conn.execution_options(stream_results=True, yield_per=_ROWS_PER_FETCH)
                .execute(select(AUDIT_LOG).where(seq >= first).where(seq <= last).order_by(seq))
                .mappings()
            )
            start = None if before is None else Checkpoint(before.seq, before.mac, key_index)
            checker = _Checker(keys, None, start=start, key_index=key_index, stop=stop)
            with closing(rows):
                for row in rows:
                    if start is None and not checker.checked:
                        # The oldest record in the database: archived ones before it are
                        # checked by the full pass, so the chain is taken up where it stands.
                        checker.resume(row["seq"] - 1, row["prev_mac"])
                    checker.feed(row, "")
    finally:
        engine.dispose()
    return checker.finish(None, None, None)


def verify_main(
    data_dir: Path,
    url: str | None = None,
    *,
    key: bytes | None = None,
    previous_keys: Sequence[bytes] = (),
    anchors_dir: Path | None = None,
) -> int:
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
    target = url or sqlite_url(data_dir / DB_FILE)
    try:
        result = verify(target, key, data_dir, previous_keys=previous_keys, anchors_dir=anchors_dir)
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

    def __init__(
        self,
        keys: Sequence[bytes],
        anchor_seq: int | None,
        *,
        published: Mapping[int, PublishedAnchor] | None = None,
        start: Checkpoint | None = None,
        key_index: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        self._stop = stop
        self._keys = list(keys)
        # Keys are used in order: once a newer key signs a record, an older one never does
        # again, so the key of a data directory that no longer holds the newest cannot forge
        # what follows.
        self._key_index = key_index if start is None else start.key_index
        self.key_starts: dict[int, int] = {}
        self._anchor_seq = anchor_seq
        self._anchor_record_mac: Any = None
        self._published = published or {}
        self._partial = start is not None
        self.checked = 0
        self.archived = 0
        self._failed = 0
        self._prev_seq = 0
        self._prev_mac: Any = ZERO_MAC
        self._prev_ok = True
        if start is not None:
            self.resume(start.seq, start.mac)
        # The newest segment's verified MACs: rows still in the database after their segment
        # was written (archiving interrupted before the delete) must match them.
        self._segment_macs: dict[int, Any] = {}
        self._searches = 0
        self._moved: dict[int, tuple[int, str]] = {}  # stored seq -> (seq it verifies as, where)
        self._modified: list[tuple[float, str]] = []
        self._problems: list[tuple[float, str]] = []

    def resume(self, seq: int, mac: str) -> None:
        """Continue the chain after record `seq` whose MAC is `mac`, taken as verified."""
        self._partial = True
        self._prev_seq, self._prev_mac, self._prev_ok = seq, mac, True

    def problem(self, seq: int, message: str) -> None:
        self._problems.append((seq, message))

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
        if self._stop is not None and self._stop.is_set():
            raise VerifyStopped("the audit log check was stopped")
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
        ok = self._verifies(data, advance=True)
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
        published = self._published.get(seq)
        if published is not None and published.mac != mac:
            self._problems.append(
                (
                    seq,
                    f"{where}record {seq} is not the record the anchor published in "
                    f"{published.where} names: the chain was rewritten after it",
                )
            )
        self._prev_seq, self._prev_mac, self._prev_ok = seq, mac, ok
        return ok

    def finish(
        self,
        anchor: Head | None,
        anchor_problem: str | None,
        path: Path | None,
        *,
        anchor_required: bool = True,
    ) -> VerifyResult:
        problems = self._problems + self._moved_problems()
        wrong_key = self.checked and self._failed == self.checked and not self._partial
        if wrong_key and not self._moved and anchor is None:
            # Not one record verifies and neither does an anchor: listing each one hides the cause.
            problems.append((0, f"no record verifies ({self.checked} checked): wrong key?"))
        else:
            problems += self._modified
        if path is None:
            pass  # a range of the chain: the head anchor concerns its end only
        elif anchor_problem is not None:
            problems.append((_LAST, anchor_problem))
        elif anchor is None:
            if self.checked and anchor_required:
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
        if path is not None and self._published:
            last = max(self._published)
            if last > self._prev_seq:
                problems.append(
                    (
                        _LAST,
                        f"the newest records after {self._prev_seq} were deleted (the anchor "
                        f"published in {self._published[last].where} says {last})",
                    )
                )
        problems.sort(key=lambda p: p[0])
        listed = [message for _, message in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            listed.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        first = problems[0][0] if problems else _LAST
        return VerifyResult(
            ok=not problems,
            checked=self.checked,
            problems=listed,
            archived=self.archived,
            newest=self._prev_seq,
            first_problem_seq=int(first) if 0 < first < _LAST else None,
            end=Checkpoint(self._prev_seq, str(self._prev_mac), self._key_index),
            key_starts=dict(self.key_starts),
        )

    def _verifies(self, data: Mapping[str, Any], *, advance: bool = False) -> bool:
        last = len(self._keys) if advance else self._key_index + 1
        for index in range(self._key_index, last):
            if mac_matches(self._keys[index], data, data.get("prev_mac"), data.get("mac")):  # type: ignore[arg-type]
                if index != self._key_index or not self.key_starts:
                    self.key_starts.setdefault(index, data["seq"])
                self._key_index = index
                return True
        return False

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


def _read_anchor(data_dir: Path, key: bytes) -> tuple[Head | None, str | None, Path]:
    """The head anchor, or why it cannot be trusted. Read before the records: it may lag the
    database, never lead it, only if read first."""
    anchor_file = head_path(data_dir)
    try:
        return read_head(anchor_file, key), None, anchor_file
    except HeadInvalidError:
        return (
            None,
            f"wrong key or anchor tampered ({anchor_file.name} does not verify)",
            anchor_file,
        )


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _reader_engine(url: str) -> Engine | None:
    """An engine that reads without creating anything; None when the SQLite file is absent."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        return None
    # No pragmas and no directory made: a reader never writes to what it checks.
    return create_db_engine(url, hide_parameters=HIDE_PARAMETERS, create_dir=False)


def _no_database(url: str, anchor: Head | None, anchor_problem: str | None) -> VerifyResult:
    if anchor is None and anchor_problem is None:
        raise AuditError(f"there is no audit log at {_shown(url)} (no database, no head anchor)")
    said = "" if anchor is None else f" (anchor says {anchor.seq})"
    return VerifyResult(False, 0, [f"the audit database {_shown(url)} is missing{said}"])


def _shown(url: str) -> str:
    return parse_url(url).render_as_string(hide_password=True)
