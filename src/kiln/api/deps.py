"""Dependencies of the routers: the platform, the settings, and typed access to a service.

Only what every router shares lives here; a router makes its own typed aliases from `service`,
e.g. `HistorianDep = Annotated[Historian, Depends(service(Historian))]`, so adding a subsystem
never edits this module.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from kiln.core.platform import Platform
from kiln.core.settings import PlantSettings

T = TypeVar("T")


def get_platform(request: HTTPConnection) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_settings(request: HTTPConnection) -> PlantSettings:
    settings: PlantSettings = request.app.state.settings
    return settings


@cache
def service(kind: type[T]) -> Callable[[HTTPConnection], T]:
    """The dependency that gives the platform's `kind` service. One function per kind (cached),
    so FastAPI solves it once per request and the OpenAPI document can recognise it."""

    def dependency(request: HTTPConnection) -> T:
        return get_platform(request).service(kind)

    dependency.__name__ = f"service_{kind.__name__}"
    dependency.__qualname__ = dependency.__name__
    return dependency


PlatformDep = Annotated[Platform, Depends(get_platform)]
SettingsDep = Annotated[PlantSettings, Depends(get_settings)]
