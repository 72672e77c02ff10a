"""A fake connector, registered as connector type "fake": a seam for tests and plug-in authors.

Its source is a `FakeSource` object the test holds: the test decides when the source is up,
when it fails, and what values it produces, and drives time with `FakeClock`. The connector
then goes through the same runner as a real protocol (backoff, Bad quality, health).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import Field

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType, SourceLost
from kiln.connectors.link import Link
from kiln.core.values import Scalar, TagValue


class FakeConfig(ConnectorConfig):
    type: str = "fake"
    source: str = Field(description="the name of a FakeSource registered in SOURCES")
    tags: list[str] = Field(default_factory=list)


@dataclass(slots=True)
class FakeSource:
    """A controllable device. `up` False refuses connections; `fail()` drops a live one."""

    up: bool = True
    setups: int = 0
    written: list[tuple[str, Scalar]] = field(default_factory=list)
    _queue: asyncio.Queue[list[TagValue] | BaseException] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1000)
    )

    def emit(self, values: list[TagValue]) -> None:
        self._queue.put_nowait(values)

    def fail(self, reason: str = "link down") -> None:
        self.up = False
        self._queue.put_nowait(SourceLost(reason))


# Tests register their sources here by name; the connector looks its source up at setup.
SOURCES: dict[str, FakeSource] = {}


class FakeConnector:
    def __init__(self, config: FakeConfig) -> None:
        self.config = config

    @property
    def tags(self) -> Sequence[str]:
        return self.config.tags

    @property
    def source(self) -> FakeSource:
        return SOURCES[self.config.source]

    async def setup(self, link: Link) -> None:
        source = self.source
        source.setups += 1
        if not source.up:
            raise ConnectionRefusedError(f"fake source {self.config.source} is down")

    async def run(self, link: Link) -> None:
        while True:
            item = await self.source._queue.get()
            if isinstance(item, BaseException):
                raise item
            await link.publish(item)

    async def teardown(self) -> None:
        return None

    async def write(self, path: str, value: Scalar) -> None:
        if path not in self.config.tags:
            raise LookupError(f"{path!r} is not a tag of fake connector {self.config.name}")
        self.source.written.append((path, value))


CONNECTOR = ConnectorType(
    name="fake",
    kind=ConnectorKind.PUSHED,
    config_model=FakeConfig,
    create=FakeConnector,
    description="a controllable fake source, for tests",
)
