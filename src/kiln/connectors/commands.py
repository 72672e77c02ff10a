"""The commands the connectors answer on the bus: write-back to a device, and their status.

Whoever runs the connectors serves target `connectors` (`CONNECTORS`); the API, in this process
or another, sends `write` and `status` and never touches a connector itself. A failure is a
`CommandError` whose kind says what the caller may do about it:

* NOT_FOUND: no connector writes the path (the message lists those that write anything);
* UNAVAILABLE: the connector is not connected, or lost the device during the write: retry;
* INVALID: the connector refused the path or value (read-only tag, out of range, wrong type);
* FAILED: the device refused the write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.connectors.base import ConnectorState
from kiln.core.bus import Command, CommandError, CommandFailure

if TYPE_CHECKING:
    from kiln.connectors.service import Connectors

CONNECTORS = "connectors"
WRITE = "write"  # {"path": str, "value": bool | int | float | str} -> {"connector": name}
STATUS = "status"  # {} -> {"connectors": {name: health entry}}


class NotWritable(LookupError):
    """No connector can write this path; the message says which connectors exist."""


class ConnectorCommands:
    """The handler of target `connectors` for one `Connectors` service."""

    def __init__(self, connectors: Connectors) -> None:
        self._connectors = connectors

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        if command.name == WRITE:
            return await self._write(command.args)
        if command.name == STATUS:
            return {"connectors": self._connectors.health().detail}
        raise CommandError(
            CommandFailure.INVALID,
            f"the connectors answer {WRITE!r} and {STATUS!r}, not {command.name!r}",
        )

    async def _write(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        path, value = args.get("path"), args.get("value")
        if not isinstance(path, str) or not isinstance(value, bool | int | float | str):
            raise CommandError(
                CommandFailure.INVALID,
                'a write takes {"path": "<tag path>", "value": <number, boolean or string>}',
            )
        try:
            runner, writable = self._connectors.writer_for(path)
        except NotWritable as err:
            raise CommandError(CommandFailure.NOT_FOUND, str(err)) from None
        if runner.state is not ConnectorState.CONNECTED:
            # Checked before the connector is asked: a connector that is not connected may not
            # know it (the fake one would take the write), and a retry is what cures this.
            raise CommandError(
                CommandFailure.UNAVAILABLE,
                f"connector {runner.name} is not connected ({runner.state.value})",
            )
        try:
            await writable.write(path, value)
        except (ValueError, LookupError) as err:
            raise CommandError(CommandFailure.INVALID, str(err)) from None
        except (ConnectionError, TimeoutError) as err:
            raise CommandError(
                CommandFailure.UNAVAILABLE, f"the device is not connected: {err}"
            ) from None
        except OSError as err:
            raise CommandError(CommandFailure.FAILED, str(err)) from None
        return {"connector": runner.name}
