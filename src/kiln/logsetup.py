"""Logging for the `kiln` commands: quiet by default.

At the default level (info) a running Kiln writes a line when it starts and stops, when a
connector changes state, and when something goes wrong. What libraries log at INFO (the access
line of every request, uvicorn's start-up steps, Alembic's migration context) is detail: it
shows with `--log-level debug`.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Libraries whose INFO records are detail; below debug they show warnings and worse only.
DETAIL_LOGGERS = ("alembic", "uvicorn.error", "uvicorn.access")


def configure_logging(level: str) -> None:
    """Kiln's format on the root logger at `level` (debug, info, warning, error)."""
    root = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=root, format=FORMAT)
    for name in DETAIL_LOGGERS:
        logging.getLogger(name).setLevel(
            root if root <= logging.DEBUG else max(root, logging.WARNING)
        )
