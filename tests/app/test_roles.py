"""Roles (`kiln run --role`): which services a split process builds, by stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.api.subsystem import Role
from kiln.app.assembly import build_platform
from kiln.app.settings import KilnSettings, load_settings
from kiln.app.sources import report
from kiln.connectors.service import Connectors
from kiln.core.platform import Stage
from kiln.historian.service import Historian
from kiln.model.service import AssetModel
from kiln.model.tag_events import DescribedTagsApplier
from kiln.security.service import Identity


def test_each_role_runs_the_stages_it_owns() -> None:
    assert all(Role.ALL.runs(stage) for stage in Stage)
    assert [s for s in Stage if Role.SOURCES.runs(s)] == [Stage.SOURCES]
    assert [s for s in Stage if Role.SERVER.runs(s)] == [Stage.STORAGE, Stage.ENGINES]


def _settings(tmp_path: Path) -> KilnSettings:
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        "data_dir: data\n"
        "connectors:\n"
        "  - {name: counter, type: fake, tags: [a/b/c/d], counter_every_s: 1}\n"
    )
    return load_settings(plant)


def _kinds(settings: KilnSettings, role: Role) -> set[type]:
    return {type(s) for s in build_platform(settings, role=role).services}


def test_a_split_plant_builds_each_service_in_exactly_one_process(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    everything = _kinds(settings, Role.ALL)
    server, sources = _kinds(settings, Role.SERVER), _kinds(settings, Role.SOURCES)
    assert sources == {Connectors}
    assert {Historian, AssetModel, Identity} <= server
    assert Connectors not in server
    # The only service of its own a split adds: the server applies the tags the sources
    # describe over the bus. The default process is built as before.
    assert server | sources == everything | {DescribedTagsApplier}
    assert DescribedTagsApplier not in everything


def test_the_whole_plant_on_a_broker_bus_applies_descriptions_of_other_processes(
    tmp_path: Path,
) -> None:
    # `--role all` with bus.url beside a `--role sources` process: the sources' connectors
    # describe their tags as events, and this process, which runs the model, must apply them.
    settings = _settings(tmp_path)
    on_nats = settings.model_copy(
        update={"bus": settings.bus.model_copy(update={"url": "nats://127.0.0.1:4222"})}
    )
    assert DescribedTagsApplier in _kinds(on_nats, Role.ALL)
    assert DescribedTagsApplier not in _kinds(on_nats, Role.SOURCES)


def test_the_sources_connectors_describe_over_the_bus_and_the_default_ones_do_not(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    split = build_platform(settings, role=Role.SOURCES).service(Connectors)
    assert split.describe_over_bus
    assert not build_platform(settings).service(Connectors).describe_over_bus
    # Nothing is written while a sources platform is built: no keys, no databases.
    assert not (tmp_path / "data").exists()


async def test_the_sources_health_report_is_plain_json(tmp_path: Path) -> None:
    platform = build_platform(_settings(tmp_path), role=Role.SOURCES)
    async with platform:
        got = report(platform)
    assert set(got["services"]) == {"bus", "connectors"}
    assert got["status"] in {"ok", "degraded", "starting"}
    assert got["services"]["connectors"]["detail"]["counter"]["type"] == "fake"


@pytest.mark.parametrize("role", [Role.SERVER, Role.SOURCES])
def test_build_app_refuses_the_sources_role_only(tmp_path: Path, role: Role) -> None:
    from kiln.app.server import build_app

    settings = _settings(tmp_path)
    if role is Role.SOURCES:
        with pytest.raises(ValueError, match="serves no API"):
            build_app(settings, role=role)
    else:
        assert build_app(settings, role=role) is not None
