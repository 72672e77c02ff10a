"""A bus that refuses values (a broker unreachable, its stream full) is back-pressure for a
connector, not an outage of its device; a tag description the catalog did not take is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.link import Link
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow
from kiln.core.platform import Platform, Stage, Status
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.model import DataType, DescribedTag
from kiln.model.info import TagInfo
from kiln.model.tag_events import TAGS_DESCRIBED, BusTagCatalog
from kiln.testing import FakeClock
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource
from kiln.testing.refusing_bus import RefusingBus

T0 = 1_767_225_600_000_000
TAG = "acme/site1/line1/m1/temp"


@pytest.fixture
def source() -> Iterator[FakeSource]:
    SOURCES.clear()
    SOURCES["a"] = FakeSource()
    yield SOURCES["a"]
    SOURCES.clear()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_refusing_bus_holds_the_values_and_leaves_the_device_alone(
    tmp_path: Path, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    bus = RefusingBus(clock)
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    reconnect = BackoffSettings(initial_s=1, max_s=8, jitter=False)
    service = Connectors([FakeConfig(name="m1", source="a", tags=[TAG], reconnect=reconnect)])
    platform.add(service, Stage.SOURCES)
    caplog.set_level(logging.DEBUG, logger="kiln.connectors")
    async with platform:
        seen = platform.bus.subscribe("test", max_points=10_000, overflow=Overflow.BLOCK)
        await settle()
        runner = service.runner("m1")
        assert runner.state is ConnectorState.CONNECTED
        assert service.health().status is Status.OK

        bus.refuse_values = 3
        source.emit([TagValue(TAG, 21.5, T0)])
        await asyncio.wait_for(bus.refused.wait(), 10)
        await settle()
        # Held, not lost, and not an outage: the device session stays up.
        assert seen.drain(100) == []
        assert runner.state is ConnectorState.CONNECTED
        health = service.health()
        assert health.status is Status.DEGRADED
        entry = health.detail["m1"]
        assert isinstance(entry, dict)
        assert entry["state"] == "connected"
        assert "stream is full" in entry["bus_problem"]

        await clock.advance(0.5 + 1.0 + 2.0)  # the backoff: 0.5 s, then doubling
        got = seen.drain(100)
        assert [(v.path, v.value, v.quality) for b in got for v in b] == [(TAG, 21.5, Quality.GOOD)]
        assert bus.refused_values == 3
        assert (source.setups, runner.link.stats.failures) == (1, 0)
        assert runner.link.bus_refusals == 3
        health = service.health()
        assert health.status is Status.OK
        assert health.detail["m1"]["bus_refusals"] == 3
        assert "bus_problem" not in health.detail["m1"]

    logged = [(r.levelno, r.getMessage()) for r in caplog.records if "bus" in r.getMessage()]
    assert [level for level, _ in logged if level >= logging.INFO] == [
        logging.WARNING,
        logging.INFO,
    ]
    assert "after 3 refused attempt(s)" in logged[-1][1]


async def test_a_refused_publish_ends_when_the_connector_is_stopped(
    tmp_path: Path, source: FakeSource
) -> None:
    clock = FakeClock(T0)
    bus = RefusingBus(clock)
    platform = Platform(clock=clock, data_dir=tmp_path, bus=bus)
    service = Connectors([FakeConfig(name="m1", source="a", tags=[TAG])])
    platform.add(service, Stage.SOURCES)
    async with platform:
        await settle()
        bus.refuse_values = 1_000_000  # the broker never comes back
        source.emit([TagValue(TAG, 1.0, T0)])
        await asyncio.wait_for(bus.refused.wait(), 10)
        await clock.advance(60)
    # The platform stopped: the retry was cancelled, not waited on for ever.
    assert service.runner("m1").state is ConnectorState.STOPPED


class FlakyCatalog:
    """A catalog that fails its first `failures` calls, and records what it took."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.taken: list[list[str]] = []

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the model is not reachable")
        self.taken.append([d.path for d in described])

    def tags_of(self, source: str) -> Sequence[TagInfo]:
        return ()


async def test_a_description_the_catalog_did_not_take_is_sent_again_after_a_while() -> None:
    clock = FakeClock(T0)
    bus = RefusingBus(clock)
    catalog = FlakyCatalog(failures=1)
    link = Link("m1", bus, clock, logging.getLogger("test"), catalog=catalog)
    speed = DescribedTag("acme/site1/line1/m1/speed", DataType.INT, "rpm")
    await link.describe([speed])
    assert (catalog.calls, catalog.taken) == (1, [])
    assert link.last_problem is not None and "not reachable" in link.last_problem
    # The Bad mark still knows its type: the Link knows the tag, the catalog does not yet.
    assert link.stand_in(speed.path) == 0

    # Describing the same again sends it again: it was never taken.
    await link.describe([speed])
    assert catalog.taken == [[speed.path]]
    await link.describe([speed])  # taken: nothing new to send
    assert catalog.calls == 2


async def test_a_failed_description_is_retried_with_a_later_publish_not_before_its_wait() -> None:
    clock = FakeClock(T0)
    bus = RefusingBus(clock)
    await bus.start()
    probe = bus.subscribe_events("probe", kinds=(TAGS_DESCRIBED,), start_seq=1)
    link = Link("m1", bus, clock, logging.getLogger("test"), catalog=BusTagCatalog(bus, clock))
    bus.refuse_events = 1  # a broker blip while the first value describes its tag
    await link.publish([TagValue(TAG, 1.5, T0)])
    assert bus.refused_events == 1
    await link.publish([TagValue(TAG, 1.6, T0 + 1)])  # too soon: the retry waits
    assert bus.events_published == 0
    await clock.advance(1.0)
    await link.publish([TagValue(TAG, 1.7, T0 + 2)])
    delivery = await asyncio.wait_for(probe.get(), 10)
    assert [t["path"] for t in delivery.event.data["tags"]] == [TAG]
    await link.publish([TagValue(TAG, 1.8, T0 + 3)])  # taken: never sent again
    await clock.advance(120.0)
    await link.publish([TagValue(TAG, 1.9, T0 + 4)])
    assert bus.events_published == 1
    probe.close()
    await bus.stop()
