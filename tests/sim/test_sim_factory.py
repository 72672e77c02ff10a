"""VirtualFactory: its asset model, its frames, and determinism."""

from __future__ import annotations

import pytest

from kiln.core.quality import Quality
from kiln.core.values import validate_path
from kiln.model.definitions import DataType, Level, resolve_tags
from kiln.sim import FactorySpec, VirtualFactory

START_US = 1_767_571_200_000_000 + 8 * 3_600_000_000  # Monday 08:00 UTC, mid-shift


def test_tag_paths_are_the_assets_expanded_by_their_types() -> None:
    spec = FactorySpec(machining_lines=2, packaging_lines=3)
    factory = VirtualFactory(spec, START_US)
    types = {t.name: t for t in factory.asset_types()}
    expanded = [
        f"{asset.path}/{tag.name}"
        for asset in factory.assets()
        if asset.type is not None
        for tag in resolve_tags(asset.type, types)
    ]
    paths = factory.paths()
    assert sorted(paths) == sorted(expanded)
    assert len(set(paths)) == len(paths) == factory.tag_count == spec.tag_count
    for path in paths:
        validate_path(path)


def test_hierarchy_follows_isa95_levels() -> None:
    factory = VirtualFactory(FactorySpec(), START_US)
    assets = factory.assets()
    by_path = {a.path: a for a in assets}
    assert by_path["acme"].level is Level.ENTERPRISE
    assert by_path["acme/plant1"].level is Level.SITE
    assert by_path["acme/plant1/machining"].level is Level.AREA
    assert by_path["acme/plant1/machining/line1"].level is Level.LINE
    assert by_path["acme/plant1/machining/line1/cell1"].level is Level.CELL
    assert by_path["acme/plant1/machining/line1/cell1/cnc1"].type == "cnc"
    assert by_path["acme/plant1/packaging/line1/filling/filler2"].type == "filler"
    assert by_path["acme/plant1/packaging/line1/transport/conveyor1"].type == "conveyor"
    seen: set[str] = set()
    for asset in assets:  # parents are listed before their children
        if "/" in asset.path:
            assert asset.path.rsplit("/", 1)[0] in seen
        seen.add(asset.path)
    assert {a.level for a in assets if a.type} == {Level.ASSET}


def test_types_inherit_from_machine_and_carry_units_and_ranges() -> None:
    types = {t.name: t for t in VirtualFactory(FactorySpec(), START_US).asset_types()}
    assert {types[n].parent for n in ("cnc", "filler", "conveyor")} == {"machine"}
    for name in ("cnc", "filler", "conveyor"):
        tags = {t.name: t for t in resolve_tags(name, types)}
        assert {"state", "stop_reason", "power"} <= tags.keys()
        assert tags["state"].states is not None and tags["state"].states[2] == "running"
        assert tags["stop_reason"].states is not None
        for tag in tags.values():
            if tag.data_type is DataType.FLOAT:
                assert tag.unit and tag.low is not None and tag.high is not None, tag.name
    cnc = {t.name: t for t in resolve_tags("cnc", types)}
    assert cnc["temperature"].unit == "°C"
    assert cnc["good_count"].data_type is DataType.INT


def test_frame_values_have_the_declared_types() -> None:
    factory = VirtualFactory(FactorySpec(), START_US)
    types = {t.name: t for t in factory.asset_types()}
    declared = {
        f"{a.path}/{tag.name}": tag.data_type
        for a in factory.assets()
        if a.type
        for tag in resolve_tags(a.type, types)
    }
    frame = factory.step(1.0)
    assert frame.paths == factory.paths()
    assert len(frame.values) == len(frame.qualities) == factory.tag_count
    expected = {DataType.FLOAT: float, DataType.INT: int, DataType.STATE: int}
    for path, value in zip(frame.paths, frame.values, strict=True):
        assert type(value) is expected[declared[path]], path


def test_time_advances_by_each_step() -> None:
    factory = VirtualFactory(FactorySpec(), START_US)
    assert factory.step(1.0).time_us == START_US + 1_000_000
    assert factory.step(0.25).time_us == START_US + 1_250_000
    assert factory.step_to(START_US + 3_000_000).time_us == START_US + 3_000_000
    assert factory.steps == 3
    with pytest.raises(ValueError, match="positive"):
        factory.step(0.0)
    with pytest.raises(ValueError, match="already at"):
        factory.step_to(START_US)


def _frames(spec: FactorySpec, steps: int, dt: float = 5.0) -> list[tuple[int, list, list]]:
    factory = VirtualFactory(spec, START_US)
    out = []
    for _ in range(steps):
        frame = factory.step(dt)
        out.append((frame.time_us, frame.values, frame.qualities))
    return out


def test_same_spec_and_seed_give_identical_frames() -> None:
    spec = FactorySpec(machining_lines=2, packaging_lines=2)
    first = _frames(spec, 300)
    assert first == _frames(spec, 300)
    # The run is long enough to contain faults and bad quality, so they are deterministic too.
    assert any(q for _, _, qs in first for q in qs)


def test_a_different_seed_gives_a_different_plant() -> None:
    a = _frames(FactorySpec(seed=1), 20)
    b = _frames(FactorySpec(seed=2), 20)
    assert [v for _, v, _ in a] != [v for _, v, _ in b]


def test_a_machine_behaves_the_same_whatever_the_plant_size() -> None:
    small = VirtualFactory(FactorySpec(machining_lines=1, packaging_lines=1), START_US)
    big = VirtualFactory(FactorySpec(machining_lines=5, packaging_lines=4), START_US)
    for _ in range(100):
        s, b = small.step(5.0), big.step(5.0)
    small_values = dict(zip(s.paths, s.values, strict=True))
    big_values = dict(zip(b.paths, b.values, strict=True))
    assert small_values == {p: big_values[p] for p in small_values}


def test_bad_quality_marks_only_temperature_sensors() -> None:
    spec = FactorySpec(machining_lines=3, faults={"sensor_failure_per_hour": 6.0})
    factory = VirtualFactory(spec, START_US)
    bad_paths = set()
    for _ in range(200):
        frame = factory.step(5.0)
        bad_paths.update(p for p, q in zip(frame.paths, frame.qualities, strict=True) if q)
        assert set(frame.qualities) <= {Quality.GOOD, Quality.BAD_SENSOR_FAILURE}
    assert bad_paths
    assert all(p.endswith("/temperature") for p in bad_paths)


def test_a_packaging_only_plant_works() -> None:
    factory = VirtualFactory(FactorySpec(machining_lines=0, packaging_lines=2), START_US)
    frame = factory.step(1.0)
    assert not any("/machining/" in p for p in frame.paths)
    assert factory.asset_paths("cnc") == []
    with pytest.raises(KeyError, match="cnc"):
        factory.columns("cnc")
