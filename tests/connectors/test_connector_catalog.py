"""Connector tags in the asset model, and no Good value without a fresh read, with the fake
connector, the real asset model and a fake clock: exact timestamps, no sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow, Subscription
from kiln.core.platform import Platform, Stage
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.model.definitions import DataType
from kiln.model.service import AssetModel
from kiln.testing import FakeClock
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource

T0 = 1_767_225_600_000_000
TAG = "acme/site1/line1/m1/temp"
NO_JITTER = BackoffSettings(initial_s=1, max_s=8, jitter=False)


@pytest.fixture
def source() -> Iterator[FakeSource]:
    SOURCES.clear()
    SOURCES["a"] = FakeSource()
    yield SOURCES["a"]
    SOURCES.clear()


def plant(tmp_path: Path, clock: FakeClock) -> tuple[Platform, Connectors]:
    platform = Platform(clock=clock, data_dir=tmp_path / "data")
    platform.add(AssetModel(f"sqlite:///{tmp_path / 'model.db'}"), Stage.STORAGE)
    config = FakeConfig(name="m1", source="a", tags=[TAG], reconnect=NO_JITTER)
    service = Connectors([config])
    platform.add(service, Stage.SOURCES)
    return platform, service


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def until_described(model: AssetModel, path: str) -> None:
    """The model writes in a worker thread: wait (in real time, bounded) for the tag."""
    async with asyncio.timeout(5):
        while model.tag(path) is None:  # noqa: ASYNC110 - a thread's effect, no event to await
            await asyncio.sleep(0.01)


def points(sub: Subscription) -> list[tuple[str, object, int, int]]:
    return [(v.path, v.value, v.source_us, v.quality) for b in sub.drain(1000) for v in b]


async def test_a_served_tag_is_remembered_and_reads_bad_until_read_again(
    tmp_path: Path, source: FakeSource
) -> None:
    clock = FakeClock(T0)
    platform, service = plant(tmp_path, clock)
    async with platform:
        await settle()
        source.emit([TagValue(TAG, 21.5, T0)])
        await until_described(platform.service(AssetModel), TAG)
        tag = platform.service(AssetModel).tag(TAG)
        # Created from its first value, filed in a tree built for it, its source named.
        assert tag is not None
        assert (tag.data_type, tag.source, tag.asset_path) == (
            DataType.FLOAT,
            "connector:m1",
            "acme/site1/line1/m1",
        )
        assert [a.path for a in platform.service(AssetModel).tree()] == ["acme"]

    # Restart with the device down. The tag is known from the model: at once Bad (waiting,
    # then not connected once the first attempt fails), never the previous run's Good value.
    source.up = False
    await clock.advance(60)
    t1 = clock.now_us()
    platform, service = plant(tmp_path, clock)
    sub = platform.bus.subscribe("t", max_points=10_000, overflow=Overflow.BLOCK)
    async with platform:
        await settle()
        assert points(sub) == [
            (TAG, 0.0, t1, Quality.BAD_WAITING_FOR_INITIAL_DATA),
            (TAG, 0.0, t1, Quality.BAD_NOT_CONNECTED),
        ]
        # Back up: the device reports the value with the source time of its last change,
        # before the Bad mark. Stored there, it would sort before the mark and the tag would
        # stay Bad; it is stamped just after the mark instead, the next ones as they come.
        source.up = True
        await clock.advance(1)
        source.emit([TagValue(TAG, 21.5, T0)])
        await settle()
        source.emit([TagValue(TAG, 22.0, T0 + 5)])
        await settle()
        assert points(sub) == [
            (TAG, 21.5, t1 + 1_000_000, Quality.GOOD),
            (TAG, 22.0, T0 + 5, Quality.GOOD),
        ]
    assert service.runner("m1").link.known_paths() == {TAG}
