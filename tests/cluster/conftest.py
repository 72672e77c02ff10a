"""Fixtures of the cluster tests: NatsBus instances on the machine's NATS JetStream.

`buses` makes buses that share one fresh prefix, as the processes of one plant would (each is
its own node); their streams are deleted afterwards. Without NATS the tests are skipped, and
under CI=true they fail (kiln.testing.nats).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from cluster_helpers import BusMaker

from kiln.core.clock import SystemClock
from kiln.testing.nats import NATS_URL, require_nats, unique_prefix

if TYPE_CHECKING:
    from kiln.cluster.nats_bus import NatsBus


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
async def buses(prefix: str) -> AsyncIterator[BusMaker]:
    """`await buses(node, **options)`: a started NatsBus under this test's prefix."""
    require_nats()
    from kiln.cluster.nats_bus import NatsBus

    made: list[NatsBus] = []

    async def make(node: str, **options: Any) -> NatsBus:
        options.setdefault("max_events", 1000)
        bus = NatsBus(NATS_URL, SystemClock(), node=node, prefix=prefix, **options)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:  # the first deletes the streams; each stops its own pulls at once
        await bus.destroy()
    for bus in made:
        await bus.stop()
