"""The HTTP API (FastAPI): versioned under /api/v1, metrics at /metrics, the web UI at /.

`create_app` is imported on first use (PEP 562): the modules beside it that describe rather
than serve (`kiln.api.settings`, `kiln.api.subsystem`) are read by every `kiln` command, which
must not pay for FastAPI and every router to print its help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from kiln.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
