"""The virtual factory: a deterministic, believable plant that feeds the platform with data.

A machining area (CNC machines) and a packaging area (fillers and conveyors) with correlated
signals, faults, and a shift pattern, sized from a handful of tags for the demo up to
100,000 and more for benchmarks.

The spec classes (what a plant file's `sim:` section is) are imported with the package; the
factory and its source on first use (PEP 562), as they bring the protocol servers' stacks and
every `kiln` command reads the spec.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from kiln.sim.spec import FactorySpec, FaultRates, ShiftSpec

if TYPE_CHECKING:
    from kiln.sim.factory import SimFrame, VirtualFactory
    from kiln.sim.source import SimSource

__all__ = [
    "FactorySpec",
    "FaultRates",
    "ShiftSpec",
    "SimFrame",
    "SimSource",
    "VirtualFactory",
]

# The names imported on first use, by the module that defines them.
_LAZY = {
    "SimFrame": "kiln.sim.factory",
    "VirtualFactory": "kiln.sim.factory",
    "SimSource": "kiln.sim.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once: later look-ups find it without this hook
    return value
