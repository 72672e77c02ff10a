"""Tag descriptions carried as bus events, for connectors that run where the asset model does not.

In one process the connectors describe their tags to the asset model directly. Split over two
(`kiln run --role sources` / `--role server`), the sources process has no model: its connectors
describe through `BusTagCatalog`, which publishes each description as an event of kind
`TAGS_DESCRIBED`, and the server's `DescribedTagsApplier` applies them to its model from a
durable event subscription, acknowledging each one after the model committed it. The event log
keeps a description while the server is down, and one the server took but had not applied when
it died is delivered again: a description is lost only if the log's bound (`bus.max_events`)
drops it first.

Order matters: a later description of a tag must win over an earlier one. So the applier takes
the next delivery only once the current one is applied: a failure (the model's database busy) is
retried, backing off, on the same delivery. A delivery the bus hands out again after its ack wait
(`redelivered`) that is older than what was applied since for its source is acknowledged and
skipped, never applied over the newer one.

What the sources process cannot do is ask the model which tags a connector served in an
earlier run (`tags_of` is empty there): tags it learned then (browsed, or born on a Sparkplug
node) and has not read since its restart are not marked "waiting for initial data".

This module stays light: the model service (SQLAlchemy) is imported only by the applier, where
the model runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kiln.core.bus import Bus, Event, EventSubscription, SubscriptionClosed
from kiln.core.clock import Clock
from kiln.core.health import Health, Status
from kiln.model.definitions import DataType
from kiln.model.info import DescribedTag, TagInfo

if TYPE_CHECKING:
    from kiln.core.platform import Platform
    from kiln.model.service import AssetModel

_LOGGER = logging.getLogger(__name__)

TAGS_DESCRIBED = "model.tags.described"
# Descriptions per event: a large register map or browse goes as several events, each well
# under the broker's message limit (NATS: 1 MB by default).
CHUNK = 500
# The durable subscription's name: one per plant (a second server would share its work).
APPLIER = "model-tag-descriptions"
# The wait after a failed application, doubling up to the cap, before the same one is retried.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


def encode_tags(source: str, described: Sequence[DescribedTag]) -> dict[str, Any]:
    """The event data describing `described` tags of `source` (JSON values only)."""
    return {
        "source": source,
        "tags": [
            {
                "path": d.path,
                "data_type": d.data_type.value,
                "unit": d.unit,
                "description": d.description,
                "inferred": d.inferred,
            }
            for d in described
        ],
    }


def decode_tags(data: Mapping[str, Any]) -> tuple[str, list[DescribedTag]]:
    """`encode_tags` read back; ValueError says what is wrong with malformed data."""
    source, tags = data.get("source"), data.get("tags")
    if not isinstance(source, str) or not isinstance(tags, list):
        raise ValueError("a tag description event has a source (string) and tags (list)")
    described: list[DescribedTag] = []
    for t in tags:
        if not isinstance(t, dict) or not isinstance(t.get("path"), str):
            raise ValueError(f"a described tag is an object with a path, not {t!r}")
        described.append(
            DescribedTag(
                t["path"],
                DataType(t.get("data_type", DataType.FLOAT.value)),
                str(t.get("unit", "")),
                str(t.get("description", "")),
                bool(t.get("inferred", False)),
            )
        )
    return source, described


class BusTagCatalog:
    """The `TagCatalog` a connector describes its tags to where no asset model runs: every
    description becomes an event (`TAGS_DESCRIBED`) that the server's model applies."""

    def __init__(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> None:
        # Keyed by source: one source's descriptions are applied in the order it made them.
        for start in range(0, len(described), CHUNK):
            chunk = described[start : start + CHUNK]
            await self._bus.publish_event(
                Event(TAGS_DESCRIBED, source, encode_tags(source, chunk), self._clock.now_us())
            )

    def tags_of(self, source: str) -> Sequence[TagInfo]:
        # The model is in another process; see the module docstring for what this costs.
        return ()


class DescribedTagsApplier:
    """A Service of the process that runs the asset model: applies the tag descriptions other
    processes' connectors publish, each acknowledged once the model has committed it."""

    name = "tag-descriptions"

    def __init__(self) -> None:
        self.applied = 0
        self.failed = 0  # failed applications (each retry counts) and malformed events
        self.skipped = 0  # redeliveries older than what was applied since for their source
        self._sub: EventSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._failing: str | None = None  # while the current delivery keeps failing: why
        self._applied_seq: dict[str, int] = {}  # source -> the newest event applied for it

    async def start(self, platform: Platform) -> None:
        # Imported here, not at the top: the model runs in this process, its weight is paid.
        from kiln.model.service import AssetModel

        model = platform.service(AssetModel)
        sub = self._sub = platform.bus.subscribe_events(
            APPLIER, kinds=(TAGS_DESCRIBED,), durable=True, start_seq=1
        )
        self._task = platform.spawn(
            self._apply(sub, model, platform.clock), name="tag-descriptions"
        )

    async def _apply(self, sub: EventSubscription, model: AssetModel, clock: Clock) -> None:
        while True:
            try:
                delivery = await sub.get()
            except SubscriptionClosed:
                return
            event = delivery.event
            try:
                source, described = decode_tags(event.data)
            except ValueError as err:
                # Retrying cannot make it readable: acknowledge it, say so once per event.
                self.failed += 1
                self._last_error = f"event {event.seq}: {err}"
                _LOGGER.error("Dropped a malformed tag description: %s", self._last_error)
                await delivery.ack()
                continue
            if event.seq < self._applied_seq.get(source, 0):
                # Handed out again after a newer one of its source was applied: applying it
                # would undo the newer description.
                self.skipped += 1
                await delivery.ack()
                continue
            await self._apply_one(model, clock, source, described)
            self._applied_seq[source] = event.seq
            await delivery.ack()
            self.applied += len(described)

    async def _apply_one(
        self, model: AssetModel, clock: Clock, source: str, described: Sequence[DescribedTag]
    ) -> None:
        """Apply one event's descriptions, retrying with backoff until the model takes them
        (or the applier is stopped): the next event must not be applied before this one."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await model.describe_tags(source, described)
            except Exception as err:
                self.failed += 1
                self._last_error = f"{source}: {err}"
                if self._failing is None:
                    _LOGGER.warning(
                        "Could not apply tag descriptions of %s: %s; retrying with backoff "
                        "(logged again on recovery)",
                        source,
                        err,
                    )
                else:
                    _LOGGER.debug("Still cannot apply tag descriptions of %s: %s", source, err)
                self._failing = self._last_error
                await clock.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self._failing is not None:
                _LOGGER.info("Tag descriptions of %s applied after retrying", source)
                self._failing = None
            return

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    def health(self) -> Health:
        detail: dict[str, object] = {
            "applied": self.applied,
            "failed": self.failed,
            "skipped": self.skipped,
        }
        if self._last_error is not None:
            detail["last_error"] = self._last_error
        if self._sub is None:
            return Health(Status.STOPPED, detail)
        if self._failing is not None:
            return Health(Status.DEGRADED, {**detail, "reason": f"retrying {self._failing}"})
        return Health(Status.OK, detail)
