"""Finding subsystems: the entry-point group `kiln.subsystems`.

Kiln's own subsystems are registered in its `pyproject.toml` exactly as a third party registers
one in theirs:

    [project.entry-points."kiln.subsystems"]
    historian = "kiln.app.subsystems.historian:SUBSYSTEM"

An entry point that fails to load, or is not a `Subsystem`, or whose name disagrees with its
entry point's, is reported (with the reason) and skipped: one broken plug-in does not stop the
others or the platform. The order is the one their `after`/`before` say, ties by name, so the
same installation always builds the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

from kiln.api.subsystem import Subsystem

_LOGGER = logging.getLogger(__name__)

GROUP = "kiln.subsystems"


@cache
def installed_subsystems() -> tuple[Subsystem, ...]:
    """Every subsystem installed, in build order (loaded once per process; a test that
    installs one clears this cache)."""
    found: dict[str, Subsystem] = {}
    for ep in entry_points(group=GROUP):
        try:
            subsystem = ep.load()
        except Exception as err:  # a broken plugin must not stop the platform
            _LOGGER.error("Subsystem plugin %s (%s) failed to load: %s", ep.name, ep.value, err)
            continue
        if not isinstance(subsystem, Subsystem):
            _LOGGER.error("Subsystem plugin %s (%s) is not a Subsystem", ep.name, ep.value)
            continue
        if subsystem.name != ep.name:
            _LOGGER.error(
                "Subsystem plugin %s names itself %r; skipped (the names must agree)",
                ep.name,
                subsystem.name,
            )
            continue
        if subsystem.name in found:
            _LOGGER.error("Subsystem plugin %s is installed twice; the second is skipped", ep.name)
            continue
        found[subsystem.name] = subsystem
    if not found:
        _LOGGER.error(
            "No subsystems are installed (entry points %s): reinstall Kiln (pip install .)",
            GROUP,
        )
    return ordered(found.values())


def ordered(subsystems: Iterable[Subsystem]) -> tuple[Subsystem, ...]:
    """`subsystems` in an order that keeps every `after`/`before` among them (names of
    subsystems not among them are ignored), ties by name. A cycle is an error naming it."""
    by_name = {s.name: s for s in subsystems}
    preceding: dict[str, set[str]] = {name: set() for name in by_name}
    for s in by_name.values():
        preceding[s.name].update(n for n in s.after if n in by_name)
        for n in s.before:
            if n in by_name:
                preceding[n].add(s.name)
    result: list[Subsystem] = []
    while preceding:
        ready = sorted(name for name, first in preceding.items() if not first)
        if not ready:
            raise ValueError(
                "subsystems order one another in a cycle: "
                + ", ".join(f"{n} after {sorted(p)}" for n, p in sorted(preceding.items()))
            )
        name = ready[0]
        result.append(by_name[name])
        del preceding[name]
        for first in preceding.values():
            first.discard(name)
    return tuple(result)
