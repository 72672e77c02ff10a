"""Tag descriptions as bus events (`kiln.model.tag_events`): what a sources process's
connectors describe becomes tags of the server's model, each event acknowledged once applied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from kiln.core.bus import Event, InProcessBus, SubscriptionClosed
from kiln.core.platform import Platform, Stage, Status
from kiln.model.definitions import DataType
from kiln.model.info import DescribedTag, DescribeResult
from kiln.model.service import AssetModel
from kiln.model.tag_events import (
    APPLIER,
    CHUNK,
    TAGS_DESCRIBED,
    BusTagCatalog,
    DescribedTagsApplier,
    decode_tags,
    encode_tags,
)
from kiln.testing import FakeClock

SRC = "connector:press"
LINE = "acme/plant1/area1/press"


def test_a_description_round_trips_through_the_event_data() -> None:
    tags = [
        DescribedTag(f"{LINE}/speed", DataType.INT, "rpm", "spindle speed"),
        DescribedTag(f"{LINE}/on", DataType.BOOL, inferred=True),
    ]
    assert decode_tags(encode_tags(SRC, tags)) == (SRC, tags)
    with pytest.raises(ValueError, match="source"):
        decode_tags({"tags": []})
    with pytest.raises(ValueError, match="path"):
        decode_tags({"source": SRC, "tags": [{"unit": "rpm"}]})


async def test_described_tags_reach_the_model_through_the_bus(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = InProcessBus(clock)
    # The sources side describes before the server runs: the log keeps it.
    await bus.start()
    many = [DescribedTag(f"{LINE}/r{i}", DataType.FLOAT, "bar") for i in range(CHUNK + 3)]
    await BusTagCatalog(bus, clock).describe_tags(SRC, many)
    assert BusTagCatalog(bus, clock).tags_of(SRC) == ()
    await bus.publish_event(Event(TAGS_DESCRIBED, SRC, {"tags": "not a list"}, clock.now_us()))

    model, applier = AssetModel(f"sqlite:///{tmp_path / 'model.db'}"), DescribedTagsApplier()
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    platform.add(model, Stage.STORAGE)
    platform.add(applier, Stage.ENGINES)
    async with platform:
        probe = bus.subscribe_events(APPLIER + "-probe", kinds=(TAGS_DESCRIBED,), start_seq=1)
        # A large description goes as events of at most CHUNK tags, in order.
        assert [len((await probe.get()).event.data["tags"]) for _ in range(2)] == [CHUNK, 3]
        # The applier works in its own task; its counters are what can be observed of it.
        async with asyncio.timeout(10):
            while (applier.applied, applier.failed) != (len(many), 1):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert (applier.applied, applier.failed) == (len(many), 1)
        tag = model.tag(f"{LINE}/r{CHUNK + 2}")
        assert tag is not None
        assert (tag.data_type, tag.unit, tag.source) == (DataType.FLOAT, "bar", SRC)
        assert "event" in applier.health().detail["last_error"]
        probe.close()


class _FlakyModel(AssetModel):
    """The model, failing its first `failures` descriptions (its database busy), recording the
    unit of each description it applied, in order."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures
        self.applied_units: list[str] = []

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> DescribeResult:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is locked")
        result = await super().describe_tags(source, described)
        self.applied_units += [d.unit for d in described]
        return result


async def test_a_failed_description_is_retried_before_the_next_so_the_newer_one_wins(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    bus = InProcessBus(clock)
    await bus.start()
    catalog = BusTagCatalog(bus, clock)
    path = f"{LINE}/pressure"
    # The same tag described twice: first in bar, then (the newer description) in psi.
    await catalog.describe_tags(SRC, [DescribedTag(path, DataType.FLOAT, "bar")])
    await catalog.describe_tags(SRC, [DescribedTag(path, DataType.FLOAT, "psi")])

    model = _FlakyModel(f"sqlite:///{tmp_path / 'model.db'}", failures=1)
    applier = DescribedTagsApplier()
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    platform.add(model, Stage.STORAGE)
    platform.add(applier, Stage.ENGINES)
    async with platform:
        async with asyncio.timeout(10):
            while applier.failed < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        health = applier.health()
        assert health.status is Status.DEGRADED
        assert "database is locked" in str(health.detail["reason"])
        # Time passes: past the retry's backoff (0.5 s), and past the bus's ack wait (30 s),
        # after which an unacknowledged first description would be handed out again.
        async with asyncio.timeout(10):
            while len(model.applied_units) < 2:
                await clock.advance(5.0)
                await asyncio.sleep(0.01)  # the model commits in a worker thread
        await clock.advance(60.0)
        assert model.applied_units == ["bar", "psi"]
        tag = model.tag(path)
        assert tag is not None and tag.unit == "psi"
        assert (applier.applied, applier.failed, applier.skipped) == (2, 1, 0)
        assert applier.health().status is Status.OK


class _Delivery:
    def __init__(self, event: Event, redelivered: bool, acked: list[int]) -> None:
        self.event, self.redelivered, self._acked = event, redelivered, acked

    async def ack(self) -> None:
        self._acked.append(self.event.seq)


class _Script:
    """An event subscription that hands out the given deliveries, then is closed."""

    def __init__(self, deliveries: list[_Delivery]) -> None:
        self._deliveries = deliveries

    async def get(self) -> _Delivery:
        if not self._deliveries:
            raise SubscriptionClosed
        return self._deliveries.pop(0)


class _Recorder:
    def __init__(self) -> None:
        self.units: list[str] = []

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> None:
        self.units += [d.unit for d in described]


async def test_an_older_description_handed_out_again_after_a_newer_one_is_not_applied() -> None:
    # A broker hands a delivery out again once its ack wait passed (the applier was retrying
    # it): by then a newer description of the same source may have been applied.
    path = f"{LINE}/pressure"

    def event(seq: int, unit: str) -> Event:
        data = encode_tags(SRC, [DescribedTag(path, DataType.FLOAT, unit)])
        return Event(TAGS_DESCRIBED, SRC, data, 0, seq=seq)

    acked: list[int] = []
    script = _Script([
        _Delivery(event(1, "bar"), False, acked),
        _Delivery(event(2, "psi"), False, acked),
        _Delivery(event(1, "bar"), True, acked),
    ])  # fmt: skip
    model, applier = _Recorder(), DescribedTagsApplier()
    await applier._apply(cast(Any, script), cast(Any, model), FakeClock())
    assert model.units == ["bar", "psi"]
    assert acked == [1, 2, 1]  # acknowledged, so not handed out again
    assert (applier.applied, applier.skipped) == (2, 1)
