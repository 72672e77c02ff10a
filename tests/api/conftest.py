from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiln.api import create_app
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.settings import ModelSettings, NamespaceSettings, QueryLimits, Settings

PUMP = AssetTypeDef(
    name="pump",
    tags=(
        TagDef(name="flow", unit="m3/h", low=0, high=100, description="outlet flow"),
        TagDef(name="running", data_type="bool"),
    ),
)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        data_dir=data_dir,
        model=ModelSettings(
            types=[PUMP],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(
                    path="acme/site1/utilities/water/cell1/p1", level=Level.ASSET, type="pump"
                ),
            ],
        ),
        namespace=NamespaceSettings(locked=["acme/site1/locked"]),
        limits=QueryLimits(raw_max=500, max_buckets=100),
    )
    return base.model_copy(update=overrides)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path / "data"))) as c:
        yield c
