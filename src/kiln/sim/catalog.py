"""The asset types of the virtual factory: which tags each kind of machine has, with units.

The tag order here is the column order the machine models produce, so a tag path list built
from these types (inherited tags first, as `resolve_tags` returns them) lines up with the
values of a frame.
"""

from __future__ import annotations

from kiln.alarms.definitions import (
    AlarmDef,
    BadQualityAlarm,
    DeviationAlarm,
    DiscreteAlarm,
    LimitAlarm,
    LimitDef,
    Priority,
)
from kiln.model.definitions import AssetTypeDef, DataType, SpecLimits, TagDef
from kiln.production.spc_tags import SpcDef
from kiln.production.states import REASON_NAMES, STATE_NAMES
from kiln.production.taxonomy import Category, CounterDef, ReasonDef, StateModel, StateRule

MACHINE = "machine"
CNC = "cnc"
FILLER = "filler"
CONVEYOR = "conveyor"

# A CNC's spindle overheats (a fault stops it) above this; its alarms warn before.
OVERHEAT_LIMIT_C = 85.0

_MACHINE_TAGS = (
    TagDef(
        name="state",
        data_type=DataType.STATE,
        states=STATE_NAMES,
        description="machine state",
    ),
    TagDef(
        name="stop_reason",
        data_type=DataType.STATE,
        states=REASON_NAMES,
        description="why the machine is not running (none while it runs)",
    ),
    TagDef(name="power", unit="kW", low=0.0, high=40.0, description="electrical power drawn"),
)

_CNC_TAGS = (
    TagDef(name="spindle_speed", unit="rpm", low=0.0, high=15000.0, description="spindle speed"),
    TagDef(name="spindle_load", unit="%", low=0.0, high=150.0, description="spindle load"),
    TagDef(name="temperature", unit="°C", low=0.0, high=120.0, description="spindle temperature"),
    TagDef(name="vibration", unit="mm/s", low=0.0, high=20.0, description="vibration velocity RMS"),
    TagDef(name="tool_wear", unit="%", low=0.0, high=100.0, description="tool wear"),
    TagDef(
        name="cycle_time",
        unit="s",
        low=0.0,
        high=600.0,
        description="ideal cycle time of the current job",
    ),
    TagDef(name="good_count", data_type=DataType.INT, description="good parts made (counter)"),
    TagDef(name="scrap_count", data_type=DataType.INT, description="scrapped parts (counter)"),
)


def _filler_tags(fill_target_g: float, fill_tolerance_g: float = 5.0) -> tuple[TagDef, ...]:
    return (
        TagDef(
            name="fill_weight",
            unit="g",
            low=0.0,
            high=2 * fill_target_g,
            description="net weight of the last container filled",
            # What the check weigher lets through: the product's specification.
            spec=SpecLimits(
                lsl=fill_target_g - fill_tolerance_g,
                usl=fill_target_g + fill_tolerance_g,
                target=fill_target_g,
            ),
        ),
        TagDef(
            name="fill_target",
            unit="g",
            low=0.0,
            high=2 * fill_target_g,
            description="fill weight set point",
        ),
        TagDef(name="fill_rate", unit="1/min", low=0.0, high=200.0, description="containers/min"),
        TagDef(name="motor_current", unit="A", low=0.0, high=20.0, description="drive current"),
        TagDef(name="good_count", data_type=DataType.INT, description="good containers (counter)"),
        TagDef(
            name="scrap_count",
            data_type=DataType.INT,
            description="containers rejected by the check weigher (counter)",
        ),
    )


_CONVEYOR_TAGS = (
    TagDef(name="speed", unit="m/min", low=0.0, high=60.0, description="belt speed"),
    TagDef(name="motor_current", unit="A", low=0.0, high=20.0, description="drive current"),
)

