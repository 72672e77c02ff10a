"""A bounded pool of threads that decode and parse request bodies, so the event loop never does.

At most `workers` bodies are parsed at once and at most `queue` more wait; beyond that a request
is answered "busy, retry" at once (`BusyError`, a 503 with Retry-After): the work is refused
before it is queued, so a burst of large bodies cannot pile up unbounded delay. The queue is
deep enough (`QUEUE_PER_WORKER`) that many clients sending small batches at the same moment
are not refused: they wait milliseconds. Later steps of a request already admitted
(`run_admitted`) are never refused, so the work done for it is not thrown away half way.

Parsers run here in pure Python that returns to the interpreter often (or in C calls that release
the GIL, like zlib), so the event loop keeps its share of the GIL while a body is parsed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from kiln.core.errors import KilnError

T = TypeVar("T")

QUEUE_PER_WORKER = 32


class BusyError(KilnError):
    """Every parsing worker is busy and the wait queue is full: retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ParsePool:
    """`workers` threads plus a wait queue of `queue` jobs; more is refused with BusyError."""

    def __init__(self, workers: int, queue: int | None = None) -> None:
        self.workers = workers
        self.queue = QUEUE_PER_WORKER * workers if queue is None else queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="kiln-parse")
        # Counted from submit until the thread is done, not until the awaiting request gives
        # up: a cancelled request's parse still occupies its thread.
        self._lock = threading.Lock()
        self._pending = 0
        self.refused = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        with self._lock:
            if self._pending >= self.workers + self.queue:
                self.refused += 1
                raise BusyError(
                    f"all {self.workers} ingest workers are busy and {self.queue} requests "
                    "are waiting: retry shortly (ingest.workers sets the pool size)"
                )
            self._pending += 1
        try:
            future: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    async def run_admitted(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`run` for a later step of a request `run` admitted: queued, never refused."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        """Refuse new work; queued jobs are cancelled, running ones finish in their thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
