"""What a subsystem declares, once, to plug into Kiln: the `Subsystem` type and what its hooks
are given (`BuildContext`).

A subsystem (Kiln's own historian, security, ... or a third party's) is one `Subsystem` value
registered under the entry-point group `kiln.subsystems` (`kiln.app.registry` finds them). It
says which settings sections it reads, which services it adds to the platform and at which
stage, which routers the API serves for it, which Prometheus collectors read it and which
commands it adds to `kiln`. The composition root (`kiln.app`) loops over the installed ones:
no central file names a subsystem. `docs/subsystems.md` shows how to write one.

Why here, in `kiln.api`: a declaration names FastAPI routers, so the type cannot live in
`core` or in a domain package (they sit below the API in the layer rule and must not import
it); the API factory, which mounts the routers, needs the type, and the composition root
(`kiln.app`, above the API) fills it in. The declarations themselves live at the top, in
`kiln.app.subsystems`, where they may import every layer they glue together.

Building happens in two rounds so that what one subsystem gives another is explicit, never a
matter of which one was built first: every `contribute` hook runs before any `services` hook,
so, e.g., the virtual factory's asset types and connector configurations are all in the
`BuildContext` by the time the model and the connectors build their services from it.

Roles (`Role`, `kiln run --role`): a plant may run in one process (`all`, the default) or split
over two connected through NATS: `sources` runs the services of stage `SOURCES` (what reads
devices and publishes values: connectors, the virtual factory) and no API; `server` runs every
other stage (storage, engines) and the API. The assignment is by stage, so a subsystem declares
nothing more: what it adds at `Stage.SOURCES` runs beside the devices, the rest beside the API.
Every `contribute` hook runs in every role (contributions are declarations both sides read:
the virtual factory's machines are tags of the server's model and connectors of the sources).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar, cast

from kiln.core.platform import Platform, Service, Stage
from kiln.core.settings import PlantSettings

if TYPE_CHECKING:
    # Types only: every `kiln` command reads the declarations (to build its settings model and
    # parser) and must not import FastAPI or the domains' engines for it.
    from fastapi import APIRouter, Request
    from fastapi.responses import Response
    from prometheus_client.registry import Collector

    from kiln.alarms import AlarmDef
    from kiln.connectors.base import ConnectorConfig
    from kiln.core.bus import Bus
    from kiln.core.clock import Clock
    from kiln.model.definitions import AssetDef, AssetTypeDef
    from kiln.production import CalendarDef, Product, SpcDef, StateModel
    from kiln.security.passwords import PasswordHasherSettings

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

API_PREFIX = "/api/v1"

# The `kiln` parser's sub-commands, as argparse hands them out (its class is private by name
# only: typeshed types it and `add_subparsers` returns it; not subscriptable at run time).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

ErrorHandler: TypeAlias = "Callable[[Request, Exception], Awaitable[Response]]"


class Role(StrEnum):
    """What part of a plant this process runs (`kiln run --role`), by service stage."""

    ALL = "all"  # everything, in one process (the default)
    SERVER = "server"  # storage and engines (historian, model, security, ingest) and the API
    SOURCES = "sources"  # what publishes values from devices (connectors, the virtual factory)

    def runs(self, stage: Stage) -> bool:
        """Whether a service of `stage` runs in this role."""
        if self is Role.ALL:
            return True
        return (stage is Stage.SOURCES) == (self is Role.SOURCES)


@dataclass(frozen=True, slots=True)
class SettingsSection(Generic[T_co]):
    """One top-level key of the plant file.

    `annotation` is the field's type as pydantic reads it: a section model (then
    `settings.section(Model)` reads it, typed), `Model | None` for a section that is off
    unless given, or any annotated type (a list of plug-in configurations). `default` makes
    the value a plant file that leaves the key out gets.
    """

    key: str
    annotation: object
    default: Callable[[], T_co]
    description: str = ""

    def of(self, settings: PlantSettings) -> T_co:
        """This section's value in `settings` (typed as declared)."""
        return cast(T_co, getattr(settings, self.key))


@dataclass(frozen=True, slots=True)
class Mount:
    """A router served for a subsystem, under `prefix` (the versioned API by default).

    `router` is the router itself or, lazily, what finds it when the API is built: a module's
    name (`"kiln_tank.api"`: its `router` attribute; `"kiln_tank.api:tank_router"`: another
    one) or a function of no arguments. The lazy forms keep a declaration light: reading it
    (every `kiln` command does, for its settings and sub-commands) then imports no router, nor
    FastAPI or the services the routes depend on.
    """

    router: APIRouter | str | Callable[[], APIRouter]
    prefix: str = API_PREFIX

    def resolve(self) -> APIRouter:
        """The router, imported or made now if it was declared lazily."""
        from fastapi import APIRouter  # here: declaring a mount needs no FastAPI

        declared = self.router
        found: object
        if isinstance(declared, str):
            module, _, attribute = declared.partition(":")
            found = getattr(import_module(module), attribute or "router")
        elif isinstance(declared, APIRouter):  # before `callable`: a router is an ASGI app
            found = declared
        else:
            found = declared()
        if not isinstance(found, APIRouter):
            raise TypeError(f"Mount({self.router!r}) gives {found!r}, not a FastAPI APIRouter")
        return found


