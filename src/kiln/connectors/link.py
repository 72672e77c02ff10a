"""What a running connector is handed: where its values go, its clock, its counters, and the
catalog (the asset model) its tags are described to.

The `Link` remembers the last value of every path it carried, so that when the source is lost
the runner can publish those values again with Bad quality at host time: a lost device shows as
Bad, never as silence (a tag that just stops updating looks healthy on a screen). A tag with no
value yet is marked Bad with a stand-in value (the zero of its data type): a Bad value is a gap
in every trend and aggregate, so the stand-in is never read as data.

No Good value without a fresh read: after a Bad mark, a tag's next value is stamped no earlier
than the mark. A device reports the source time of the last change (OPC UA SourceTimestamp, a
Sparkplug metric's timestamp), which after a reconnect may be hours old; stored at that time it
would sort before the mark, and the tag would stay Bad although the device answers.

A bus that refuses values (a broker unreachable, its stream full: `BusError`) is back-pressure,
not an outage of the device: the Link holds the batch and retries (`kiln.core.publish_retry`),
so the connector waits as it would on a full queue in one process, and its device session is
left alone. A tag description the catalog did not take (the model down, a broker blip) is kept
and sent again, backing off, with a later publish: it is forgotten only once it was taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kiln.core.bus import Bus
from kiln.core.clock import Clock
from kiln.core.publish_retry import PublishRetry
from kiln.core.values import Scalar, TagValue, ValueBatch
from kiln.model import DataType, DescribedTag, TagCatalog


class _AsDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The logger's level was checked before the record was lowered: check it again.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_library_logger(name: str) -> logging.Logger:
    """The logger `name` of a protocol library, with its records lowered to debug.

    Client libraries warn on every failed connection attempt; the connector runner already
    logs an outage once and its recovery once, so theirs would only repeat it, every retry.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, _AsDebug) for f in logger.filters):
        logger.addFilter(_AsDebug())
    return logger


@dataclass(slots=True)
class LinkStats:
    values: int = 0  # values published
    historical_values: int = 0
    malformed: int = 0  # inputs that could not be decoded and were dropped
    reconnects: int = 0
    failures: int = 0  # setups or runs that ended in an error


# How long after a failed description the Link tries it again (doubling up to the cap).
_DESCRIBE_RETRY_S = 1.0
_DESCRIBE_RETRY_MAX_S = 60.0

_ZERO: dict[DataType, Scalar] = {
    DataType.FLOAT: 0.0,
    DataType.INT: 0,
    DataType.STATE: 0,
    DataType.BOOL: False,
    DataType.STRING: "",
}


