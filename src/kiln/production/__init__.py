"""Production: machine states and downtime reasons, shift calendars, work orders, OEE per
ISO 22400-2 and SPC (docs/production.md).

The pure cores: states and stop reason codes the machines publish (`states`), the state
taxonomy and reason trees (`taxonomy`), shift calendars (`calendar`, and the virtual factory's
simple pattern in `shifts`), time intervals and overlapping stop records (`intervals`), counter
increments (`counts`), the ISO 22400-2 time model and KPIs (`oee`), the OEE of a time line
(`compute`), control charts, capability and run rules (`spc`, `spc_rules`, `spc_tags`). The
engine keeps its data in its own store (`store`), answers over the bus (`engine_commands`).

This package module is production's surface for the other packages (the layer rule in
pyproject's import-linter contracts): what a plant file and a contributing subsystem declare.
It stays light: importing it loads no engine, store or network client.
"""

from kiln.production.calendar import CalendarDef
from kiln.production.orders import Product
from kiln.production.spc_tags import SpcDef
from kiln.production.taxonomy import StateModel

__all__ = ["CalendarDef", "Product", "SpcDef", "StateModel"]
