"""The `bus` section of the plant configuration, and the bus it makes.

With no `url` Kiln runs in one process on the in-process bus (the default, no broker needed);
with `url: nats://host:4222` it uses NATS JetStream and several Kiln processes share one bus.
Importing this module loads no broker client: `make_bus` imports the NATS adapter only when a
URL asks for it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiln.core.bus import Bus, InProcessBus
from kiln.core.clock import Clock
from kiln.core.errors import ConfigError

_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class BusSettings(BaseModel):
    """How this process talks to the other engines: in-process, or through NATS JetStream."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="NATS server, e.g. nats://127.0.0.1:4222 (several, comma-separated); "
        "unset: one process on the in-process bus",
    )
    node: str | None = Field(
        default=None,
        description="this process's name on the bus (unique per process; durability "
        "acknowledgements come back to it); default: host name and process id",
    )
    prefix: str = Field(
        default="kiln",
        description="first token of every subject and stream name; processes of one plant "
        "share it, two plants on one NATS server need different ones",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="value subjects (a hash of the path picks one): a batch travels as one "
        "message per shard it spans, so more shards cost throughput (measured on loopback: 1 "
        "shard about 0.69 of bare nats-py, 4 about 0.44) and no consumer reads by shard yet; "
        "kept for consumers that will split the load by shard",
    )
    values_max_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="bytes of values the broker holds for slow or absent storing "
        "subscribers; when full, publishers wait and then fail (BusFullError)",
    )
    full_wait_s: float = Field(
        default=5.0, gt=0, description="how long a publish waits for room in a full stream"
    )
    max_events: int = Field(
        default=1_000_000, gt=0, description="events kept in the log; the oldest go first"
    )
    duplicate_window_s: float = Field(
        default=120.0,
        gt=0,
        description="a re-sent value batch or event with the same id within this time is dropped",
    )
    ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        description="a delivered value batch not acknowledged within this time goes again to "
        "its storing subscriber (after a crash before commit)",
    )
    storing: list[str] = Field(
        default=["historian"],
        description="storing subscribers whose broker-side consumers every process declares "
        "at start, so values published before the storing process first ran are kept for it",
    )
    command_concurrency: int = Field(
        default=64,
        ge=1,
        description="commands one process runs at once per target; beyond that it answers "
        "'unavailable' (try again later) instead of piling up work for a stuck device",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="how long start() waits for the broker"
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_token(cls, value: str) -> str:
        if not value or not set(value) <= _PREFIX_CHARS:
            raise ValueError(
                f"prefix {value!r} must be letters, digits, '_' and '-' (it names subjects "
                "and streams)"
            )
        return value


def make_bus(settings: BusSettings, clock: Clock) -> Bus:
    """The in-process bus when `settings.url` is unset, else a `NatsBus` (the `nats` extra)."""
    if settings.url is None:
        return InProcessBus(clock, node=settings.node or "local")
    try:
        from kiln.cluster.nats_bus import NatsBus
    except ImportError as err:
        raise ConfigError(
            f"bus.url is {settings.url!r}, but the NATS client is not installed "
            f"({err}): pip install 'kiln[nats]', or remove bus.url to run in one process"
        ) from err
    return NatsBus.from_settings(settings, clock)
