"""The API's own sections: the live WebSocket (`live:`) and how much a query may return
(`limits:`), with the live route. (The server's `http:` section is core: every process that
serves has it.)"""

from __future__ import annotations

from kiln.api.settings import LiveSettings, QueryLimits
from kiln.api.subsystem import Mount, SettingsSection, Subsystem

SUBSYSTEM = Subsystem(
    name="api",
    sections=(
        SettingsSection("live", LiveSettings, LiveSettings),
        SettingsSection("limits", QueryLimits, QueryLimits),
    ),
    routers=(Mount("kiln.api.routers.live"),),  # imported when the API is built
)
