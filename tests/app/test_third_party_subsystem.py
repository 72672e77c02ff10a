"""A subsystem from outside Kiln plugs in through the entry points alone: its settings section,
services, route, metric and command work without a line of Kiln's own code changed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path

import pytest
import tank_plugin
from fastapi.testclient import TestClient
from tank_plugin import TankSettings

from kiln.app import registry
from kiln.app.cli import main
from kiln.app.registry import GROUP, installed_subsystems
from kiln.app.server import build_app
from kiln.app.settings import installed_settings, load_settings
from kiln.core.errors import ConfigError
from kiln.core.platform import Status
from kiln.security.passwords import PasswordHasherSettings
from kiln.testing.auth import admin_headers

TANK = EntryPoint("tank", "tank_plugin:SUBSYSTEM", GROUP)
BROKEN = EntryPoint("broken", "tank_plugin_that_is_not_installed:SUBSYSTEM", GROUP)


def _install(monkeypatch: pytest.MonkeyPatch, *extra: EntryPoint) -> None:
    """Kiln's own entry points plus `extra`, as if their packages were installed beside it."""
    installed = entry_points(group=GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: EntryPoints((*installed, *extra)))
    installed_subsystems.cache_clear()
    installed_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    yield
    # Whatever a test installed is gone for the next one.
    installed_subsystems.cache_clear()
    installed_settings.cache_clear()


@pytest.fixture
def tank(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, TANK)
    tank_plugin.JOURNAL.clear()


def test_its_section_is_read_from_the_plant_file(tank: None, tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("name: t\ntank:\n  capacity_l: 250\n  site: north\n")
    settings = load_settings(plant)
    assert settings.section(TankSettings) == TankSettings(capacity_l=250, site="north")
    assert "tank" in installed_settings().model_json_schema()["properties"]


def test_a_bad_value_in_its_section_names_the_field(tank: None, tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("name: t\ntank:\n  site: north\n  capacity_l: -5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(plant)
    assert f"{plant}:4: tank.capacity_l: Input should be greater than 0 (got -5)" in str(err.value)


def test_an_unknown_section_is_refused_naming_the_installed_ones(
    tank: None, tmp_path: Path
) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("tnak:\n  capacity_l: 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(plant)
    message = str(err.value)
    assert f"{plant}:1: tnak: unknown field" in message
    allowed = message.split("allowed here: ")[1]
    assert "historian" in allowed and "tank" in allowed


def test_without_the_plugin_its_section_is_unknown(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("tank:\n  capacity_l: 5\n")
    with pytest.raises(ConfigError, match="tank: unknown field"):
        load_settings(plant)


def test_its_services_route_and_metric_run_in_the_platform(tank: None, tmp_path: Path) -> None:
    settings = installed_settings()(data_dir=tmp_path / "data", tank=TankSettings(capacity_l=80))
    app = build_app(settings, password_settings=PasswordHasherSettings.for_tests())
    with TestClient(app) as client:
        # By stage: the engine after storage (the historian is up), the source after the engine.
        assert tank_plugin.JOURNAL == [("tank-gauge", Status.OK), ("tank-pump", Status.OK)]
        headers = admin_headers(client, tmp_path / "data")
        assert client.get("/api/v1/tank").status_code == 401  # behind its guard like any route
        answer = client.get("/api/v1/tank", headers=headers)
        assert answer.status_code == 200 and answer.json() == {"capacity_l": 80.0}
        metrics = client.get("/metrics", headers=headers).text
        assert "kiln_tank_capacity_liters 80.0" in metrics
        assert 'kiln_subsystem_up{subsystem="tank-gauge"} 1.0' in metrics
        assert "/api/v1/tank" in client.get("/openapi.json").json()["paths"]


def test_its_command_runs_and_config_check_reports_it(
    tank: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("name: t\ntank:\n  capacity_l: 40\n  site: south\n")
    assert main(["tank", "--config", str(plant)]) == 0
    assert capsys.readouterr().out == "tank at south: 40 l\n"
    assert main(["config", "check", str(plant)]) == 0
    assert "tank of 40 l" in capsys.readouterr().out


def test_a_broken_plugin_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _install(monkeypatch, BROKEN, TANK)
    with caplog.at_level(logging.ERROR, logger="kiln.app.registry"):
        names = [s.name for s in installed_subsystems()]
    assert "tank" in names and "broken" not in names and "historian" in names
    assert any("broken" in r.getMessage() and "failed to load" in r.getMessage()
               for r in caplog.records)  # fmt: skip
