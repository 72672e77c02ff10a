"""The audit store: the chained log in a relational database (SQLite or PostgreSQL, same code).

Synchronous and single-writer: `kiln.security.audit.service` runs every `append` on one
worker thread. Each append reads the newest record inside its own transaction and links to
it, so another process appending to the same database (a CLI command, say) interleaves
without a fork in the chain: a clash on `seq` is retried from the new head.

The writer also guards what it has written. It remembers the newest record it knows of and
never reuses a seq below it: if the newest records vanish from the database, the next record
continues after the remembered one, so the gap stays visible to `verify`, and an
`audit.integrity` record says what was found. The same check runs against the head anchor at
open, where a finding is recorded the same way before the log is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from kiln.db.engines import SYNCHRONOUS_FULL, WAL, create_db_engine, parse_url
from kiln.security.audit import migrations
from kiln.security.audit.archive import archive_dir, write_segment
from kiln.security.audit.chain import ZERO_MAC, chain, chain_key, mac_matches
from kiln.security.audit.errors import AuditError, AuditKeyError
from kiln.security.audit.head import Head, HeadInvalidError, head_path, read_head, write_head
from kiln.security.audit.record import AuditRecord, Category, Entry, Result
from kiln.security.audit.schema import AUDIT_LOG

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_RECORDS = 1_000_000
MAX_QUERY_LIMIT = 10_000
# Fill levels at which the log warns, once, before it is full.
CAPACITY_LEVELS = (0.80, 0.95)
# A writer's SQLite connections: WAL, so that readers such as `kiln audit verify` proceed while
# a record commits, and synchronous=FULL, since a record is acknowledged only once on disk.
# (A reader sets nothing, so that it never writes to the file it checks: see `verify`.)
WRITER_PRAGMAS = (WAL, SYNCHRONOUS_FULL)
# Errors leave out the statement's parameters, for writers and readers alike: they hold who did
# what, and error messages end up in logs that more people read than the audit trail.
HIDE_PARAMETERS = True

_INSERT_ATTEMPTS = 5
# At open, the key is taken as right when the anchor or one of this many newest records verifies.
_KEY_CHECK_RECORDS = 3
_ARCHIVE_RETRY_US = 60_000_000

_seq = AUDIT_LOG.c.seq


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of a query; times are UTC microseconds, `start_us` inclusive, `end_us` exclusive.

    Results come by ascending seq, or descending with `newest_first`; `after_seq` and
    `before_seq` page through them.
    """

    start_us: int | None = None
    end_us: int | None = None
    actor: str | None = None
    category: Category | None = None
    action: str | None = None
    result: Result | None = None
    tenant: str | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    newest_first: bool = False
    limit: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_QUERY_LIMIT:
            raise ValueError(
                f"limit must be between 1 and {MAX_QUERY_LIMIT}, got {self.limit}; "
                "page with after_seq/before_seq for more"
            )


