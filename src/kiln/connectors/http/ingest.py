"""The HTTP ingest service: validate, create tags, publish, and answer once durable."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from kiln.connectors.http.bulk import BulkLimits, read_columns
from kiln.connectors.http.codec import ItemError, Points, parse_body, parse_points
from kiln.connectors.http.line_protocol import LineError
from kiln.connectors.http.line_protocol import parse_body as parse_line_body
from kiln.connectors.http.workers import ParsePool
from kiln.core.admission import TimeWindow
from kiln.core.errors import InvalidPathError, NotDurableError, StartupError
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import Scalar, TagValue, ValueBatch, validate_path
from kiln.model import DataType, TagRegistry, tag_registry

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

_NUMERIC = frozenset({DataType.FLOAT, DataType.INT, DataType.STATE, DataType.BOOL})


@dataclass(slots=True)
class IngestResult:
    accepted: int
    rejected: list[ItemError]
    created_tags: list[str]


@dataclass(slots=True)
class BulkResult:
    accepted: int
    rejected: list[tuple[str, str, int]]  # path, why, how many points
    created_tags: list[str]


@dataclass(slots=True)
class IngestStats:
    requests: int = 0
    accepted_points: int = 0
    rejected_points: int = 0
    created_tags: int = 0
    not_durable: int = 0
    ack_seconds_sum: float = 0.0
    ack_seconds_max: float = 0.0


@dataclass(slots=True)
class HttpIngest:
    """A Service: turns posted items into one durable batch on the bus.

    Bodies are decoded and parsed off the event loop, in a bounded pool of `workers` threads
    (`off_loop`), within the limits below (`ingest.*` settings).
    """

    ack_timeout_s: float = 30.0
    workers: int = 2
    max_items: int = 100_000
    max_inflated_bytes: int = 128 * 1024 * 1024
    max_future_s: float = 600.0
    name: str = "ingest"
    stats: IngestStats = field(default_factory=IngestStats)
    _platform: Platform | None = None
    _model: TagRegistry | None = None
    _pool: ParsePool | None = None

    async def start(self, platform: Platform) -> None:
        self._platform = platform
        self._model = tag_registry(platform)
        if self._model is None:
            # Ingest types and creates tags as values arrive: it runs beside the model.
            raise StartupError("the HTTP ingest needs the asset model in its process")
        self._pool = ParsePool(self.workers)

    async def stop(self) -> None:
        self._platform = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    async def off_loop(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(*args)` in a parsing worker thread, so the event loop keeps answering.

        Raises `BusyError` (answer 503 with Retry-After) when every worker is busy and the wait
        queue is full, and NotDurableError when ingest is not running.
        """
        pool = self._pool
        if pool is None:
            raise NotDurableError("ingest is not running")
        return await pool.run(fn, *args)

    def health(self) -> Health:
        status = Status.OK if self._platform is not None else Status.STOPPED
        pool = self._pool
        return Health(
            status,
            {
                "accepted_points": self.stats.accepted_points,
                "not_durable": self.stats.not_durable,
                "busy_refused": pool.refused if pool is not None else 0,
            },
        )

    async def ingest(
        self,
        items: Sequence[Any],
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> IngestResult:
        """Accept what is valid, reject the rest item by item; return once the accepted are durable.

        Raises NotDurableError when the historian does not commit within the timeout: the
        sender must then retry, which is harmless because writes are idempotent.
        """
        platform = self._platform
        if platform is None:
            raise NotDurableError("ingest is not running")
        now_us = platform.clock.now_us()
        parsed, errors = await self.off_loop(parse_points, items, now_us, self.window(now_us))
        return await self.ingest_values(parsed, errors, may_publish=may_publish, denied=denied)

    async def ingest_body(
        self,
        raw: bytes,
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> IngestResult:
        """`ingest` for a raw JSON body, decoded and parsed off the event loop.

        Raises `BodyError` (with its HTTP status) for a body that cannot be read at all.
        """
        platform = self._platform
        if platform is None:
            raise NotDurableError("ingest is not running")
        now_us = platform.clock.now_us()
        parsed, errors = await self.off_loop(
            _parse_json, raw, self.max_items, now_us, self.window(now_us)
        )
        return await self.ingest_values(parsed, errors, may_publish=may_publish, denied=denied)

    async def parse_line_protocol(
        self, raw: bytes, *, gzipped: bool, prefix: str, precision: str
    ) -> tuple[Points, list[LineError]]:
        """Line protocol values of a raw (optionally gzip) body, inflated and parsed off the
        event loop within `max_inflated_bytes` and `max_items`.

        Raises `BodyError` (with its HTTP status) for a body that cannot be read at all.
        """
        platform = self._platform
        if platform is None:
            raise NotDurableError("ingest is not running")
        now_us = platform.clock.now_us()
        return await self.off_loop(
            _parse_lines_body,
            raw,
            gzipped,
            prefix,
            precision,
            now_us,
            self.window(now_us),
            self.max_items,
            self.max_inflated_bytes,
        )

    async def _admitted(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`off_loop` for a later step of a request whose body was parsed: never refused."""
        pool = self._pool
        if pool is None:
            raise NotDurableError("ingest is not running")
        return await pool.run_admitted(fn, *args)

    def window(self, now_us: int) -> TimeWindow:
        """The source timestamps accepted now."""
        return TimeWindow.at(now_us, self.max_future_s)

    async def ingest_values(
        self,
        parsed: Points | Sequence[tuple[int, TagValue]],
        errors: list[ItemError],
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> IngestResult:
        """`ingest` for values another codec parsed (line protocol), with its errors.

        `parsed` is columns (`Points`), or (index, TagValue) pairs for small callers.
        """
        platform, model = self._platform, self._model
        if platform is None or model is None:
            raise NotDurableError("ingest is not running")
        self.stats.requests += 1
        receive_us = platform.clock.now_us()
        # Item by item work runs in a worker: only creating tags and publishing are on the loop.
        points = parsed if isinstance(parsed, Points) else Points.of(parsed)
        points, errors, unknown = await self._admitted(
            _screen, points, list(errors), may_publish, denied, model
        )
        created: list[str] = []
        rejected_paths: dict[str, str] = {}
        if unknown:
            ensured = await model.ensure_tags(unknown)
            created, rejected_paths = list(ensured.created), dict(ensured.rejected)
            self.stats.created_tags += len(created)
        batch, errors = await self._admitted(
            _accept, points, errors, rejected_paths, model, receive_us
        )
        self.stats.rejected_points += len(errors)
        if batch is not None:
            await self._durable(platform, batch)
        return IngestResult(len(batch) if batch is not None else 0, errors, created)

    async def ingest_columns(
        self,
        body: bytes | list[bytes],
        content_type: str,
        limits: BulkLimits,
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> BulkResult:
        """A bulk upload's points, read off the loop within `limits`, checked path by path
        (not row by row) and published as one columnar batch; returns once they are durable.

        Rows of a refused path are left out: a path outside the credential's namespace, of the
        wrong type, or with a row outside the admission rules (timestamp window, finite
        values). Raises BulkError (BulkTooLarge over a limit) for an upload that is not a
        table of points, before anything is stored.
        """
        platform, model = self._platform, self._model
        if platform is None or model is None:
            raise NotDurableError("ingest is not running")
        window = self.window(platform.clock.now_us())
        cols = await self.off_loop(read_columns, body, content_type, limits, window)
        self.stats.requests += 1
        receive_us = platform.clock.now_us()
        reasons: dict[str, str] = {}
        samples: dict[str, Scalar] = {}
        for path, row in zip(cols.names, cols.first.tolist(), strict=True):
            sample = cols.values[row]
            sample = sample.item() if hasattr(sample, "item") else sample
            try:
                validate_path(path)
            except InvalidPathError as err:
                reasons[path] = str(err)
                continue
            if may_publish is not None and not may_publish(path):
                reasons[path] = denied
            elif path in cols.refused:
                reasons[path] = cols.refused[path]
            elif model.tag(path) is None:
                samples[path] = sample
            else:
                problem = _type_mismatch(model, TagValue(path, sample, 0))
                if problem:
                    reasons[path] = problem
        created: list[str] = []
        if samples:
            ensured = await model.ensure_tags(samples)
            created = list(ensured.created)
            reasons.update(ensured.rejected)
        rejected = [
            (p, reasons[p], int(n))
            for p, n in zip(cols.names, cols.counts.tolist(), strict=True)
            if p in reasons
        ]
        kept = await self._admitted(cols.keep, set(reasons)) if reasons else cols
        accepted = len(kept)
        self.stats.rejected_points += len(cols) - accepted
        if accepted:
            # NumPy columns go through as they are (ValueBatch takes any sequences).
            batch = ValueBatch(
                cast("Sequence[str]", kept.paths),
                cast("Sequence[Any]", kept.values),
                cast("Sequence[int]", kept.source_us),
                cast("Sequence[int]", kept.quality),
                receive_us,
            )
            # A large backfill takes longer to commit than a request: allow for it.
            await self._durable(platform, batch, timeout_s=self.ack_timeout_s + accepted / 100_000)
        return BulkResult(accepted, rejected, created)

    async def _durable(
        self, platform: Platform, batch: ValueBatch, *, timeout_s: float | None = None
    ) -> None:
        """Publish `batch` and wait until the historian has committed it."""
        timeout_s = self.ack_timeout_s if timeout_s is None else timeout_s
        started = platform.clock.monotonic()
        try:
            await platform.bus.publish_durable(batch, timeout_s=timeout_s)
        except NotDurableError:
            self.stats.not_durable += 1
            raise
        elapsed = platform.clock.monotonic() - started
        self.stats.ack_seconds_sum += elapsed
        self.stats.ack_seconds_max = max(self.stats.ack_seconds_max, elapsed)
        self.stats.accepted_points += len(batch)


def _type_mismatch(model: TagRegistry, tv: TagValue) -> str | None:
    return _mismatch(model, tv.path, tv.value)


def _mismatch(model: TagRegistry, path: str, value: object) -> str | None:
    info = model.tag(path)
    if info is None:
        return None
    if info.data_type in _NUMERIC and isinstance(value, str):
        return f"tag {path} holds {info.data_type.value} values; got the text {value[:40]!r}"
    if info.data_type is DataType.STRING and not isinstance(value, str):
        return f"tag {path} holds text values; send the value as a JSON string"
    return None


def _parse_json(
    raw: bytes, max_items: int, now_us: int, window: TimeWindow
) -> tuple[Points, list[ItemError]]:
    return parse_body(raw, max_items=max_items, receive_us=now_us, window=window)


def _parse_lines_body(
    raw: bytes,
    gzipped: bool,
    prefix: str,
    precision: str,
    now_us: int,
    window: TimeWindow,
    max_items: int,
    max_inflated_bytes: int,
) -> tuple[Points, list[LineError]]:
    return parse_line_body(
        raw,
        gzipped=gzipped,
        max_inflated_bytes=max_inflated_bytes,
        max_values=max_items,
        prefix=prefix,
        precision=precision,
        receive_us=now_us,
        window=window,
    )


def _screen(
    points: Points,
    errors: list[ItemError],
    may_publish: Callable[[str], bool] | None,
    denied: str,
    model: TagRegistry,
) -> tuple[Points, list[ItemError], dict[str, Scalar]]:
    """The points the credential may publish, and a first value of each path not yet a tag."""
    if may_publish is not None:
        # A credential's namespace is checked before any tag is created for it.
        verdict: dict[str, bool] = {}
        keep: list[int] = []
        for row, path in enumerate(points.paths):
            ok = verdict.get(path)
            if ok is None:
                ok = verdict[path] = may_publish(path)
            if ok:
                keep.append(row)
            else:
                errors.append(ItemError(points.index[row], path, denied))
        if len(keep) < len(points):
            points = points.rows(keep)
    unknown: dict[str, Scalar] = {}
    for path, value in zip(points.paths, points.values, strict=True):
        if path not in unknown and model.tag(path) is None:
            unknown[path] = value
    return points, errors, unknown


def _accept(
    points: Points,
    errors: list[ItemError],
    rejected_paths: dict[str, str],
    model: TagRegistry,
    receive_us: int,
) -> tuple[ValueBatch | None, list[ItemError]]:
    """The batch of the points that fit their tags, and every error sorted by item."""
    keep: list[int] = []
    for row, (path, value) in enumerate(zip(points.paths, points.values, strict=True)):
        reason = rejected_paths.get(path) or _mismatch(model, path, value)
        if reason:
            errors.append(ItemError(points.index[row], path, reason))
        else:
            keep.append(row)
    errors.sort(key=lambda e: e.index)
    if not keep:
        return None, errors
    if len(keep) < len(points):
        points = points.rows(keep)
    batch = ValueBatch(points.paths, points.values, points.source_us, points.qualities, receive_us)
    return batch, errors