class LazyErrorHandlers(Mapping[type[Exception], ErrorHandler]):
    """`Subsystem.error_handlers` made on first use by `load`: for exceptions defined in a
    module too heavy to import just to declare them (the historian's store and DuckDB).

    `error_handlers=LazyErrorHandlers(_handlers)`, with `_handlers` importing the exceptions
    and returning the mapping; the API reads it when it is built.
    """

    __slots__ = ("_load", "_loaded")

    def __init__(self, load: Callable[[], Mapping[type[Exception], ErrorHandler]]) -> None:
        self._load = load
        self._loaded: Mapping[type[Exception], ErrorHandler] | None = None

    def _handlers(self) -> Mapping[type[Exception], ErrorHandler]:
        if self._loaded is None:
            self._loaded = dict(self._load())
        return self._loaded

    def __getitem__(self, error: type[Exception]) -> ErrorHandler:
        return self._handlers()[error]

    def __iter__(self) -> Iterator[type[Exception]]:
        return iter(self._handlers())

    def __len__(self) -> int:
        return len(self._handlers())

    def __repr__(self) -> str:
        return f"LazyErrorHandlers({self._load!r})"


@dataclass(frozen=True, slots=True)
class RouteBodyLimit:
    """A route whose request bodies may be larger (or must be smaller) than `http.max_body_bytes`;
    `setting` is the plant file's field the 413 names, so the operator knows what to raise."""

    path: str
    max_bytes: int
    setting: str


@dataclass(slots=True)
class BuildContext:
    """What building a platform's services is given, and what subsystems hand one another.

    `password_settings` is a test hook (cheap hashing); production keeps argon2id's defaults.
    The lists (and `state_models`) are contributions: filled by `contribute` hooks (besides what the plant file
    declares), read by `services` hooks after every contribution is in. `role` is the part of
    the plant this process runs: services of a stage the role does not run are dropped after
    `services` returns them; a hook reads it only where what crosses the process boundary
    differs (the connectors describe tags over the bus in the `sources` role).
    """

    settings: PlantSettings
    clock: Clock
    bus: Bus
    password_settings: PasswordHasherSettings | None = None
    role: Role = Role.ALL
    asset_types: list[AssetTypeDef] = field(default_factory=list)
    assets: list[AssetDef] = field(default_factory=list)
    connectors: list[ConnectorConfig] = field(default_factory=list)
    state_models: dict[str, StateModel] = field(default_factory=dict)  # by asset type name
    calendars: list[CalendarDef] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    spc_charts: list[SpcDef] = field(default_factory=list)
    tag_alarms: list[AlarmDef] = field(default_factory=list)  # besides alarms.definitions
    _once: dict[Callable[[BuildContext], object], object] = field(
        default_factory=dict, init=False, repr=False
    )

    def once(self, make: Callable[[BuildContext], T]) -> T:
        """`make(self)`, made once per build: what a subsystem's two hooks share (the virtual
        factory's servers: their addresses go to the connectors, the servers to its source)."""
        if make not in self._once:
            self._once[make] = make(self)
        return cast(T, self._once[make])


def _no_services(ctx: BuildContext) -> Iterable[tuple[Service, Stage]]:
    return ()


def _no_contribution(ctx: BuildContext) -> None:
    return None


def _no_collectors(platform: Platform) -> Iterable[Collector]:
    return ()


def _no_commands(commands: Commands) -> None:
    return None


def _no_body_limits(settings: PlantSettings) -> Iterable[RouteBodyLimit]:
    return ()


def _no_summary(settings: PlantSettings) -> str | None:
    return None


def _nothing_to_say(platform: Platform) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Subsystem:
    """One subsystem's declaration. Only `name` is required; every hook defaults to nothing.

    - `sections`: its settings sections (top-level keys of the plant file).
    - `contribute(ctx)`: add to the shared contributions (asset types, connector configs).
    - `services(ctx)`: its services, each with the stage it starts at. The stage also says
      where a service runs when the plant is split (`Role`): `SOURCES` in the `sources`
      process, `STORAGE` and `ENGINES` in the `server` process.
    - `routers`: what the API serves for it (`Mount`, lazily by module name: the declaration
      is read by every `kiln` command, which needs no router); `error_handlers`: how the API answers the
      exceptions its services raise; `body_limits(settings)`: routes with a body limit of
      their own.
    - `collectors(platform)`: Prometheus collectors reading its running services.
    - `started(platform)`: called once the served platform has started (a first-start notice);
      only where the API is served (roles `all` and `server`).
    - `cli(commands)`: add `kiln` sub-commands; each sets the default `handler` (a function
      of the parsed arguments returning the exit code).
    - `summary(settings)`: its part of what `kiln config check` prints (None: nothing).
    - `after` / `before`: names of subsystems this one is ordered after / before when they are
      installed too: its services start after theirs within a stage, its section and routers
      come after theirs.
    """

    name: str
    sections: tuple[SettingsSection[object], ...] = ()
    contribute: Callable[[BuildContext], None] = _no_contribution
    services: Callable[[BuildContext], Iterable[tuple[Service, Stage]]] = _no_services
    routers: tuple[Mount, ...] = ()
    error_handlers: Mapping[type[Exception], ErrorHandler] = field(default_factory=dict)
    body_limits: Callable[[PlantSettings], Iterable[RouteBodyLimit]] = _no_body_limits
    collectors: Callable[[Platform], Iterable[Collector]] = _no_collectors
    started: Callable[[Platform], None] = _nothing_to_say
    cli: Callable[[Commands], None] = _no_commands
    summary: Callable[[PlantSettings], str | None] = _no_summary
    after: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
