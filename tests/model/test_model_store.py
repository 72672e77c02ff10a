"""The relational store: declarative, idempotent apply; inheritance; auto-created tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from kiln.core.errors import ConfigError
from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level, TagDef
from kiln.model.info import ApplyResult, TagInfo
from kiln.model.schema import TagRow
from kiln.model.store import ModelStore, level_for_depth

LINE = "acme/plant1/packaging/line1"
NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def tags_by_path(store: ModelStore) -> dict[str, TagInfo]:
    return {t.path: t for t in store.load().tags}


def test_apply_creates_implicit_parents_with_levels_from_depth(
    store: ModelStore, machine_types, line_assets
) -> None:
    result = store.apply(machine_types, line_assets)

    assert result.assets_created == 6  # acme, plant1, packaging, line1, filler, capper
    assets = {a.path: a for a in store.load().assets}
    assert {p: a.level for p, a in assets.items()} == {
        "acme": Level.ENTERPRISE,
        "acme/plant1": Level.SITE,
        "acme/plant1/packaging": Level.AREA,
        LINE: Level.LINE,
        f"{LINE}/filler": Level.ASSET,
        f"{LINE}/capper": Level.ASSET,
    }
    assert assets[LINE].description == "line 1"
    assert assets[f"{LINE}/filler"].type == "filler"
    assert assets["acme/plant1"].type is None


def test_levels_by_depth() -> None:
    assert [level_for_depth(d) for d in range(1, 9)] == [
        Level.ENTERPRISE,
        Level.SITE,
        Level.AREA,
        Level.LINE,
        Level.CELL,
        Level.ASSET,
        Level.ASSET,
        Level.ASSET,
    ]


def test_apply_twice_changes_nothing(store: ModelStore, machine_types, line_assets) -> None:
    first = store.apply(machine_types, line_assets)
    snapshot = store.load()

    second = store.apply(machine_types, line_assets)

    assert first.changed
    assert second == ApplyResult()
    assert not second.changed
    assert store.load() == snapshot


def test_instance_tags_have_paths_units_ranges_and_states(
    store: ModelStore, machine_types, line_assets
) -> None:
    store.apply(machine_types, line_assets)
    tags = tags_by_path(store)

    assert sorted(tags) == sorted(
        f"{LINE}/{asset}/{tag}"
        for asset, names in {
            "filler": ("state", "temperature", "good_count", "fill_weight"),
            "capper": ("state", "temperature", "good_count"),
        }.items()
        for tag in names
    )
    weight = tags[f"{LINE}/filler/fill_weight"]
    assert weight == TagInfo(
        path=f"{LINE}/filler/fill_weight",
        name="fill_weight",
        asset_path=f"{LINE}/filler",
        data_type=DataType.FLOAT,
        unit="g",
        low=0.0,
        high=1000.0,
    )
    state = tags[f"{LINE}/capper/state"]
    assert state.data_type is DataType.STATE
    assert state.states == {1: "running", 2: "stopped", 3: "faulted"}
    assert tags[f"{LINE}/capper/good_count"].data_type is DataType.INT


def test_child_type_overrides_the_parent_tag(store: ModelStore, machine_types, line_assets) -> None:
    store.apply(machine_types, line_assets)
    tags = tags_by_path(store)

    filler_temp = tags[f"{LINE}/filler/temperature"]
    capper_temp = tags[f"{LINE}/capper/temperature"]
    assert (filler_temp.low, filler_temp.high, filler_temp.description) == (-10.0, 90.0, "product")
    assert (capper_temp.low, capper_temp.high, capper_temp.description) == (0.0, 120.0, "housing")


def test_types_survive_a_round_trip(store: ModelStore, machine_types) -> None:
    store.apply(machine_types, [])
    assert store.load().types == sorted(machine_types, key=lambda t: t.name)


def test_inheritance_cycle_is_rejected_before_anything_is_written(store: ModelStore) -> None:
    a = AssetTypeDef(name="a", parent="b")
    b = AssetTypeDef(name="b", parent="a")

    with pytest.raises(ConfigError, match=r"asset type 'a' inherits from itself via 'a'"):
        store.apply([a, b], [AssetDef(path="acme/plant1", level=Level.SITE)])

    assert store.load() == ([], [], [])


def test_unknown_parent_type_names_the_known_types(store: ModelStore, machine_types) -> None:
    orphan = AssetTypeDef(name="palletizer", parent="robot")

    with pytest.raises(
        ConfigError,
        match=r"'palletizer' inherits from unknown type 'robot' "
        r"\(known types: filler, machine, palletizer\)",
    ):
        store.apply([*machine_types, orphan], [])


def test_unknown_asset_type_names_the_known_types(store: ModelStore, machine_types) -> None:
    with pytest.raises(
        ConfigError,
        match=r"asset 'acme/plant1/x' has unknown type 'robot' \(known types: filler, machine\)",
    ):
        store.apply(machine_types, [AssetDef(path="acme/plant1/x", level=Level.AREA, type="robot")])


def test_types_applied_earlier_serve_later_assets(store: ModelStore, machine_types) -> None:
    store.apply(machine_types, [])
    store.apply([], [AssetDef(path="acme/plant1/m1", level=Level.ASSET, type="machine")])

    assert set(tags_by_path(store)) == {
        "acme/plant1/m1/state",
        "acme/plant1/m1/temperature",
        "acme/plant1/m1/good_count",
    }


def test_conflicting_definitions_are_rejected(store: ModelStore) -> None:
    with pytest.raises(ConfigError, match="asset type defined more than once, differently: t"):
        store.apply([AssetTypeDef(name="t"), AssetTypeDef(name="t", description="other")], [])
    site = AssetDef(path="acme/plant1", level=Level.SITE)
    with pytest.raises(ConfigError, match="asset defined more than once, differently: acme/plant1"):
        store.apply([], [site, site.model_copy(update={"description": "other"})])
    assert store.load() == ([], [], [])


def test_repeated_identical_definitions_count_once(store: ModelStore, machine_types) -> None:
    # Configuration and the virtual factory may both declare the enterprise.
    enterprise = AssetDef(path="acme", level=Level.ENTERPRISE)
    result = store.apply(machine_types + machine_types, [enterprise, enterprise])
    assert (result.types_created, result.assets_created) == (2, 1)


def test_a_level_above_its_parent_is_rejected(store: ModelStore) -> None:
    with pytest.raises(ConfigError, match=r"'acme/plant1/l1/x' is a site under 'acme/plant1/l1'"):
        store.apply(
            [],
            [
                AssetDef(path="acme/plant1/l1", level=Level.LINE),
                AssetDef(path="acme/plant1/l1/x", level=Level.SITE),
            ],
        )


def test_levels_may_be_skipped_and_assets_may_nest(store: ModelStore) -> None:
    result = store.apply(
        [],
        [
            AssetDef(path="acme/plant1/line1", level=Level.LINE),  # no area
            AssetDef(path="acme/plant1/line1/pump", level=Level.ASSET),
            AssetDef(path="acme/plant1/line1/pump/motor", level=Level.ASSET),
        ],
    )
    assert result.assets_created == 5


def test_a_path_cannot_be_both_asset_and_tag(store: ModelStore, machine_types) -> None:
    with pytest.raises(ConfigError, match="would be both an asset and the tag 'state'"):
        store.apply(
            machine_types,
            [
                AssetDef(path="acme/plant1/m1", level=Level.ASSET, type="machine"),
                AssetDef(path="acme/plant1/m1/state", level=Level.ASSET),
            ],
        )


def test_an_invalid_enterprise_name_is_rejected(store: ModelStore) -> None:
    with pytest.raises(ConfigError, match=r"asset 'ac me'.*invalid segment 'ac me'"):
        store.apply([], [AssetDef(path="ac me", level=Level.ENTERPRISE)])


def test_apply_updates_assets_in_place(store: ModelStore, machine_types, line_assets) -> None:
    store.apply(machine_types, line_assets)

    result = store.apply(
        [], [AssetDef(path=LINE, level=Level.LINE, description="renamed line", type=None)]
    )

    assert (result.assets_updated, result.assets_created, result.tags_created) == (1, 0, 0)
    assets = {a.path: a for a in store.load().assets}
    assert assets[LINE].description == "renamed line"
    assert len(assets) == 6  # assets absent from a later apply are kept


def test_changing_a_type_updates_and_removes_its_declared_tags(
    store: ModelStore, machine_types, line_assets
) -> None:
    store.apply(machine_types, line_assets)
    store.create_tags(
        [
            TagInfo(
                f"{LINE}/filler/vibration",
                "vibration",
                f"{LINE}/filler",
                DataType.FLOAT,
                auto_created=True,
            )
        ]
    )
    filler = machine_types[1]
    filler_v2 = filler.model_copy(update={"tags": (TagDef(name="fill_volume", unit="ml"),)})

    result = store.apply([filler_v2], [])

    assert (result.types_updated, result.tags_created, result.tags_updated) == (1, 1, 1)
    assert result.tags_removed == 1
    tags = tags_by_path(store)
    assert tags[f"{LINE}/filler/fill_volume"].unit == "ml"
    assert f"{LINE}/filler/fill_weight" not in tags
    # The parent's temperature applies again, now that the child no longer overrides it.
    assert tags[f"{LINE}/filler/temperature"].description == "housing"
    assert f"{LINE}/filler/vibration" in tags  # created by its first value: not the type's
    assert f"{LINE}/capper/state" in tags  # another type, untouched

    result = store.apply([], [AssetDef(path=f"{LINE}/filler", level=Level.ASSET)])  # untyped
    assert result.tags_removed == 4
    assert [p for p in tags_by_path(store) if "/filler/" in p] == [f"{LINE}/filler/vibration"]


def test_create_tags_inserts_only_new_paths(store: ModelStore, machine_types, line_assets) -> None:
    store.apply(machine_types, line_assets)
    declared = f"{LINE}/filler/state"
    new = TagInfo(
        "acme/plant1/packaging/line1/filler/vibration",
        "vibration",
        f"{LINE}/filler",
        DataType.FLOAT,
        auto_created=True,
    )
    clash = TagInfo(declared, "state", None, DataType.STRING, auto_created=True)

    assert store.create_tags([new, clash, new], now=NOW) == [new.path]
    assert store.create_tags([new], now=NOW) == []

    tags = tags_by_path(store)
    assert tags[new.path] == new
    assert tags[declared].data_type is DataType.STATE  # the declared tag was not overwritten


def test_declaring_an_auto_created_tag_takes_it_over(store: ModelStore, machine_types) -> None:
    path = "acme/plant1/m1/temperature"
    store.create_tags([TagInfo(path, "temperature", None, DataType.INT, auto_created=True)])

    result = store.apply(
        machine_types, [AssetDef(path="acme/plant1/m1", level=Level.ASSET, type="machine")]
    )

    assert (result.tags_created, result.tags_updated) == (2, 1)
    tag = tags_by_path(store)[path]
    assert (tag.auto_created, tag.data_type, tag.unit, tag.asset_path) == (
        False,
        DataType.FLOAT,
        "degC",
        "acme/plant1/m1",
    )


def test_auto_created_tags_move_under_a_newly_declared_asset(store: ModelStore) -> None:
    path = "acme/plant1/line1/robot/torque"
    store.apply([], [AssetDef(path="acme/plant1", level=Level.SITE)])
    store.create_tags([TagInfo(path, "torque", "acme/plant1", DataType.FLOAT, auto_created=True)])

    result = store.apply([], [AssetDef(path="acme/plant1/line1/robot", level=Level.ASSET)])

    assert result.tags_updated == 1
    assert tags_by_path(store)[path].asset_path == "acme/plant1/line1/robot"
    assert (
        store.apply([], [AssetDef(path="acme/plant1/line1/robot", level=Level.ASSET)])
        == ApplyResult()
    )


def test_declaring_an_asset_on_a_tag_path_is_rejected(store: ModelStore) -> None:
    store.create_tags([TagInfo("acme/plant1/x", "x", None, DataType.FLOAT, auto_created=True)])
    with pytest.raises(ConfigError, match="asset 'acme/plant1/x' is already a tag"):
        store.apply([], [AssetDef(path="acme/plant1/x", level=Level.AREA)])


def test_created_at_is_a_timezone_aware_utc_instant(store: ModelStore) -> None:
    local = datetime(2026, 3, 1, 8, 0, tzinfo=UTC).astimezone()  # any zone; stored as UTC
    store.create_tags(
        [TagInfo("acme/plant1/x", "x", None, DataType.FLOAT, auto_created=True)], now=local
    )
    with store.engine.connect() as conn:
        created = conn.execute(select(TagRow.created_at)).scalar_one()
    assert created == local
    assert created.utcoffset() is not None
    assert created.tzinfo == UTC


def test_naive_timestamps_are_refused(store: ModelStore) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        store.create_tags(
            [TagInfo("acme/plant1/x", "x", None, DataType.FLOAT)],
            now=datetime(2026, 1, 1),
        )


def test_a_large_plant_applies_in_bulk_and_idempotently(store: ModelStore) -> None:
    sensor = AssetTypeDef(
        name="sensor_block", tags=tuple(TagDef(name=f"s{i}", unit="bar") for i in range(10))
    )
    assets = [
        AssetDef(
            path=f"acme/plant1/area{a}/line{line}/m{m}", level=Level.ASSET, type="sensor_block"
        )
        for a in range(4)
        for line in range(5)
        for m in range(25)
    ]

    first = store.apply([sensor], assets)
    second = store.apply([sensor], assets)

    assert (first.assets_created, first.tags_created) == (2 + 4 + 20 + 500, 5000)
    assert second == ApplyResult()
    assert len(store.load().tags) == 5000
