"""Commands on the in-process bus: one server per target, requests answered under a deadline.

The handler runs in the requester's task, so a deadline cancels it exactly as a broker's
timeout would abandon it. Arguments and replies go through JSON on the way, as they would
between processes: a command that works embedded works across processes too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

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


def _as_json(what: str, value: Mapping[str, Any]) -> dict[str, Any]:
    try:
        out = json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise BusError(f"{what} is not JSON ({err}): send only JSON values") from None
    if not isinstance(out, dict):
        raise BusError(f"{what} must be a JSON object, not {type(value).__name__}")
    return out


class Server:
    """A registration of `handler` for `target`; `close()` stops answering."""

    def __init__(self, router: CommandRouter, target: str, handler: CommandHandler) -> None:
        self.target = target
        self.handler = handler
        self._router = router
        self.handled = 0
        self.failed = 0

    async def close(self) -> None:
        self._router.remove(self)


class CommandRouter:
    def __init__(self) -> None:
        self._servers: dict[str, Server] = {}
        self.requests = 0
        self.timeouts = 0
        self.no_responder = 0

    def serve(self, target: str, handler: CommandHandler) -> Server:
        if not target:
            raise ValueError("a command target needs a name")
        if target in self._servers:
            raise BusError(
                f"target {target!r} is already served in this process: one server per target "
                "(close the other first)"
            )
        server = self._servers[target] = Server(self, target, handler)
        return server

    def remove(self, server: Server) -> None:
        if self._servers.get(server.target) is server:
            del self._servers[server.target]

    async def request(self, command: Command, timeout_s: float) -> Mapping[str, Any]:
        self.requests += 1
        server = self._servers.get(command.target)
        if server is None:
            self.no_responder += 1
            raise NoResponderError(
                f"nobody serves {command.target!r} (command {command.name!r}): "
                "is the service that owns it running?"
            )
        sent = Command(command.target, command.name, _as_json("command arguments", command.args))
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                reply = await server.handler(sent)
        except CommandError:
            server.failed += 1
            raise
        except TimeoutError as err:
            if not deadline.expired():
                # The handler's own TimeoutError (a device that did not answer) is its
                # failure, not the deadline's.
                server.failed += 1
                raise _failed(command, err) from err
            self.timeouts += 1
            raise CommandTimeoutError(
                f"no reply from {command.target!r} to {command.name!r} within {timeout_s:g} s; "
                "the command may still have been carried out"
            ) from None
        except Exception as err:
            server.failed += 1
            raise _failed(command, err) from err
        server.handled += 1
        try:
            return _as_json("the reply", reply)
        except BusError as err:
            raise CommandError(CommandFailure.FAILED, str(err)) from None

    def close_all(self) -> None:
        self._servers.clear()

    @property
    def targets(self) -> list[str]:
        return sorted(self._servers)


def _failed(command: Command, err: Exception) -> CommandError:
    _LOGGER.error(
        "Command %s to %s failed", command.name, command.target, exc_info=err,
    )  # fmt: skip
    return CommandError(CommandFailure.FAILED, f"{type(err).__name__}: {err}")
