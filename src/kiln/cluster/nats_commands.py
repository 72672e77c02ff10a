"""Commands across processes: core NATS request/reply, one queue group per target.

A command is a request on ``<prefix>.cmd.<target>``; every process serving the target is in
the queue group ``cmd-<target>``, so exactly one of them answers. The reply says ok (with the
handler's reply) or the failure's kind and message. Nobody subscribed: the broker answers "no
responders" at once (`NoResponderError`); no reply in time: `CommandTimeoutError`.

The request carries its timeout, and the server cancels the handler when it runs out, as the
in-process bus does: nobody waits for the answer any more, and a write to a device must not
land minutes after its requester gave up. A server runs at most `max_concurrent` handlers at
once and answers UNAVAILABLE beyond that, so a flood of requests to a stuck device cannot pile
up tasks without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from kiln.cluster.codec import (
    CodecError,
    CommandReply,
    decode_reply,
    decode_request,
    encode_command,
    encode_reply,
)
from kiln.core.bus.protocol import (
    BusError,
    Command,
    CommandError,
    CommandFailure,
    CommandHandler,
    CommandTimeoutError,
    NoResponderError,
)

_LOGGER = logging.getLogger(__name__)


class NatsCommandServer:
    """Answers the commands to one target, each in a task of its own (a slow device must not
    hold up the next command); one of the processes serving a target gets each command."""

    def __init__(
        self,
        nc: Client,
        target: str,
        handler: CommandHandler,
        *,
        on_close: Callable[[str], object] | None = None,
        max_concurrent: int = 64,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"command server {target!r}: max_concurrent must be at least 1")
        self.target = target
        self.handler = handler
        self.max_concurrent = max_concurrent
        self.handled = 0
        self.failed = 0
        self.timed_out = 0  # cancelled at the requester's deadline
        self.refused = 0  # answered UNAVAILABLE: max_concurrent handlers were running
        self._nc = nc
        self._on_close = on_close
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, subject: str) -> None:
        self._sub = await self._nc.subscribe(subject, queue=f"cmd-{self.target}", cb=self._on_msg)
        await self._nc.flush()  # served from now: a request sent next finds this server

    async def _on_msg(self, msg: Msg) -> None:
        if len(self._tasks) >= self.max_concurrent:
            self.refused += 1
            await self._respond(
                msg,
                CommandReply(
                    failure=CommandFailure.UNAVAILABLE,
                    message=f"{self.target!r} is busy: {self.max_concurrent} commands are "
                    "running already; try again later",
                ),
            )
            return
        task = asyncio.ensure_future(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, msg: Msg, reply: CommandReply) -> None:
        if msg.reply:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(encode_reply(reply))

    async def _answer(self, msg: Msg) -> None:
        deadline: asyncio.Timeout | None = None
        try:
            command, timeout_s = decode_request(msg.data)
            deadline = asyncio.timeout(timeout_s)
            async with deadline:
                result = await self.handler(command)
            reply = CommandReply(reply=result)
            self.handled += 1
        except TimeoutError as err:
            if deadline is not None and deadline.expired():
                # The requester has given up: nobody reads a reply now.
                self.timed_out += 1
                _LOGGER.warning("Command to %s cancelled at its deadline", self.target)
                return
            self.failed += 1
            reply = CommandReply(
                failure=CommandFailure.FAILED, message=f"{type(err).__name__}: {err}"
            )
        except CommandError as err:
            self.failed += 1
            reply = CommandReply(failure=err.kind, message=str(err))
        except CodecError as err:
            self.failed += 1
            reply = CommandReply(failure=CommandFailure.INVALID, message=str(err))
        except Exception as err:
            self.failed += 1
            _LOGGER.error("Command to %s failed", self.target, exc_info=err)
            reply = CommandReply(
                failure=CommandFailure.FAILED, message=f"{type(err).__name__}: {err}"
            )
        await self._respond(msg, reply)

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await sub.unsubscribe()
                # Closed once the broker knows: a request sent next finds no responder here.
                await self._nc.flush()
        if self._on_close is not None:
            self._on_close(self.target)
        for task in list(self._tasks):
            task.cancel()


async def request(
    nc: Client, subject: str, command: Command, timeout_s: float, url: str
) -> Mapping[str, Any]:
    """Send `command` on `subject` and wait for its reply (`Bus.request`)."""
    try:
        payload = encode_command(command, timeout_s)
    except CodecError as err:
        raise BusError(str(err)) from None
    try:
        msg = await nc.request(subject, payload, timeout=timeout_s)
    except nats.errors.NoRespondersError:
        raise NoResponderError(
            f"nobody serves {command.target!r} (command {command.name!r}) on the bus at "
            f"{url}: is the service that owns it running?"
        ) from None
    except (nats.errors.TimeoutError, TimeoutError):
        where = "" if nc.is_connected else f" (broker {url} unreachable)"
        raise CommandTimeoutError(
            f"no reply from {command.target!r} to {command.name!r} within {timeout_s:g} s"
            f"{where}; the command may still have been carried out"
        ) from None
    try:
        return decode_reply(msg.data).result()
    except CodecError as err:
        raise CommandError(CommandFailure.FAILED, f"unreadable reply: {err}") from None
