"""The audit log service: `AuditStore` on the event loop, one writer at a time.

Records are written by one worker thread, one call at a time (an asyncio.Lock in front of a
single-thread executor), and `record` returns only after the commit: a caller that goes on to
write to a device knows its action is on disk first. Queries run on other threads and never
wait behind a write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kiln.core.clock import Clock
from kiln.core.platform import Health, Platform, Status
from kiln.security.audit.errors import AuditError
from kiln.security.audit.monitor import DEFAULT_SWEEP_RECORDS, IntegrityMonitor, IntegrityState
from kiln.security.audit.record import AuditRecord, Category, Entry, Result
from kiln.security.audit.store import (
    CAPACITY_LEVELS,
    DEFAULT_MAX_RECORDS,
    AuditQuery,
    AuditStore,
    archive_batch_for,
)
from kiln.security.audit.verify import VerifyResult, verify

_LOGGER = logging.getLogger(__name__)

DEFAULT_VERIFY_INTERVAL_S = 300.0
_PROBLEMS_SHOWN = 5


class AuditLog:
    """The tamper-evident audit log (IEC 62443-4-2 CR 2.8); a platform service named "audit".

    `key` is the install secret itself (`kiln.security.secrets.load_or_create_secret`), or the
    audit log's own secret with `previous_keys` the ones it replaced (`kiln.security.audit.key`),
    not a key derived from it: the chain key is derived inside, as `kiln audit verify` does.
    See `AuditStore` for `max_records` and `archive_batch`.

    Once started, the chain is verified in full in the background, then every
    `verify_interval_s` incrementally (`kiln.security.audit.monitor`); a break turns the service
    degraded. With `anchor_dir`, each clean check publishes the verified head there. With
    `verify_interval_s` None nothing runs in the background (`check_integrity` still works).
    """

    name = "audit"

    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        data_dir: Path,
        max_records: int = DEFAULT_MAX_RECORDS,
        archive_batch: int | None = None,
        previous_keys: Sequence[bytes] = (),
        verify_interval_s: float | None = DEFAULT_VERIFY_INTERVAL_S,
        anchor_dir: Path | None = None,
        sweep_records: int = DEFAULT_SWEEP_RECORDS,
    ) -> None:
        archive_batch_for(max_records, archive_batch)  # refuse bad bounds before the start
        if verify_interval_s is not None and not verify_interval_s > 0:
            raise ValueError(f"verify_interval_s must be positive, got {verify_interval_s}")
        self._url = url
        self._key = key
        self._previous_keys = tuple(previous_keys)
        self._verify_interval_s = verify_interval_s
        self._anchor_dir = anchor_dir
        self._sweep_records = sweep_records
        self._monitor: IntegrityMonitor | None = None
        self._check_lock = asyncio.Lock()
        self._first_check = asyncio.Event()
        self._data_dir = data_dir
        self._max_records = max_records
        self._archive_batch = archive_batch
        self._store: AuditStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._write_lock = asyncio.Lock()
        self._status = Status.STARTING
        self._last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        """Migrate the database and check the chain's head (see `AuditStore.open`)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiln-audit")
        store: AuditStore | None = None
        try:
            store = AuditStore(
                self._url,
                self._key,
                data_dir=self._data_dir,
                now_us=platform.clock.now_us,
                max_records=self._max_records,
                archive_batch=self._archive_batch,
                previous_secrets=self._previous_keys,
            )
            await asyncio.get_running_loop().run_in_executor(executor, store.open)
        except BaseException:
            if store is not None:
                store.dispose()
            executor.shutdown(wait=False)
            self._status = Status.FAILED
            raise
        self._store, self._executor = store, executor
        self._status = Status.OK
        head = store.head
        _LOGGER.debug(
            "Audit log open: %d records in the database, newest %s",
            store.count,
            "none" if head is None else head.seq,
        )
        self._monitor = IntegrityMonitor(
            self._url,
            self._key,
            self._data_dir,
            previous=self._previous_keys,
            anchor_dir=self._anchor_dir,
            now_us=platform.clock.now_us,
            sweep_records=self._sweep_records,
        )
        if self._verify_interval_s is not None:
            platform.spawn(
                self._watch(platform.clock, self._verify_interval_s), name="audit-verify"
            )

    async def _watch(self, clock: Clock, interval_s: float) -> None:
        """The full pass at start, then a check every interval, for as long as the log runs."""
        while True:
            try:
                await self.check_integrity()
            except Exception:
                if self._monitor is None:
                    return  # stopped
                # Otherwise reported by the monitor (log, health); the next check retries.
            finally:
                self._first_check.set()
            await clock.sleep(interval_s)

    async def stop(self) -> None:
        monitor = self._monitor
        if monitor is not None:
            monitor.stop()  # a pass over a million records must not hold up the shutdown
        async with self._write_lock:  # let a write in flight commit before closing its engine
            store, self._store = self._store, None
            executor, self._executor = self._executor, None
            if executor is not None:
                # A cancelled caller's write may still be running on the thread; wait for it.
                await asyncio.to_thread(executor.shutdown, wait=True)
            if store is not None:
                await asyncio.to_thread(store.dispose)
            self._monitor = None
            self._status = Status.STOPPED

    def health(self) -> Health:
        store = self._store
        if store is None:
            return Health(self._status, {})
        head = store.head
        detail: dict[str, Any] = {
            "records": store.count,
            "max_records": store.max_records,
            "fill_ratio": round(store.fill_ratio, 4),
            "head": None if head is None else head.seq,
            "archived_records": store.archived_records,
        }
        problems = {
            "error": self._last_error,
            "anchor_error": store.anchor_error,
            "archive_error": store.archive_error,
        }
        detail.update({k: v for k, v in problems.items() if v is not None})
        if store.findings:
            detail["integrity"] = list(store.findings)
        verification = self._verification_health()
        if verification is not None:
            detail["verification"] = verification
        if self._last_error is not None:
            return Health(Status.FAILED, detail)  # events are not being recorded
        degraded = store.fill_ratio >= CAPACITY_LEVELS[0] or store.findings
        broken = verification is not None and any(
            key in verification for key in ("problems", "error", "anchor_error")
        )
        if degraded or broken or store.anchor_error or store.archive_error:
            return Health(Status.DEGRADED, detail)
        return Health(self._status, detail)

    def _verification_health(self) -> dict[str, Any] | None:
        monitor = self._monitor
        if monitor is None:
            return None
        state = monitor.state
        out: dict[str, Any] = {
            "checks": state.checks,
            "verified_up_to": state.verified_seq,
            "interval_s": self._verify_interval_s,
        }
        if state.problems:
            out["first_broken_record"] = state.first_broken
            out["problems"] = state.problems[:_PROBLEMS_SHOWN]
            if len(state.problems) > _PROBLEMS_SHOWN:
                out["more_problems"] = len(state.problems) - _PROBLEMS_SHOWN
        if state.error is not None:
            out["error"] = state.error
        if state.anchor_error is not None:
            out["anchor_error"] = state.anchor_error
        return out

    @property
    def integrity(self) -> IntegrityState | None:
        """What the background checks have found (None before the start)."""
        return None if self._monitor is None else self._monitor.state

    async def check_integrity(self) -> VerifyResult:
        """Run the next integrity check now, on a worker thread (see `IntegrityMonitor`); the
        scheduled checks call this too. Raises AuditError when the log is not running."""
        async with self._check_lock:
            monitor = self._monitor
            if monitor is None or self._store is None:
                raise AuditError("the audit log is not running")
            return await asyncio.to_thread(monitor.check)

    async def wait_first_check(self) -> None:
        """Return once the full pass that follows the start has ended."""
        await self._first_check.wait()

    @property
    def fill_ratio(self) -> float:
        """How full the database is, as a fraction of `max_records`."""
        store = self._store
        return 0.0 if store is None else store.fill_ratio

    # -- writing --------------------------------------------------------------------------

    async def record(
        self,
        *,
        actor: str,
        source: str,
        category: Category,
        action: str,
        target: str = "",
        result: Result = Result.SUCCESS,
        tenant: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append an event and return it once committed.

        `actor` is who acted ("user:alice", "device:press7", "apikey:k12", "system",
        "anonymous"), `source` from where (client IP, "cli", "system"). Detail keys naming a
        secret are redacted (see `kiln.security.audit.record`). Raises AuditError when the
        event could not be stored.
        """
        entry = Entry.create(
            actor=actor,
            source=source,
            category=category,
            action=action,
            target=target,
            result=result,
            tenant=tenant,
            detail=detail,
        )
        async with self._write_lock:
            store, executor = self._store, self._executor  # under the lock: stop() may have run
            if store is None or executor is None:
                raise AuditError(f"the audit log is not running; {action!r} was not recorded")
            loop = asyncio.get_running_loop()
            try:
                record = await loop.run_in_executor(executor, store.append, entry)
            except Exception as err:
                if self._last_error is None:
                    _LOGGER.exception("Audit record %s by %s was not stored", action, actor)
                self._last_error = f"recording failed: {type(err).__name__}: {err}"
                raise AuditError(f"audit record {action!r} was not stored: {err}") from err
            if self._last_error is not None:
                _LOGGER.info("Audit log recording again")
                self._last_error = None
        return record

    # -- reading --------------------------------------------------------------------------

    async def query(
        self,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        actor: str | None = None,
        category: Category | None = None,
        action: str | None = None,
        result: Result | None = None,
        tenant: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        """Records in the database matching every filter given (see `AuditQuery`).

        Raises ValueError for a limit outside 1..10,000.
        """
        query = AuditQuery(
            start_us=start_us,
            end_us=end_us,
            actor=actor,
            category=category,
            action=action,
            result=result,
            tenant=tenant,
            after_seq=after_seq,
            before_seq=before_seq,
            newest_first=newest_first,
            limit=limit,
        )
        store = self._store
        if store is None:
            raise AuditError("the audit log is not running")
        return await asyncio.to_thread(store.query, query)

    async def verify(self) -> VerifyResult:
        """Check the whole trail, archive included (see `kiln.security.audit.verify`); this
        reads every record, about 90,000 a second, on a worker thread."""
        if self._store is None:
            raise AuditError("the audit log is not running")
        return await asyncio.to_thread(
            lambda: verify(
                self._url,
                self._key,
                self._data_dir,
                previous_keys=self._previous_keys,
                anchors_dir=self._anchor_dir,
            )
        )