def archive_batch_for(max_records: int, archive_batch: int | None) -> int:
    """The records to archive at a time (default a tenth of `max_records`); ValueError when the
    bounds cannot work."""
    if max_records < 2:
        raise ValueError(f"max_records must be at least 2, got {max_records}")
    batch = max(1, max_records // 10) if archive_batch is None else archive_batch
    if not 1 <= batch < max_records:
        # The newest record must stay in the database: it is where the chain continues.
        raise ValueError(
            f"archive_batch must be between 1 and max_records - 1 ({max_records - 1}), got {batch}"
        )
    return batch


class AuditStore:
    """The chained audit log in one database, with its head anchor and archive in `data_dir`.

    `secret` is the per-install secret, or the audit log's own with `previous_secrets` the
    ones it replaced (`kiln.security.audit.key`); the chain key is derived from it. The
    database holds at most about `max_records` records: when full, the oldest `archive_batch`
    (default a tenth) move to archive segments. Call `open` before anything else.
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        data_dir: Path,
        now_us: Callable[[], int],
        max_records: int = DEFAULT_MAX_RECORDS,
        archive_batch: int | None = None,
        previous_secrets: Sequence[bytes] = (),
    ) -> None:
        batch = archive_batch_for(max_records, archive_batch)
        self.url = url
        self.max_records = max_records
        self.archive_batch = batch
        self.data_dir = data_dir
        self._key = chain_key(secret)
        # Keys the older records were signed with (see `kiln.security.audit.key`): accepted for
        # them at open, never for the head anchor; new records are signed with `_key` alone.
        self._previous_keys = [chain_key(s) for s in previous_secrets]
        self._now_us = now_us
        self._head_file = head_path(data_dir)
        self._archive_dir = archive_dir(data_dir)
        self.engine = create_db_engine(
            url, sqlite_pragmas=WRITER_PRAGMAS, hide_parameters=HIDE_PARAMETERS
        )
        self._known: Head | None = None  # the newest record written or seen
        self._first_seq: int | None = None  # the oldest record still in the database
        self._alerted: set[float] = set()
        self._pending_findings: list[str] = []
        # Where the database ended when open found newer records missing (already a finding).
        self._reported_end: int | None = None
        self._archive_retry_at_us = 0
        self.findings: list[str] = []  # integrity findings since open, oldest first
        self.anchor_error: str | None = None
        self.archive_error: str | None = None
        self.archived_records = 0  # moved to the archive by this store since open

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Migrate the database, check its head against the anchor, and record any finding.

        Raises AuditKeyError when neither the anchor nor the newest records verify: appending
        with another key than the log's would make the rest of the chain unverifiable.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.engine.begin() as conn:
            migrations.upgrade(conn)
        with self.engine.connect() as conn:
            self._first_seq = conn.execute(select(func.min(_seq))).scalar_one_or_none()
            self._known = self._check_head(conn)
        fill = self.fill_ratio
        self._alerted = {level for level in CAPACITY_LEVELS if fill >= level}
        if self._alerted:
            _LOGGER.warning(
                "Audit log %.0f%% full (%d of %d records); the oldest are archived to %s when full",
                fill * 100,
                self.count,
                self.max_records,
                self._archive_dir,
            )
        if self._pending_findings:
            self._record_findings("start")

    def dispose(self) -> None:
        self.engine.dispose()

    # -- state ----------------------------------------------------------------------------

    @property
    def head(self) -> Head | None:
        """The newest record known: its seq and MAC."""
        return self._known

    @property
    def count(self) -> int:
        """Records in the database (archived ones not included)."""
        if self._known is None or self._first_seq is None:
            return 0
        return max(0, self._known.seq - self._first_seq + 1)

    @property
    def fill_ratio(self) -> float:
        return self.count / self.max_records

    # -- writing --------------------------------------------------------------------------

    def append(self, entry: Entry) -> AuditRecord:
        """Chain and commit `entry`; returns the stored record once it is durable.

        Housekeeping records (archive, capacity, integrity) may follow it in the chain.
        """
        self._make_room()
        record = self._insert(entry)
        self._alert_capacity()
        if self._pending_findings:
            self._record_findings("append")
        return record

    def _insert(self, entry: Entry) -> AuditRecord:
        for attempt in range(1, _INSERT_ATTEMPTS + 1):
            try:
                record, finding = self._try_insert(entry)
            except IntegrityError:
                # Another process took this seq between our read of the head and our insert.
                if attempt == _INSERT_ATTEMPTS:
                    raise
                _LOGGER.debug("Audit seq taken by another writer; retrying from the new head")
                continue
            if finding is not None:
                _LOGGER.error("Audit log integrity: %s", finding)
                self._pending_findings.append(finding)
            self._known = Head(record.seq, record.mac)
            self._reported_end = None
            if self._first_seq is None:
                self._first_seq = record.seq
            self._write_anchor()
            return record
        raise AssertionError("unreachable")  # the loop returns or raises

    def _try_insert(self, entry: Entry) -> tuple[AuditRecord, str | None]:
        with self.engine.begin() as conn:
            row = conn.execute(select(_seq, AUDIT_LOG.c.mac).order_by(_seq.desc()).limit(1)).first()
            stored = None if row is None else Head(row.seq, row.mac)
            head, finding = self._continue_from(stored)
            record = chain(
                self._key,
                entry,
                seq=1 if head is None else head.seq + 1,
                ts_us=self._now_us(),
                prev_mac=ZERO_MAC if head is None else head.mac,
            )
            conn.execute(insert(AUDIT_LOG), [record.to_dict()])
        return record, finding

    def _continue_from(self, stored: Head | None) -> tuple[Head | None, str | None]:
        """The record to link to: the database's newest, unless records this store knew of
        have gone from it, in which case the chain continues after them and that is a finding."""
        known = self._known
        if known is None or (stored is not None and stored.seq > known.seq):
            return stored, None  # the first record, or another writer appended meanwhile
        if stored is None or stored.seq < known.seq:
            ends = 0 if stored is None else stored.seq
            if ends == self._reported_end:
                return known, None  # found at open, and recorded then
            return known, (
                f"the database ends at record {ends} but the log had reached {known.seq}: "
                f"the newest records were deleted; the chain continues after {known.seq}"
            )
        if stored.mac != known.mac:
            return known, f"record {known.seq} was replaced in the database (its MAC changed)"
        return known, None

    def _write_anchor(self) -> None:
        assert self._known is not None
        try:
            write_head(self._head_file, self._key, self._known)
        except OSError as err:
            # The record is committed; only the detection of a cut-off tail is weakened.
            if self.anchor_error is None:
                _LOGGER.error("Cannot write the audit head anchor %s: %s", self._head_file, err)
            self.anchor_error = f"cannot write {self._head_file}: {err}"
            return
        if self.anchor_error is not None:
            _LOGGER.info("Audit head anchor %s written again", self._head_file)
            self.anchor_error = None

    def _record_findings(self, phase: str) -> None:
        findings, self._pending_findings = self._pending_findings, []
        self.findings.extend(findings)
        self._insert(
            Entry.create(
                actor="system",
                source="system",
                category=Category.AUDIT,
                action="audit.integrity",
                target="audit_log",
                result=Result.FAILURE,
                detail={"phase": phase, "findings": findings},
            )
        )

    # -- bounded storage ------------------------------------------------------------------

    def _make_room(self) -> None:
        count = self.count
        if count < self.max_records:
            return
        now = self._now_us()
        if now < self._archive_retry_at_us:
            return
        try:
            self._archive(count - (self.max_records - self.archive_batch))
        except Exception as err:
            # Never drop: the record is still written, past the bound, and archiving retried.
            self._archive_retry_at_us = now + _ARCHIVE_RETRY_US
            if self.archive_error is None:
                _LOGGER.exception(
                    "Cannot archive the oldest audit records to %s", self._archive_dir
                )
            self.archive_error = f"archiving failed: {err}"
            return
        self.archive_error = None
        # Warn again only once the log has drained below the first level. Archiving keeps a
        # full log at 90-100% by design; repeating the warnings every batch would bury them.
        if self.fill_ratio < CAPACITY_LEVELS[0]:
            self._alerted.clear()

    def _archive(self, n: int) -> None:
        """Move the oldest `n` records to an archive segment, then out of the database."""
        with self.engine.connect() as conn:
            rows = [
                dict(row)
                for row in conn.execute(select(AUDIT_LOG).order_by(_seq).limit(n)).mappings()
            ]
        if not rows:
            return
        segment = write_segment(self._archive_dir, rows)
        with self.engine.begin() as conn:
            conn.execute(
                AUDIT_LOG.delete().where(_seq >= segment.first).where(_seq <= segment.last)
            )
            self._first_seq = conn.execute(select(func.min(_seq))).scalar_one_or_none()
        self.archived_records += len(rows)
        _LOGGER.info(
            "Archived audit records %d to %d to %s", segment.first, segment.last, segment.path
        )
        self._insert(
            Entry.create(
                actor="system",
                source="system",
                category=Category.AUDIT,
                action="audit.archive",
                target=segment.name,
                detail={"first": segment.first, "last": segment.last, "records": len(rows)},
            )
        )

    def _alert_capacity(self) -> None:
        for level in CAPACITY_LEVELS:
            fill = self.fill_ratio
            if fill < level or level in self._alerted:
                continue
            self._alerted.add(level)
            _LOGGER.warning(
                "Audit log %.0f%% full (%d of %d records); at 100%% the oldest %d move to %s",
                level * 100,
                self.count,
                self.max_records,
                self.archive_batch,
                self._archive_dir,
            )
            self._insert(
                Entry.create(
                    actor="system",
                    source="system",
                    category=Category.SYSTEM,
                    action="audit.capacity",
                    target="audit_log",
                    detail={
                        "level": level,
                        "fill_ratio": round(fill, 4),
                        "records": self.count,
                        "max_records": self.max_records,
                    },
                )
            )

    # -- reading --------------------------------------------------------------------------

    def query(self, query: AuditQuery) -> list[AuditRecord]:
        """The records in the database matching `query` (archived records are in the files)."""
        c = AUDIT_LOG.c
        stmt = select(AUDIT_LOG)
        filters: list[tuple[Any, Any]] = [
            (c.actor, query.actor),
            (c.category, None if query.category is None else Category(query.category).value),
            (c.action, query.action),
            (c.result, None if query.result is None else Result(query.result).value),
            (c.tenant, query.tenant),
        ]
        for column, value in filters:
            if value is not None:
                stmt = stmt.where(column == value)
        if query.start_us is not None:
            stmt = stmt.where(c.ts_us >= query.start_us)
        if query.end_us is not None:
            stmt = stmt.where(c.ts_us < query.end_us)
        if query.after_seq is not None:
            stmt = stmt.where(_seq > query.after_seq)
        if query.before_seq is not None:
            stmt = stmt.where(_seq < query.before_seq)
        stmt = stmt.order_by(_seq.desc() if query.newest_first else _seq).limit(query.limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt).mappings()]

    # -- open-time check ------------------------------------------------------------------

    def _check_head(self, conn: Connection) -> Head | None:
        """The newest record to continue from; findings go to `_pending_findings`."""
        newest = [
            dict(row)
            for row in conn.execute(
                select(AUDIT_LOG).order_by(_seq.desc()).limit(_KEY_CHECK_RECORDS)
            ).mappings()
        ]
        keys = [*self._previous_keys, self._key]
        verifies = [
            any(mac_matches(key, row, row["prev_mac"], row["mac"]) for key in keys)
            for row in newest
        ]
        findings: list[str] = []
        try:
            anchor = read_head(self._head_file, self._key)
        except HeadInvalidError as err:
            self._refuse_previous_anchor()
            anchor = None
            findings.append(f"the head anchor cannot be trusted: {err}")
        else:
            if anchor is None and newest:
                findings.append(f"the head anchor {self._head_file} is missing")
        if newest and not any(verifies) and anchor is None:
            where = parse_url(self.url).render_as_string(hide_password=True)
            raise AuditKeyError(
                f"the audit log in {where} does not verify with the configured audit key: "
                f"neither its newest records nor its head anchor {self._head_file} pass their "
                "MAC. If the install secret or security.audit_key_file / KILN_AUDIT_KEY was "
                "replaced, restore the old one; `kiln audit verify` shows what is wrong"
            )
        stored = Head(newest[0]["seq"], newest[0]["mac"]) if newest else None
        if newest and not verifies[0]:
            findings.append(f"the newest record {newest[0]['seq']} does not verify (MAC mismatch)")
        head = stored
        if anchor is not None:
            if stored is None or anchor.seq > stored.seq:
                ends = 0 if stored is None else stored.seq
                findings.append(
                    f"the database ends at record {ends} but the head anchor says {anchor.seq}: "
                    f"the newest records were deleted; the chain continues after {anchor.seq}"
                )
                head = anchor
                self._reported_end = ends
            else:
                mac = conn.execute(
                    select(AUDIT_LOG.c.mac).where(_seq == anchor.seq)
                ).scalar_one_or_none()
                if mac is None:
                    findings.append(f"record {anchor.seq}, named by the head anchor, is missing")
                elif mac != anchor.mac:
                    findings.append(f"record {anchor.seq} is not the record the head anchor names")
        for finding in findings:
            _LOGGER.error("Audit log integrity: %s", finding)
        self._pending_findings.extend(findings)
        return head

    def _refuse_previous_anchor(self) -> None:
        """Raise AuditKeyError when the head anchor is signed by a key the log no longer uses.

        Never taken up silently: whoever holds the old key (the data directory's install
        secret) could otherwise forge a chain and an anchor with it and have them accepted.
        """
        for key in self._previous_keys:
            try:
                read_head(self._head_file, key)
            except HeadInvalidError:
                continue
            raise AuditKeyError(
                f"the audit head anchor {self._head_file} is signed with the previous audit key, "
                "not the configured one (security.audit_key_file / KILN_AUDIT_KEY). If you have "
                "just moved the key, run `kiln audit move-key` once; if not, someone holding the "
                "old key replaced the anchor: run `kiln audit verify`"
            )


def _record(row: Mapping[Any, Any]) -> AuditRecord:
    try:
        return AuditRecord.from_dict(row)
    except (KeyError, ValueError, TypeError) as err:
        raise AuditError(
            f"audit record {row.get('seq')} is malformed ({err}); run `kiln audit verify`"
        ) from err
