"""Tag descriptions as bus events (`kiln.model.tag_events`): what a sources process's
connectors describe becomes tags of the server's model, each event acknowledged once applied."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiln.core.bus import Event, InProcessBus
from kiln.core.platform import Platform, Stage
from kiln.model.definitions import DataType
from kiln.model.info import DescribedTag
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
