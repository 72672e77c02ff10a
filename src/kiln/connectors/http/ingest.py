"""The HTTP ingest service: validate, create tags, publish, and answer once durable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from kiln.connectors.http.bulk import BulkColumns
from kiln.connectors.http.codec import ItemError, parse_items
from kiln.core.errors import InvalidPathError, NotDurableError
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import Scalar, TagValue, ValueBatch, validate_path
from kiln.model.definitions import DataType
from kiln.model.service import AssetModel

_LOGGER = logging.getLogger(__name__)

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
    """A Service: turns posted items into one durable batch on the bus."""

    ack_timeout_s: float = 30.0
    name: str = "ingest"
    stats: IngestStats = field(default_factory=IngestStats)
    _platform: Platform | None = None
    _model: AssetModel | None = None

    async def start(self, platform: Platform) -> None:
        self._platform = platform
        self._model = platform.service(AssetModel)

    async def stop(self) -> None:
        self._platform = None

    def health(self) -> Health:
        status = Status.OK if self._platform is not None else Status.STOPPED
        return Health(
            status,
            {"accepted_points": self.stats.accepted_points, "not_durable": self.stats.not_durable},
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
        parsed, errors = parse_items(items, platform.clock.now_us())
        return await self.ingest_values(parsed, errors, may_publish=may_publish, denied=denied)

    async def ingest_values(
        self,
        parsed: list[tuple[int, TagValue]],
        errors: list[ItemError],
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> IngestResult:
        """`ingest` for values another codec parsed (line protocol), with its errors."""
        platform, model = self._platform, self._model
        if platform is None or model is None:
            raise NotDurableError("ingest is not running")
        self.stats.requests += 1
        receive_us = platform.clock.now_us()
        errors = list(errors)
        if may_publish is not None:
            # A credential's namespace is checked before any tag is created for it.
            allowed: list[tuple[int, TagValue]] = []
            for index, tv in parsed:
                if may_publish(tv.path):
                    allowed.append((index, tv))
                else:
                    errors.append(ItemError(index, tv.path, denied))
            parsed = allowed

        unknown: dict[str, Scalar] = {}
        for _, tv in parsed:
            if model.tag(tv.path) is None:
                unknown.setdefault(tv.path, tv.value)
        created: list[str] = []
        rejected_paths: dict[str, str] = {}
        if unknown:
            ensured = await model.ensure_tags(unknown)
            created, rejected_paths = list(ensured.created), dict(ensured.rejected)
            self.stats.created_tags += len(created)

        accepted: list[TagValue] = []
        for index, tv in parsed:
            reason = rejected_paths.get(tv.path) or _type_mismatch(model, tv)
            if reason:
                errors.append(ItemError(index, tv.path, reason))
            else:
                accepted.append(tv)
        errors.sort(key=lambda e: e.index)
        self.stats.rejected_points += len(errors)

        if accepted:
            await self._durable(platform, ValueBatch.of(accepted, receive_us))
        return IngestResult(len(accepted), errors, created)

    async def ingest_columns(
        self,
        cols: BulkColumns,
        *,
        may_publish: Callable[[str], bool] | None = None,
        denied: str = "not allowed to publish here",
    ) -> BulkResult:
        """A bulk upload's points, checked path by path (not row by row) and published as one
        columnar batch; returns once they are durable. Rows of a refused path are left out."""
        platform, model = self._platform, self._model
        if platform is None or model is None:
            raise NotDurableError("ingest is not running")
        self.stats.requests += 1
        receive_us = platform.clock.now_us()
        names, inverse = cols.names, cols.index
        _, first = np.unique(inverse, return_index=True)  # each path's first row
        reasons: dict[str, str] = {}
        samples: dict[str, Scalar] = {}
        for path, row in zip(names, first.tolist(), strict=True):
            sample = (
                cols.values[row].item() if hasattr(cols.values[row], "item") else cols.values[row]
            )
            try:
                validate_path(path)
            except InvalidPathError as err:
                reasons[path] = str(err)
                continue
            if may_publish is not None and not may_publish(path):
                reasons[path] = denied
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
        keep = np.ones(len(cols), dtype=bool)
        counts = np.bincount(inverse, minlength=len(names))
        rejected: list[tuple[str, str, int]] = []
        if reasons:
            refused = np.array([p in reasons for p in names], dtype=bool)
            keep = ~refused[inverse]
            rejected = [
                (p, reasons[p], int(n))
                for p, n in zip(names, counts.tolist(), strict=True)
                if p in reasons
            ]
        accepted = int(np.count_nonzero(keep))
        self.stats.rejected_points += len(cols) - accepted
        if accepted:
            # NumPy columns go through as they are (ValueBatch takes any sequences).
            batch = ValueBatch(
                cols.paths[keep].tolist(),
                cast("Sequence[Any]", cols.values[keep]),
                cast("Sequence[int]", cols.source_us[keep]),
                cast("Sequence[int]", cols.quality[keep]),
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
        batch.want_ack()
        started = platform.clock.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                await platform.bus.publish(batch)
                await batch.wait_durable()
        except TimeoutError:
            self.stats.not_durable += 1
            raise NotDurableError(
                f"the historian did not commit within {timeout_s:.0f} s; "
                "retry the request (re-sending is harmless)"
            ) from None
        except NotDurableError:
            self.stats.not_durable += 1
            raise
        elapsed = platform.clock.monotonic() - started
        self.stats.ack_seconds_sum += elapsed
        self.stats.ack_seconds_max = max(self.stats.ack_seconds_max, elapsed)
        self.stats.accepted_points += len(batch)


def _type_mismatch(model: AssetModel, tv: TagValue) -> str | None:
    info = model.tag(tv.path)
    if info is None:
        return None
    if info.data_type in _NUMERIC and isinstance(tv.value, str):
        return f"tag {tv.path} holds {info.data_type.value} values; got the text {tv.value[:40]!r}"
    if info.data_type is DataType.STRING and not isinstance(tv.value, str):
        return f"tag {tv.path} holds text values; send the value as a JSON string"
    return None
