"""Alarms and events: ISA-18.2 / IEC 62682 and OPC UA Part 9 (docs/alarms.md).

This package module is the alarms' surface for the other domain packages (the layer rule in
pyproject's import-linter contracts): the definitions users write on asset types and assets.
It stays light: importing it loads no engine, store or network client.
"""

from kiln.alarms.definitions import AlarmDef, Priority

__all__ = ["AlarmDef", "Priority"]
