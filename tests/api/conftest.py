from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiln.api import create_app
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
from kiln.security.passwords import PasswordHasherSettings
from kiln.settings import ModelSettings, NamespaceSettings, QueryLimits, Settings
from kiln.testing.auth import admin_headers, device_headers

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


CHEAP_HASHING = PasswordHasherSettings.for_tests()


def make_app_client(settings: Settings) -> TestClient:
    """A client of an app with cheap password hashing (argon2's cost is for production)."""
    return TestClient(create_app(settings, password_settings=CHEAP_HASHING))


@pytest.fixture
def anonymous(tmp_path: Path) -> Iterator[TestClient]:
    """A client of a fresh platform, signed in as nobody."""
    with make_app_client(make_settings(tmp_path / "data")) as c:
        yield c


@pytest.fixture
def client(anonymous: TestClient, tmp_path: Path) -> TestClient:
    """The same client, signed in as the first administrator (every request carries its token)."""
    anonymous.headers.update(admin_headers(anonymous, tmp_path / "data"))
    return anonymous


@pytest.fixture
def device(client: TestClient) -> dict[str, str]:
    """Headers of a device credential that may publish under `acme`."""
    return device_headers(client, dict(client.headers), "gateway-acme", "acme")