# Alarms the demo raises within minutes: what an alarm philosophy would give these machines.
_MACHINE_ALARMS: tuple[AlarmDef, ...] = (
    DiscreteAlarm(
        name="fault",
        tag="state",
        states=("down",),
        priority=Priority.HIGH,
        message="{asset}: machine stopped by a fault",
    ),
)

_CNC_ALARMS: tuple[AlarmDef, ...] = (
    LimitAlarm(
        name="spindle_temp",
        tag="temperature",
        hi=LimitDef(value=78.0, deadband=2.0, priority=Priority.MEDIUM),
        hihi=LimitDef(value=OVERHEAT_LIMIT_C, deadband=2.0, priority=Priority.CRITICAL),
        on_delay_s=5.0,
        message="{asset}: spindle temperature {value} °C over {limit} °C",
    ),
    LimitAlarm(
        name="vibration",
        tag="vibration",
        hi=LimitDef(value=4.0, deadband=0.3),
        priority=Priority.LOW,
        on_delay_s=10.0,
        message="{asset}: vibration {value} mm/s over {limit} mm/s (tool worn?)",
    ),
    BadQualityAlarm(
        name="temperature_sensor",
        tag="temperature",
        priority=Priority.LOW,
        message="{asset}: spindle temperature sensor failed",
    ),
)


def _filler_alarms(fill_sigma_g: float) -> tuple[AlarmDef, ...]:
    return (
        DeviationAlarm(
            name="fill_weight",
            tag="fill_weight",
            setpoint="fill_target",
            high=4 * fill_sigma_g,
            low=4 * fill_sigma_g,
            deadband=fill_sigma_g,
            on_delay_s=10.0,
            priority=Priority.MEDIUM,
            message="{asset}: fill weight {value} g off its set point ({limit} g)",
        ),
        _jam(),
    )


def _jam() -> DiscreteAlarm:
    return DiscreteAlarm(
        name="jam",
        tag="stop_reason",
        states=("jam",),
        priority=Priority.HIGH,
        message="{asset}: jammed",
    )


CNC_TAG_COUNT = len(_MACHINE_TAGS) + len(_CNC_TAGS)
FILLER_TAG_COUNT = len(_MACHINE_TAGS) + len(_filler_tags(1.0))
CONVEYOR_TAG_COUNT = len(_MACHINE_TAGS) + len(_CONVEYOR_TAGS)


def asset_types(
    fill_target_g: float, fill_sigma_g: float = 1.5, fill_tolerance_g: float = 5.0
) -> list[AssetTypeDef]:
    """The four types: an abstract `machine` and the `cnc`, `filler`, `conveyor` built on it,
    with their alarms."""
    return [
        AssetTypeDef(
            name=MACHINE,
            description="anything with a state and a power meter",
            tags=_MACHINE_TAGS,
            alarms=_MACHINE_ALARMS,
        ),
        AssetTypeDef(
            name=CNC,
            parent=MACHINE,
            description="CNC machining centre",
            tags=_CNC_TAGS,
            alarms=_CNC_ALARMS,
        ),
        AssetTypeDef(
            name=FILLER,
            parent=MACHINE,
            description="filler with check weigher",
            tags=_filler_tags(fill_target_g, fill_tolerance_g),
            alarms=_filler_alarms(fill_sigma_g),
        ),
        AssetTypeDef(
            name=CONVEYOR,
            parent=MACHINE,
            description="packaging line conveyor",
            tags=_CONVEYOR_TAGS,
            alarms=(_jam(),),
        ),
    ]


# -- production: how the machines' tags become states and counts (kiln.production) -----------

