"""Pulling one JetStream consumer's messages, only as far as the local queue has room.

Why not nats-py's `PullSubscription.fetch`: a fetch of many messages waits for all of them (or
its timeout) before returning any, which puts the fetch timeout into every delivery's latency.
Here one pull request is open at a time; each message is handed over the moment it arrives,
and the next request is sent only when the previous one ended (filled, or expired on the
server) and the consumer has room again. That is how BLOCK stops fetching: no room, no request.

A pull request cannot be withdrawn, so stopping lets the open one run out (`expires_s`, short):
a message it still brings is handed to `handle` as usual, and the handler, seeing its
subscription closed, gives it back to the broker (nak) for the next subscriber.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_LOGGER = logging.getLogger(__name__)

# Status codes the server sends on a pull request's inbox (JetStream pull protocol).
_HEARTBEAT = "100"
_NO_MESSAGES = "404"
_EXPIRED = "408"


class Puller:
    """Feeds `handle` the messages of consumer `consumer` of `stream`, `room()` at a time."""

    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        handle: Callable[[Msg], Awaitable[None]],
        room: Callable[[], int],
        *,
        expires_s: float = 0.5,
        api_prefix: str = "$JS.API",
        recreate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._nc = nc
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._handle = handle
        self._room = room
        self._expires_s = expires_s
        self._recreate = recreate
        self._space = asyncio.Event()
        self._ended = asyncio.Event()
        self._outstanding = 0
        self._received = 0
        self._stopping = False
        self._sub: Subscription | None = None
        self.last_status: str | None = None  # why the last request ended without messages
        self.requests = 0

    def wake(self) -> None:
        """The consumer made room: send the next request if none is open."""
        self._space.set()

    def stop(self) -> None:
        """Send no more requests; `run` returns once the open one has ended."""
        self._stopping = True
        self._space.set()

    def abort(self) -> None:
        """Stop now, without waiting for the open request (its consumer is being deleted)."""
        self.stop()
        self._ended.set()

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            self._received += 1
            self._outstanding -= 1
            if self._outstanding <= 0:
                self._ended.set()
            try:
                await self._handle(msg)
            except Exception:  # nats-py would only pass it to its error callback
                _LOGGER.exception("Handling a message of %s failed", self._next)
        elif status != _HEARTBEAT:
            # 404/408: the request ran out; 409: the server refused it (consumer deleted, too
            # many pending acks, ...); 503: no such consumer or stream.
            if status not in (_NO_MESSAGES, _EXPIRED):
                self.last_status = f"{status} {headers.get('Description', '')}".strip()
            self._outstanding = 0
            self._ended.set()

    async def run(self) -> None:
        inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(inbox, cb=self._on_msg)
        loop = asyncio.get_running_loop()
        backoff = 0.05
        try:
            while not self._stopping:
                n = self._room()
                if n <= 0:
                    self._space.clear()
                    if self._room() <= 0 and not self._stopping:
                        await self._space.wait()
                    continue
                self._outstanding = n
                self._received = 0
                self._ended.clear()
                started = loop.time()
                request = {"batch": n, "expires": int(self._expires_s * 1e9)}
                await self._nc.publish(self._next, json.dumps(request).encode(), reply=inbox)
                self.requests += 1
                try:
                    # A request lost with the connection never ends on its own: ask again.
                    await asyncio.wait_for(self._ended.wait(), self._expires_s + 2.0)
                except TimeoutError:
                    continue
                if self._received == 0 and loop.time() - started < self._expires_s / 2:
                    # Ended at once and empty-handed: the consumer is missing or refusing.
                    # Do not spin; `last_status` says why (shown in health).
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    if self._recreate is not None and self.last_status and not self._stopping:
                        try:
                            await self._recreate()
                        except Exception as err:  # the broker is away: try again next round
                            _LOGGER.debug("Re-creating consumer %s failed: %s", self._next, err)
                    continue
                backoff = 0.05
                if self._received:
                    self.last_status = None
        finally:
            sub, self._sub = self._sub, None
            if sub is not None and not self._nc.is_closed:
                try:
                    await sub.unsubscribe()
                except Exception:  # the connection went away under us: nothing to undo
                    _LOGGER.debug("Unsubscribing pull inbox %s failed", inbox, exc_info=True)
