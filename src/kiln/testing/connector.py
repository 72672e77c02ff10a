"""A fake connector, registered as connector type "fake": a seam for tests and plug-in authors.

Its source is a `FakeSource` object the test holds: the test decides when the source is up,
when it fails, and what values it produces, and drives time with `FakeClock`. The connector
then goes through the same runner as a real protocol (backoff, Bad quality, health).

A test that runs Kiln in another process cannot hold a source: there the connector counts
instead (`counter_every_s`), publishing 0, 1, 2, ... on its first tag, and appends each value
to `acked_log` once the bus has taken it (`Link.publish` returned: on NATS, the broker stored
it). The log is written unbuffered, so it survives a kill -9 of the process: what it lists is
what the platform owes the historian.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType, SourceLost
from kiln.connectors.link import Link
from kiln.core.values import Scalar, TagValue


class FakeConfig(ConnectorConfig):
    type: str = "fake"
    source: str = Field(default="", description="the name of a FakeSource registered in SOURCES")
    tags: list[str] = Field(default_factory=list)
    counter_every_s: float | None = Field(
        default=None,
        gt=0,
        description="instead of a source: publish 0, 1, 2, ... on the first tag this often",
    )
    acked_log: Path | None = Field(
        default=None, description="with a counter: append each value once the bus has taken it"
    )

    @model_validator(mode="after")
    def _source_or_counter(self) -> Self:
        if (self.counter_every_s is None) == (not self.source):
            raise ValueError("a fake connector has either a source or counter_every_s")
        if self.counter_every_s is not None and not self.tags:
            raise ValueError("a counting fake connector needs a tag to count on")
        return self


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
        self.count = 0  # the counter's next value: a run restarted after a failure goes on

    @property
    def tags(self) -> Sequence[str]:
        return self.config.tags

    @property
    def source(self) -> FakeSource:
        return SOURCES[self.config.source]

    async def setup(self, link: Link) -> None:
        if self.config.counter_every_s is not None:
            return
        source = self.source
        source.setups += 1
        if not source.up:
            raise ConnectionRefusedError(f"fake source {self.config.source} is down")

    async def run(self, link: Link) -> None:
        if self.config.counter_every_s is not None:
            await self._count(link, self.config.counter_every_s)
            return
        while True:
            item = await self.source._queue.get()
            if isinstance(item, BaseException):
                raise item
            await link.publish(item)

    async def _count(self, link: Link, every_s: float) -> None:
        path, log = self.config.tags[0], self.config.acked_log
        fd = None if log is None else os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                n = self.count
                await link.publish([TagValue(path, n, link.clock.now_us())])
                if fd is not None:
                    os.write(fd, b"%d\n" % n)  # unbuffered: in the kernel once written
                self.count = n + 1
                await link.clock.sleep(every_s)
        finally:
            if fd is not None:
                os.close(fd)

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