_REASONS = (
    ReasonDef(
        name="technical",
        category=Category.TECHNICAL,
        children=(
            ReasonDef(name="overheat", description="spindle overheated (cooling failure)"),
            ReasonDef(name="jam"),
            ReasonDef(name="tool_breakage"),
            ReasonDef(name="electrical"),
        ),
    ),
    ReasonDef(
        name="material",
        category=Category.MATERIAL,
        children=(ReasonDef(name="material_shortage"), ReasonDef(name="wrong_material")),
    ),
    ReasonDef(
        name="operator",
        category=Category.OPERATOR,
        children=(ReasonDef(name="waiting"), ReasonDef(name="no_operator")),
    ),
    ReasonDef(
        name="quality",
        category=Category.QUALITY,
        children=(ReasonDef(name="inspection"), ReasonDef(name="adjustment")),
    ),
    ReasonDef(
        name="planning",
        category=Category.PLANNING,
        children=(ReasonDef(name="no_order"),),
    ),
    ReasonDef(
        name="setup",
        category=Category.SETUP,
        children=(ReasonDef(name="changeover"), ReasonDef(name="tool_change")),
    ),
    ReasonDef(
        name="planned",
        category=Category.PLANNED_STOP,
        children=(
            ReasonDef(name="break"),
            ReasonDef(name="no_shift"),
            ReasonDef(name="cleaning"),
            ReasonDef(
                name="maintenance",
                category=Category.PLANNED_MAINTENANCE,
                description="preventive maintenance",
            ),
        ),
    ),
    ReasonDef(
        name="line",
        category=Category.STARVED,
        description="caused elsewhere on the line",
        children=(
            ReasonDef(name="starved"),
            ReasonDef(name="blocked", category=Category.BLOCKED),
        ),
    ),
)

_STATE_RULES = (
    StateRule(state="running", category=Category.RUNNING),
    StateRule(state="setup", category=Category.SETUP),
    StateRule(state="planned_stop", category=Category.PLANNED_STOP),
    StateRule(state="off", category=Category.PLANNED_STOP, reason="planned/no_shift"),
    StateRule(state="down", stop_reason="material_shortage", category=Category.MATERIAL),
    StateRule(state="down", category=Category.TECHNICAL),
    StateRule(state="idle", stop_reason="starved", category=Category.STARVED),
    StateRule(state="idle", stop_reason="no_shift", category=Category.PLANNED_STOP),
    StateRule(state="idle", category=Category.OPERATOR),
)
# The virtual factory's short waits last 5 s and more, about 45 s on average: under two
# minutes nobody is asked for a reason.
MICRO_STOP_S = 120.0
FILLER_IDEAL_CYCLE_S = 0.5  # 120 containers a minute (the filler's nominal rate)


def state_models() -> dict[str, StateModel]:
    """The state model of each machine type: the state and reason tags mapped to the
    taxonomy, the counters, and where the ideal cycle time comes from."""
    base = StateModel(
        state_tag="state",
        reason_tag="stop_reason",
        rules=_STATE_RULES,
        reasons=_REASONS,
        micro_stop_s=MICRO_STOP_S,
    )
    good, scrap = CounterDef(tag="good_count"), CounterDef(tag="scrap_count")
    return {
        MACHINE: base,
        CNC: base.model_copy(
            update={"good": good, "scrap": scrap, "ideal_cycle_tag": "cycle_time"}
        ),
        FILLER: base.model_copy(
            update={"good": good, "scrap": scrap, "ideal_cycle_s": FILLER_IDEAL_CYCLE_S}
        ),
    }


def spc_charts(filler_paths: list[str]) -> list[SpcDef]:
    """An X-bar-R chart of each filler's fill weight: five fills a minute make a subgroup, limits
    roll over the last 20 (so the demo judges its first
    subgroup after 20 minutes), and Nelson rules 1, 2 and 5 (a point beyond 3 sigma, nine on one
    side, two of three beyond 2 sigma) catch the fill drifts the filler suffers."""
    return [
        SpcDef(
            name=path.replace("/", ".") + ".fill_weight",
            tag=f"{path}/fill_weight",
            chart="xbar_r",
            subgroup_size=5,
            subgroup_s=60.0,
            rolling_subgroups=20,
            enabled_rules=(1, 2, 5),
            priority="low",
        )
        for path in filler_paths
    ]
