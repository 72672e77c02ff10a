"""Dependencies of the routers: typed access to the platform's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from kiln.connectors.http.ingest import HttpIngest
from kiln.core.platform import Platform
from kiln.historian import Historian
from kiln.model.service import AssetModel
from kiln.settings import Settings


def get_platform(request: HTTPConnection) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_settings(request: HTTPConnection) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_historian(request: HTTPConnection) -> Historian:
    return get_platform(request).service(Historian)


def get_model(request: HTTPConnection) -> AssetModel:
    return get_platform(request).service(AssetModel)


def get_ingest(request: HTTPConnection) -> HttpIngest:
    return get_platform(request).service(HttpIngest)


PlatformDep = Annotated[Platform, Depends(get_platform)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
HistorianDep = Annotated[Historian, Depends(get_historian)]
ModelDep = Annotated[AssetModel, Depends(get_model)]
IngestDep = Annotated[HttpIngest, Depends(get_ingest)]
