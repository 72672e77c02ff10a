"""Contract: a command reaches its target's server and comes back with a reply or a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from bus_helpers import within

from kiln.core.bus import (
    Bus,
    Command,
    CommandError,
    CommandFailure,
    CommandTimeoutError,
    NoResponderError,
)


async def test_a_command_gets_its_servers_reply(bus: Bus) -> None:
    seen: list[Command] = []

    async def handler(command: Command) -> Mapping[str, Any]:
        seen.append(command)
        return {"echo": dict(command.args), "name": command.name}

    server = await bus.serve("echoes", handler)
    assert server.target == "echoes"
    args = {"path": "a/b/c", "value": 1.5, "flag": True, "n": 3, "text": "x", "none": None}
    reply = await within(bus.request(Command("echoes", "write", args), timeout_s=5))
    assert reply == {"echo": args, "name": "write"}
    assert [(c.target, c.name, dict(c.args)) for c in seen] == [("echoes", "write", args)]
    await server.close()


@pytest.mark.parametrize("kind", list(CommandFailure))
async def test_a_command_error_reaches_the_caller_with_its_kind(
    bus: Bus, kind: CommandFailure
) -> None:
    async def handler(command: Command) -> Mapping[str, Any]:
        raise CommandError(kind, f"refused {command.args['path']}: because")

    server = await bus.serve("refuser", handler)
    with pytest.raises(CommandError) as caught:
        await within(bus.request(Command("refuser", "write", {"path": "a/b"}), timeout_s=5))
    assert caught.value.kind is kind
    assert str(caught.value) == "refused a/b: because"
    await server.close()


async def test_a_handler_that_raises_fails_the_command(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(command: Command) -> Mapping[str, Any]:
        raise ZeroDivisionError("the device divided by zero")

    server = await bus.serve("broken", handler)
    with pytest.raises(CommandError) as caught:
        await within(bus.request(Command("broken", "status"), timeout_s=5))
    assert caught.value.kind is CommandFailure.FAILED
    assert "ZeroDivisionError: the device divided by zero" in str(caught.value)
    assert any(r.levelname == "ERROR" for r in caplog.records), "the serving side logs it"
    await server.close()


async def test_no_reply_before_the_deadline_is_a_timeout(bus: Bus) -> None:
    never = asyncio.Event()

    async def handler(command: Command) -> Mapping[str, Any]:
        await never.wait()
        return {}

    server = await bus.serve("sleeper", handler)
    with pytest.raises(CommandTimeoutError, match="sleeper"):
        await within(bus.request(Command("sleeper", "write"), timeout_s=0.3))
    await server.close()


async def test_nobody_serving_the_target_is_no_responder(bus: Bus) -> None:
    with pytest.raises(NoResponderError):
        await within(bus.request(Command("nobody", "write"), timeout_s=30))

    async def handler(command: Command) -> Mapping[str, Any]:
        return {"ok": True}

    server = await bus.serve("transient", handler)
    assert await within(bus.request(Command("transient", "x"), timeout_s=5)) == {"ok": True}
    await server.close()
    with pytest.raises(NoResponderError):
        await within(bus.request(Command("transient", "x"), timeout_s=30))


async def test_the_handler_is_cancelled_at_the_deadline(bus: Bus) -> None:
    cancelled = asyncio.Event()

    async def handler(command: Command) -> Mapping[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    server = await bus.serve("stuck", handler)
    with pytest.raises(CommandTimeoutError):
        await within(bus.request(Command("stuck", "write"), timeout_s=0.3))
    # The serving side gives up too: a write must not land long after its requester left.
    await within(cancelled.wait())
    await server.close()
