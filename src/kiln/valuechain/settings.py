"""The plant file's `valuechain:` section: the store, the planning calendar's zone, the
tolerance on goods receipts, and the webhooks that receive the value chain's events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from kiln.core.config import ConfigFile, DatabaseUrl
from kiln.core.settings import Section
from kiln.core.webhooks import RetryPolicy
from kiln.db.urls import require_postgres_driver, sqlite_url

# The kinds of the engine's events (`valuechain.<kind>` on the bus) a webhook may select.
EventKind = Literal["order", "lot", "plan", "recall"]
EVENT_KINDS: tuple[EventKind, ...] = ("order", "lot", "plan", "recall")
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class ValuechainWebhook(RetryPolicy):
    """A receiver of the value chain's events: each one it selects is POSTed to `url` as
    signed JSON, retried with backoff (`retries`, `backoff_s`, `backoff_cap_s`) and kept as a
    dead letter when out of attempts. A secret is required: order and lot data should reach
    a receiver that can tell it came from this plant."""

    name: str = Field(pattern=_NAME, description="names the webhook in records and logs")
    url: str = Field(description="http(s) URL receiving the JSON POSTs")
    secret: str | None = Field(
        default=None, repr=False, description="HMAC-SHA256 key signing every body"
    )
    secret_file: ConfigFile | None = Field(
        default=None, description="a file holding the key instead (kept out of the plant YAML)"
    )
    kinds: tuple[EventKind, ...] = Field(
        default=(), description="event kinds to send (order, lot, plan, recall); empty: all"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="per attempt")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url {url!r} is not an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError(
                f"webhook {self.name!r} needs exactly one of secret and secret_file: the "
                "bodies are signed so the receiver can check where they came from"
            )
        if self.secret is not None and not self.secret:
            raise ValueError(f"webhook {self.name!r} has an empty secret")
        return self

    def wants(self, kind: str) -> bool:
        """Whether this webhook is sent events of `kind` (without the `valuechain.` prefix)."""
        return not self.kinds or kind in self.kinds

    def key(self) -> str:
        """The signing key: `secret`, or what `secret_file` holds (read now, stripped)."""
        if self.secret is not None:
            return self.secret
        assert self.secret_file is not None
        key = self.secret_file.read_text(encoding="utf-8").strip()
        if not key:
            raise ValueError(f"webhook {self.name!r}: secret_file {self.secret_file} is empty")
        return key


class ValuechainSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None,
        description="SQLAlchemy URL of the value chain store; default SQLite in data_dir",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA zone of the planning calendar: which day is 'today' for planning",
    )
    receipt_tolerance_percent: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        description="how much more than ordered a purchase line may receive, in percent",
    )
    max_trace_lots: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="the most lots one genealogy trace or recall walks before it stops (and "
        "says so)",
    )
    webhooks: list[ValuechainWebhook] = Field(
        default_factory=list, description="receivers of the value chain's events"
    )
    webhooks_url: DatabaseUrl | None = Field(
        default=None,
        description="SQLAlchemy URL of the webhook delivery record; default SQLite in data_dir",
    )
    webhooks_max_concurrent: int = Field(
        default=8, ge=1, le=1000, description="webhook attempts in flight at once"
    )

    follow_production: bool = Field(
        default=True,
        description="book lots from production's orders: when an order pauses or completes, "
        "its new good units become a produced lot and its bill of materials is consumed",
    )
    follow_production_s: float = Field(
        default=2.0, gt=0, le=300, description="how often production's order events are read"
    )

    def url_in(self, data_dir: Path) -> str:
        """The store's database: `url`, or valuechain.db in the data folder."""
        return self.url or sqlite_url(data_dir / "valuechain.db")

    def webhooks_url_in(self, data_dir: Path) -> str:
        """The webhook deliveries' database: `webhooks_url`, or valuechain_webhooks.db."""
        return self.webhooks_url or sqlite_url(data_dir / "valuechain_webhooks.db")

    @field_validator("url", "webhooks_url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
            ) from None
        return name

    @field_validator("webhooks")
    @classmethod
    def _names(cls, hooks: list[ValuechainWebhook]) -> list[ValuechainWebhook]:
        names = [h.name for h in hooks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two webhooks are named {', '.join(twice)}: names must differ")
        return hooks