class Link:
    """The connector's side of the platform: publish values, describe tags, report bad input."""

    def __init__(
        self,
        name: str,
        bus: Bus,
        clock: Clock,
        logger: logging.Logger,
        *,
        catalog: TagCatalog | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.log = logger
        self.stats = LinkStats()
        self._publisher = PublishRetry(bus, clock, logger, f"Connector {name}")
        self._catalog = catalog
        self._last: dict[str, Scalar] = {}
        # What the Link knows of each tag (its data type gives a Bad mark's stand-in value)...
        self._described: dict[str, DescribedTag] = {}
        # ...and what of it the catalog has not yet taken: sent again until it is.
        self._untold: dict[str, DescribedTag] = {}
        self._describe_retry_s = _DESCRIBE_RETRY_S
        self._describe_retry_at: float | None = None
        # Tags marked Bad and not read since: path -> the mark's timestamp (see the module doc).
        self._marked: dict[str, int] = {}
        self._reported: set[str] = set()
        self.last_problem: str | None = None

    @property
    def bus_problem(self) -> str | None:
        """While the bus refuses this connector's values, why (for health); else None."""
        return self._publisher.problem

    @property
    def bus_refusals(self) -> int:
        """Publishes the bus refused (each retry counts), for health and metrics."""
        return self._publisher.refusals

    @property
    def source(self) -> str:
        """How the asset model names this connector as the source of its tags."""
        return f"connector:{self.name}"

    # -- describing tags ------------------------------------------------------------------

    def remember(self) -> None:
        """Learn the tags the catalog says this connector served before (an earlier run)."""
        if self._catalog is None:
            return
        for tag in self._catalog.tags_of(self.source):
            self._described.setdefault(
                tag.path, DescribedTag(tag.path, tag.data_type, tag.unit, tag.description)
            )

    async def describe(self, tags: Sequence[DescribedTag]) -> None:
        """Describe tags to the catalog (only what is new or changed since the last call, and
        what an earlier call could not deliver).

        A failing catalog is logged and reported in health, never an outage of the source; what
        it did not take is sent again by a later call (`publish_batch` makes one, backing off).
        """
        changed = [
            t
            for t in tags
            if (have := self._described.get(t.path)) is None or (have != t and not t.inferred)
        ]
        for t in changed:
            self._described[t.path] = t
        if self._catalog is None:
            return
        self._untold.update((t.path, t) for t in changed)
        if not self._untold:
            return
        sending = list(self._untold.values())
        try:
            result = await self._catalog.describe_tags(self.source, sending)
        except Exception as err:  # the model is down: values still flow
            self.last_problem = f"describing {len(sending)} tags to the asset model: {err}"
            self.log.warning("Connector %s: %s; retrying later", self.name, self.last_problem)
            self._describe_retry_at = self.clock.monotonic() + self._describe_retry_s
            self._describe_retry_s = min(self._describe_retry_s * 2, _DESCRIBE_RETRY_MAX_S)
            return
        for t in sending:  # taken; unless it changed again meanwhile
            if self._untold.get(t.path) == t:
                del self._untold[t.path]
        self._describe_retry_s, self._describe_retry_at = _DESCRIBE_RETRY_S, None
        rejected: dict[str, str] = getattr(result, "rejected", None) or {}
        if rejected:
            path, why = next(iter(rejected.items()))
            self.last_problem = f"{len(rejected)} tag(s) not in the asset model, e.g. {why}"
            self.log.warning(
                "Connector %s: %d tag(s) cannot be tags of the asset model, e.g. %s: %s",
                self.name,
                len(rejected),
                path,
                why,
            )

    def known_paths(self) -> set[str]:
        """Every path this connector described, read or remembered."""
        return set(self._described) | set(self._last)

    def stand_in(self, path: str) -> Scalar | None:
        """The value a Bad mark carries: the last one read, else the zero of its data type;
        None while the type is unknown (the historian fixes a series' kind by its first value,
        so a guessed zero would store a bool tag as floats for ever)."""
        last = self._last.get(path)
        if last is not None:
            return last
        described = self._described.get(path)
        return None if described is None else _ZERO[described.data_type]

    async def mark(self, paths: Iterable[str], quality: int, *, at_us: int | None = None) -> None:
        """Publish a Bad (or Uncertain) mark for `paths` at host time (or `at_us`), with
        stand-in values: the tags show the quality now, and their next read is stamped after
        it. A tag whose data type nothing has told yet (an OPC UA node never reached) is left
        out."""
        now = self.clock.now_us() if at_us is None else at_us
        columns = ValueColumns()
        for path in sorted(set(paths)):
            value = self.stand_in(path)
            if value is None:
                continue
            columns.add(path, value, now, quality)
            self._marked[path] = now
        if len(columns):
            await self._publisher.publish(columns.batch(now))

    async def publish(self, values: Sequence[TagValue], *, historical: bool = False) -> None:
        """Put values on the bus (waits when the historian is full, or while the bus refuses
        them: back-pressure).

        Historical values (replayed, or Sparkplug `is_historical`) are stored but never become
        the latest value, and are not remembered as the last value here either.
        """
        if not values:
            return
        await self.publish_batch(ValueBatch.of(values, self.clock.now_us(), historical=historical))

    async def publish_batch(self, batch: ValueBatch) -> None:
        """The columnar form of `publish`, for connectors that decode whole columns.

        This runs for every value a plant sends: the bookkeeping is set and dict operations
        over whole columns, with a Python loop only for the rare paths that need one.
        """
        if not len(batch):
            return
        present = set(batch.paths)
        if self._marked and not batch.historical:
            batch = self._after_marks(batch, present)
        await self._publisher.publish(batch)
        if batch.historical:
            self.stats.historical_values += len(batch)
        else:
            self.stats.values += len(batch)
            self._last.update(zip(batch.paths, batch.values, strict=True))
        # Paths nothing described yet become tags by the type of their first value.
        unknown = present.difference(self._described)
        if unknown:
            first: dict[str, Scalar] = {}
            for path, value in zip(batch.paths, batch.values, strict=True):
                if path in unknown:
                    first.setdefault(path, value)
            await self.describe(
                [
                    DescribedTag(p, DataType.infer(_plain(v)), inferred=True)
                    for p, v in first.items()
                ]
            )
        elif self._untold and self.clock.monotonic() >= (self._describe_retry_at or 0.0):
            await self.describe(())

    def _after_marks(self, batch: ValueBatch, present: set[str]) -> ValueBatch:
        """The batch with each first value after a Bad mark stamped no earlier than the mark."""
        marked = self._marked
        hits = present.intersection(marked)
        if not hits:
            return batch
        source_us: list[int] | None = None
        for i, path in enumerate(batch.paths):
            if path not in hits:
                continue
            hits.discard(path)  # only a path's first value after its mark
            mark = marked.pop(path)
            if batch.source_us[i] > mark:
                continue
            if source_us is None:
                source_us = [int(ts) for ts in batch.source_us]
            source_us[i] = max(batch.receive_us, mark + 1)
        if source_us is None:
            return batch
        return ValueBatch(batch.paths, batch.values, source_us, batch.qualities, batch.receive_us)

    def malformed(self, kind: str, detail: str) -> None:
        """Count one undecodable input and drop it; the first of each kind is logged (at
        warning), later ones only counted, so a babbling device cannot flood the log."""
        self.stats.malformed += 1
        self.last_problem = f"{kind}: {detail}"
        if kind not in self._reported:
            self._reported.add(kind)
            self.log.warning(
                "Connector %s dropped malformed input (%s): %s; further ones are only counted",
                self.name,
                kind,
                detail,
            )

    def last_values(self) -> dict[str, Scalar]:
        return dict(self._last)


class ValueColumns:
    """Values gathered column by column, for connectors that deliver many per message: cheaper
    than a TagValue each (this runs for every value a plant sends)."""

    __slots__ = ("paths", "qualities", "source_us", "values")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.values: list[Scalar] = []
        self.source_us: list[int] = []
        self.qualities: list[int] = []

    def add(self, path: str, value: Scalar, source_us: int, quality: int) -> None:
        self.paths.append(path)
        self.values.append(value)
        self.source_us.append(source_us)
        self.qualities.append(quality)

    def extend(
        self,
        paths: Sequence[str],
        values: Sequence[Scalar],
        source_us: Sequence[int],
        quality: int,
    ) -> None:
        """Add whole columns of values of one quality."""
        self.paths.extend(paths)
        self.values.extend(values)
        self.source_us.extend(source_us)
        self.qualities.extend([quality] * len(paths))

    def __len__(self) -> int:
        return len(self.paths)

    def batch(self, receive_us: int, *, historical: bool = False) -> ValueBatch:
        return ValueBatch(
            self.paths, self.values, self.source_us, self.qualities, receive_us, historical
        )


@dataclass(frozen=True, slots=True)
class Outage:
    """Why a connector is not connected, for health."""

    reason: str
    since_us: int
    attempts: int = field(default=1)


def _plain(value: Any) -> Scalar:
    """NumPy scalars (from columnar decoders) as the Python scalars they stand for."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value  # type: ignore[no-any-return]
