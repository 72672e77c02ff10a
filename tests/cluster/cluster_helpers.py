"""Helpers of the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the adapter itself needs the nats extra
    from kiln.cluster.nats_bus import NatsBus

# `await buses(node, **options)`: a started NatsBus under the test's prefix.
BusMaker = Callable[..., Awaitable["NatsBus"]]


async def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `check()` holds, for state a broker's client updates as messages arrive,
    where there is no event to await."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
