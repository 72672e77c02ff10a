"""The HTTP API (FastAPI): versioned under /api/v1, metrics at /metrics, the web UI at /."""

from kiln.api.app import create_app

__all__ = ["create_app"]
