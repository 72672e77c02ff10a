"""The API server's settings sections: `http:` (where and how it listens), `live:` (the live
WebSocket) and `limits:` (how much one query may return)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from kiln.core.config import ConfigFile
from kiln.core.settings import Section
from kiln.historian.maths.calendar import MAX_BUCKETS


class HttpSettings(Section):
    host: str = Field(default="127.0.0.1", description="address to bind; 0.0.0.0 exposes the API")
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    tls_cert: ConfigFile | None = Field(default=None, description="PEM certificate: serve HTTPS")
    tls_key: ConfigFile | None = Field(default=None, description="PEM private key of tls_cert")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) besides the server's own whose pages may "
        "open the live WebSocket with a session cookie: the public address behind a proxy",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(
                    f"allowed origin {origin!r} must be scheme://host[:port], "
                    "e.g. https://kiln.plant.example"
                )
        return value


class LiveSettings(Section):
    queue_points: int = Field(default=20_000, gt=0, description="per connection; oldest dropped")
    max_connections: int = Field(default=200, gt=0)


class QueryLimits(Section):
    raw_default: int = Field(default=1_000, gt=0)
    raw_max: int = Field(default=100_000, gt=0)
    max_buckets: int = Field(
        default=MAX_BUCKETS,
        gt=0,
        le=MAX_BUCKETS,
        description="buckets one aggregate query may return (shared among its tags); at most "
        "the historian's own bound",
    )
    latest_max: int = Field(default=10_000, gt=0)
    list_max: int = Field(default=10_000, gt=0)
