"""The one shape every connector has.

A connector type (`ConnectorType`) is found through the entry-point group `kiln.connectors`
(`kiln.connectors.registry`), built-in ones exactly like third-party ones. It names its
configuration model, says whether it polls or is pushed to, and makes `Connector`s.

A `Connector` does three things and nothing else: `setup` (connect), `run` (produce values
through its `Link` until the source is lost), `teardown` (let go). Reconnecting, backoff,
logging once per outage, Bad quality while the source is gone, health and metrics are the
runner's (`kiln.connectors.runner`), the same for every protocol. Protocol code lives in a
pure `codec` module and a thin `client` module per connector package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from kiln.connectors.backoff import BackoffSettings
from kiln.core.errors import KilnError
from kiln.core.values import Scalar
from kiln.model import DescribedTag

if TYPE_CHECKING:
    from kiln.connectors.link import Link


class ConnectorKind(StrEnum):
    POLLED = "polled"  # Kiln asks on a schedule (Modbus)
    PUSHED = "pushed"  # the source reports by exception (OPC UA subscriptions, MQTT)


class ConnectorState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # connected, but part of what it reads fails
    ERROR = "error"  # lost or never reached; retrying with backoff
    STOPPED = "stopped"


class SourceLost(KilnError):
    """The connection to the source is gone; the runner reconnects. The message says why."""


class ConnectorConfig(BaseModel):
    """What every connector's configuration has; each type extends it with its own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="unique among the connectors; used in health, metrics and logs",
    )
    type: str = Field(description="the connector type: modbus, opcua, mqtt, sparkplug, ...")
    enabled: bool = True
    reconnect: BackoffSettings = BackoffSettings()

    @property
    def peer(self) -> str | None:
        """Where the connector connects (host:port, an opc.tcp URL, a broker URL, never with
        credentials), named in its outage reasons; None if it has no one place."""
        return None


C = TypeVar("C", bound="ConnectorConfig")


class Connector(Protocol):
    """One connection to one source (a PLC, a server, a broker)."""

    @property
    def tags(self) -> Sequence[str]:
        """The namespace paths it feeds, known up front (a Sparkplug host learns them at birth
        and may return those it has seen); they read Bad from the start until first read, and
        again when the source is lost (with those the asset model remembers it served)."""
        ...

    async def setup(self, link: Link) -> None:
        """Connect. Raise (any exception) when the source cannot be reached."""
        ...

    async def run(self, link: Link) -> None:
        """Produce values with `link.publish` until the source is lost: then raise
        `SourceLost` (or any exception). Cancelled when the platform stops."""
        ...

    async def teardown(self) -> None:
        """Let go of the connection; must not raise, and is called after a failed setup too."""
        ...


@runtime_checkable
class Described(Protocol):
    """A connector that knows what its tags are before reading them (a register map, a
    topic mapping): the connectors service makes them tags of the asset model at start.
    Connectors that learn it later (OPC UA node attributes, Sparkplug births) call
    `link.describe` then; a tag described by neither gets the data type of its first value."""

    def described_tags(self) -> Sequence[DescribedTag]: ...


@runtime_checkable
class Reporting(Protocol):
    """A connector with more to tell in health than the runner knows: the parts behind one
    connection (a Sparkplug host's edge nodes and devices). Pair it with a `degraded`
    attribute; a `reason` in the detail says what a degraded connector is missing."""

    def health_detail(self) -> dict[str, object]: ...


@runtime_checkable
class Writable(Protocol):
    """A connector that can write a value back to its source (write-back)."""

    async def write(self, path: str, value: Scalar) -> None:
        """Write `value` to the device tag at `path`; raise with a clear message when the
        path is not one of its tags, the value does not fit, or the device refuses."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorType(Generic[C]):
    """A kind of connector, as an entry point of group `kiln.connectors` exposes it.

    `create` is usually the connector class itself; `make` checks that the configuration is
    this type's before calling it.
    """

    name: str
    kind: ConnectorKind
    config_model: type[C]
    create: Callable[[C], Connector]
    description: str = ""
    # Python distributions it needs beyond Kiln's own.
    requirements: tuple[str, ...] = field(default=())

    def make(self, config: ConnectorConfig) -> Connector:
        if not isinstance(config, self.config_model):
            raise TypeError(
                f"connector type {self.name} needs a {self.config_model.__name__}, "
                f"not a {type(config).__name__}"
            )
        return self.create(config)
