"""The running server's own check of the audit chain: a full pass at start, then on a schedule
the records written since (from the last verified record and its MAC), plus a slice of the older
records in the database, so that the whole database is re-read every few checks.

Synchronous: `AuditLog` runs it on a worker thread. A problem is logged at ERROR once, kept
until restart (a full pass finds it again if it is still there), and turns the audit service
degraded; health names the first record at fault.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kiln.security.audit.anchors import publish, read_published
from kiln.security.audit.errors import AuditError
from kiln.security.audit.verify import (
    Checkpoint,
    VerifyResult,
    VerifyStopped,
    chain_keys,
    verify,
    verify_from,
    verify_range,
)

_LOGGER = logging.getLogger(__name__)

# Older records re-read per scheduled check: about a second of one core, so a full database of
# 1,000,000 records is re-read every 20 checks (100 minutes at the default 300 s).
DEFAULT_SWEEP_RECORDS = 50_000


@dataclass(slots=True)
class IntegrityState:
    """What the checks have found so far; read by health and metrics."""

    checks: int = 0
    breaks: int = 0  # distinct problems found since start
    errors: int = 0  # checks that could not read the log
    problems: list[str] = field(default_factory=list)
    first_broken: int | None = None
    verified_seq: int = 0
    last_check_us: int | None = None
    last_duration_s: float = 0.0
    error: str | None = None
    anchor_error: str | None = None


class IntegrityMonitor:
    """Checks the chain at `url` with secrets `secret` and `previous` (oldest first)."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        data_dir: Path,
        *,
        previous: Sequence[bytes] = (),
        anchor_dir: Path | None = None,
        now_us: Callable[[], int],
        sweep_records: int = DEFAULT_SWEEP_RECORDS,
    ) -> None:
        self._url = url
        self._secret = secret
        self._previous = tuple(previous)
        self._keys = chain_keys(secret, previous)
        self._data_dir = data_dir
        self._anchor_dir = anchor_dir
        self._now_us = now_us
        self._sweep_records = sweep_records
        self._checkpoint: Checkpoint | None = None
        self._key_starts: dict[int, int] = {}
        self._sweep_next = 1
        self._published_seq = 0
        self._stop = threading.Event()
        self.state = IntegrityState()

    def stop(self) -> None:
        """Make a check in progress end early (with VerifyStopped), and any later one."""
        self._stop.set()

    def check(self) -> VerifyResult:
        """Run the next check: a full pass the first time (or when records the incremental
        check needs were archived meanwhile), else the new records and a slice of older ones."""
        started = time.perf_counter()
        try:
            result = self._run()
        except VerifyStopped:
            raise
        except Exception as err:
            # Any failure to read is reported, never taken as "intact"; the next check retries.
            self.state.errors += 1
            message = f"cannot verify the audit log: {type(err).__name__}: {err}"
            if self.state.error != message:
                _LOGGER.error("Audit log integrity: %s", message)
            self.state.error = message
            raise
        self.state.error = None
        self.state.checks += 1
        self.state.last_check_us = self._now_us()
        self.state.last_duration_s = time.perf_counter() - started
        return result

    def _run(self) -> VerifyResult:
        start = self._checkpoint
        result: VerifyResult | None = None
        if start is not None:
            result = verify_from(self._url, self._keys, self._data_dir, start, stop=self._stop)
        full = result is None
        if result is None:
            if start is None and self._anchor_dir is not None:
                # Made on the first start, but not its parents: a missing mount point must show
                # (the check below reports it), not be replaced by a folder on the data disk.
                with contextlib.suppress(OSError):
                    self._anchor_dir.mkdir(exist_ok=True)
            result = verify(
                self._url,
                self._secret,
                self._data_dir,
                previous_keys=self._previous,
                anchors_dir=self._anchor_dir,
                stop=self._stop,
                anchor_required=False,
            )
        self._found(result)
        if result.end is not None:
            self._checkpoint = result.end
            self.state.verified_seq = result.end.seq
        for index, seq in result.key_starts.items():
            self._key_starts.setdefault(index, seq)
        if not full:
            self._sweep()
        if result.ok:
            self._publish()
        return result

    def _sweep(self) -> None:
        """Re-read the next slice of older records, wrapping round at the checkpoint."""
        end = 0 if self._checkpoint is None else self._checkpoint.seq
        if end < 1 or self._sweep_records < 1:
            return
        first = self._sweep_next if self._sweep_next <= end else 1
        last = min(end, first + self._sweep_records - 1)
        index = max((i for i, seq in self._key_starts.items() if seq <= first), default=0)
        self._found(verify_range(self._url, self._keys, first, last, index, stop=self._stop))
        self._sweep_next = last + 1

    def _found(self, result: VerifyResult) -> None:
        state = self.state
        for problem in result.problems:
            if problem in state.problems:
                continue
            _LOGGER.error("Audit log integrity: %s", problem)
            state.problems.append(problem)
            state.breaks += 1
        if result.first_problem_seq is not None and (
            state.first_broken is None or result.first_problem_seq < state.first_broken
        ):
            state.first_broken = result.first_problem_seq

    def _publish(self) -> None:
        directory, head = self._anchor_dir, self._checkpoint
        if directory is None or head is None or head.seq <= self._published_seq:
            return
        try:
            if not self._published_seq:
                # Continue after what earlier runs published, never re-anchoring older records.
                self._published_seq = max(read_published(directory), default=0)
                if head.seq <= self._published_seq:
                    return
            publish(directory, head.seq, head.mac, self._now_us())
        except (OSError, AuditError) as err:
            message = f"cannot publish the audit anchor to {directory}: {err}"
            if self.state.anchor_error != message:
                _LOGGER.error("%s", message)
            self.state.anchor_error = message
            return
        self._published_seq = head.seq
        self.state.anchor_error = None
