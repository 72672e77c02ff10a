"""The commands the historian answers on the bus: the latest value of given tags.

An engine that restarts (the alarm engine after `kill -9`) re-evaluates its tags against their
current values; it asks wherever the historian runs, in this process or another, by command
rather than reaching into the historian's store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.core.bus import Command, CommandError, CommandFailure

if TYPE_CHECKING:
    from kiln.historian.service import Historian

HISTORIAN = "historian"
# {"paths": [str, ...]} -> {"values": [[path, value, source_us, quality], ...]} (tags with a value)
LATEST = "latest"
MAX_PATHS = 10_000


class HistorianCommands:
    """The handler of target `historian` for one `Historian` service."""

    def __init__(self, historian: Historian) -> None:
        self._historian = historian

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        if command.name != LATEST:
            raise CommandError(
                CommandFailure.INVALID, f"the historian answers {LATEST!r}, not {command.name!r}"
            )
        paths = command.args.get("paths")
        if not (isinstance(paths, list) and all(isinstance(p, str) for p in paths)):
            raise CommandError(
                CommandFailure.INVALID, 'latest takes {"paths": ["<tag path>", ...]}'
            )
        if len(paths) > MAX_PATHS:
            raise CommandError(
                CommandFailure.INVALID,
                f"latest takes at most {MAX_PATHS} paths at once ({len(paths)} given): ask in parts",
            )
        values = await self._historian.latest(paths, limit=len(paths))
        return {"values": [[v.path, v.value, v.source_us, v.quality] for v in values]}
