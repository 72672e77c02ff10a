"""Compiling alarm definitions (issue 14): inheritance and overrides by name, alarms_off, tag
alarms by full path, resolved paths, and errors that name the asset, the alarm and the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from kiln.alarms.compile import AlarmConfigError, compile_alarms
from kiln.alarms.definitions import AlarmDef, Priority
from kiln.alarms.records import AlarmSpec
from kiln.model import AssetDef, AssetTypeDef, DataType, Level, TagDef

ALARM: TypeAdapter[Any] = TypeAdapter(AlarmDef)
MILL = "acme/plant1/line1/mill"
LATHE = "acme/plant1/line1/lathe"


def alarm(**kw: Any) -> AlarmDef:
    return ALARM.validate_python(kw)  # type: ignore[no-any-return]


def machine_type(*alarms: AlarmDef) -> AssetTypeDef:
    return AssetTypeDef(
        name="machine",
        tags=(
            TagDef(name="temp"),
            TagDef(name="temp_limit"),
            TagDef(name="speed"),
            TagDef(name="speed_sp"),
            TagDef(
                name="state",
                data_type=DataType.STATE,
                states={0: "stopped", 1: "running", 3: "fault"},
            ),
        ),
        alarms=alarms,
    )


def mill_type(*alarms: AlarmDef) -> AssetTypeDef:
    return AssetTypeDef(
        name="mill", parent="machine", tags=(TagDef(name="spindle"),), alarms=alarms
    )


def asset(path: str = MILL, type_: str | None = "mill", **kw: Any) -> AssetDef:
    return AssetDef(path=path, level=Level.ASSET, type=type_, **kw)


def by_id(specs: list[AlarmSpec]) -> dict[str, AlarmSpec]:
    ids = [s.id for s in specs]
    assert len(ids) == len(set(ids)), f"duplicate ids: {ids}"
    return {s.id: s for s in specs}


HOT = alarm(kind="limit", name="hot", tag="temp", hi={"value": 80}, priority="high")
FAULT = alarm(kind="discrete", name="fault", tag="state", states=["fault"])


def test_a_limit_alarm_gives_one_alarm_per_limit_with_its_priority() -> None:
    hot = alarm(
        kind="limit",
        name="hot",
        tag="temp",
        priority="medium",
        hihi={"value": 95, "priority": "critical"},
        hi={"value": "temp_limit"},
        lo={"value": 5},
    )
    specs = by_id(compile_alarms([machine_type(hot), mill_type()], [asset()]))
    assert sorted(specs) == [f"{MILL}/hot:hi", f"{MILL}/hot:hihi", f"{MILL}/hot:lo"]
    hihi = specs[f"{MILL}/hot:hihi"]
    assert (hihi.condition, hihi.priority, hihi.tag) == ("hihi", Priority.CRITICAL, f"{MILL}/temp")
    assert specs[f"{MILL}/hot:hi"].priority is Priority.MEDIUM
    # Names, including the limit tag, resolve under the asset.
    assert hihi.tags == {"temp": f"{MILL}/temp", "temp_limit": f"{MILL}/temp_limit"}


def test_a_child_type_replaces_its_parents_alarm_and_the_asset_replaces_both() -> None:
    child_hot = alarm(kind="limit", name="hot", tag="spindle", hi={"value": 60})
    own_hot = alarm(kind="limit", name="hot", tag="temp", lo={"value": 1})
    types = [machine_type(HOT, FAULT), mill_type(child_hot)]
    specs = by_id(compile_alarms(types, [asset(), asset(LATHE, alarms=(own_hot,))]))
    # The mill type's "hot" replaced the machine's: on the spindle, not the temperature.
    assert specs[f"{MILL}/hot:hi"].tag == f"{MILL}/spindle"
    # The lathe's own "hot" replaced the type's entirely (no hi left, a lo instead).
    assert f"{LATHE}/hot:hi" not in specs
    assert specs[f"{LATHE}/hot:lo"].tag == f"{LATHE}/temp"
    # Not overridden: inherited as is.
    assert specs[f"{LATHE}/fault"].condition == "discrete"


def test_alarms_off_removes_an_inherited_alarm_and_refuses_an_unknown_name() -> None:
    types = [machine_type(HOT, FAULT), mill_type()]
    specs = by_id(compile_alarms(types, [asset(alarms_off=("hot",))]))
    assert list(specs) == [f"{MILL}/fault"]
    with pytest.raises(AlarmConfigError, match="alarms_off") as err:
        compile_alarms(types, [asset(alarms_off=("hott",))])
    assert (err.value.asset, err.value.alarm, err.value.field) == (MILL, "hott", "alarms_off")
    assert "fault, hot" in str(err.value)  # the names it could have meant


def test_tag_alarms_by_full_path_land_on_the_parent_asset_and_override_by_name() -> None:
    tag_hot = alarm(kind="limit", name="hot", tag=f"{MILL}/temp", hi={"value": 70})
    loose = alarm(kind="stale", name="quiet", tag="acme/plant1/utilities/air_pressure", after_s=60)
    specs = by_id(
        compile_alarms([machine_type(HOT), mill_type()], [asset()], tag_alarms=[tag_hot, loose])
    )
    assert specs[f"{MILL}/hot:hi"].definition is tag_hot
    quiet = specs["acme/plant1/utilities/quiet"]
    assert (quiet.asset, quiet.tag) == (
        "acme/plant1/utilities",
        "acme/plant1/utilities/air_pressure",
    )


def test_tag_alarms_must_name_full_paths() -> None:
    with pytest.raises(AlarmConfigError, match="full path") as err:
        compile_alarms([], [], tag_alarms=[alarm(kind="bad_quality", name="bq", tag="temp")])
    assert err.value.field == "tag"
    limit_by_name = alarm(kind="limit", name="hot", tag=f"{MILL}/temp", hi={"value": "lim"})
    with pytest.raises(AlarmConfigError, match=r"hi\.value"):
        compile_alarms([], [], tag_alarms=[limit_by_name])


def test_extra_alarms_replace_by_name_and_may_sit_on_undeclared_assets() -> None:
    api_hot = alarm(kind="limit", name="hot", tag="temp", hi={"value": 99})
    elsewhere = alarm(kind="bad_quality", name="bq", tag="x")
    specs = by_id(
        compile_alarms(
            [machine_type(HOT), mill_type()],
            [asset()],
            extra=[(MILL, api_hot), ("acme/plant2/kiln", elsewhere)],
        )
    )
    assert specs[f"{MILL}/hot:hi"].definition is api_hot
    assert specs["acme/plant2/kiln/bq"].tag == "acme/plant2/kiln/x"


def test_a_bare_name_must_be_a_tag_of_the_type_and_the_error_lists_them() -> None:
    typo = alarm(kind="limit", name="hot", tag="tmep", hi={"value": 80})
    with pytest.raises(AlarmConfigError) as err:
        compile_alarms([machine_type(), mill_type()], [asset(alarms=(typo,))])
    assert (err.value.asset, err.value.alarm, err.value.field) == (MILL, "hot", "tag")
    assert "speed, speed_sp, spindle, state, temp, temp_limit" in str(err.value)
    # Limit tags, set-points, expressions and suppression conditions are checked the same way.
    cases = {
        "setpoint": alarm(kind="deviation", name="d", tag="speed", setpoint="sp", high=5),
        "expression": alarm(kind="expression", name="e", expression="temp > 3 and nope"),
        "suppress_when": alarm(kind="bad_quality", name="b", tag="temp", suppress_when="idle"),
    }
    for field, bad in cases.items():
        with pytest.raises(AlarmConfigError) as err:
            compile_alarms([machine_type(), mill_type()], [asset(alarms=(bad,))])
        assert err.value.field == field


def test_an_untyped_asset_takes_any_tag_name() -> None:
    own = alarm(kind="limit", name="hot", tag="whatever", hi={"value": 1})
    [spec] = compile_alarms([], [asset(type_=None, alarms=(own,))])
    assert spec.tag == f"{MILL}/whatever"


def test_discrete_state_names_must_be_states_of_the_tag() -> None:
    specs = by_id(compile_alarms([machine_type(FAULT), mill_type()], [asset()]))
    fault = specs[f"{MILL}/fault"]
    assert fault.states == {f"{MILL}/state": {0: "stopped", 1: "running", 3: "fault"}}
    wrong = alarm(kind="discrete", name="fault", tag="state", states=["faulted"])
    with pytest.raises(AlarmConfigError, match="states") as err:
        compile_alarms([machine_type(wrong), mill_type()], [asset()])
    assert "0: stopped, 1: running, 3: fault" in str(err.value)


def test_expression_alarms_map_every_name_and_carry_state_names() -> None:
    expr = alarm(
        kind="expression",
        name="slow_running",
        expression="state == 'running' and speed < speed_sp - 10",
        suppress_when="temp < 0",
    )
    [spec] = compile_alarms([machine_type(expr), mill_type()], [asset()])
    assert spec.tag is None
    assert spec.id == f"{MILL}/slow_running"
    assert spec.tags == {n: f"{MILL}/{n}" for n in ("state", "speed", "speed_sp", "temp")}
    assert set(spec.states) == {f"{MILL}/state"}


def test_deviation_gives_one_alarm_per_side() -> None:
    dev = alarm(kind="deviation", name="speed_dev", tag="speed", setpoint="speed_sp", low=3)
    [low] = compile_alarms([machine_type(dev), mill_type()], [asset()])
    assert (low.id, low.condition) == (f"{MILL}/speed_dev:deviation_low", "deviation_low")
    both = dev.model_copy(update={"high": 2.0})
    ids = {s.id for s in compile_alarms([machine_type(both), mill_type()], [asset()])}
    assert ids == {f"{MILL}/speed_dev:deviation_low", f"{MILL}/speed_dev:deviation_high"}


def test_an_unknown_asset_type_is_an_error_naming_the_type_field() -> None:
    with pytest.raises(AlarmConfigError, match="unknown asset type 'mil'") as err:
        compile_alarms([machine_type(), mill_type()], [asset(type_="mil")])
    assert err.value.field == "type"
