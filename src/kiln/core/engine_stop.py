"""Stopping an engine that commits to its store from worker threads under one lock (the alarm
and production engines): the order of the steps is what keeps a stop from losing a commit.

Its command server and value subscription close first (nothing new comes in); its tasks are
cancelled only while the lock is held, so never in the middle of a commit (the worker thread
would go on writing while the store closes, and what it committed would never be told); the
store closes last, under the lock again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from kiln.core.bus import CommandServer, ValueSubscription


async def stop_engine(
    server: CommandServer | None,
    subscription: ValueSubscription | None,
    tasks: Sequence[asyncio.Task[None]],
    lock: asyncio.Lock,
    close_store: Callable[[], None],
) -> None:
    if server is not None:
        await server.close()
    if subscription is not None:
        subscription.close()
    async with lock:
        for task in tasks:
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    async with lock:
        await asyncio.to_thread(close_store)
