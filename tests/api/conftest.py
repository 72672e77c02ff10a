from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient
from status_recorder import record_statuses  # noqa: F401  (autouse: statuses vs OpenAPI)

from kiln.testing.auth import admin_headers, device_headers


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


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[TestClient]:
    """An administrator's client of a platform whose historian is in PostgreSQL."""
    from kiln.historian.settings import HistorianSettings
    from kiln.testing import postgres

    with postgres.schema_for_test() as url:
        settings = make_settings(tmp_path / "data", historian=HistorianSettings(url=url))
        with make_app_client(settings) as c:
            c.headers.update(admin_headers(c, tmp_path / "data"))
            yield c
