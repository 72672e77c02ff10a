"""The asset types of the virtual factory: which tags each kind of machine has, with units.

The tag order here is the column order the machine models produce, so a tag path list built
from these types (inherited tags first, as `resolve_tags` returns them) lines up with the
values of a frame.
"""

from __future__ import annotations

from kiln.model.definitions import AssetTypeDef, DataType, TagDef
from kiln.production.states import REASON_NAMES, STATE_NAMES

MACHINE = "machine"
CNC = "cnc"
FILLER = "filler"
CONVEYOR = "conveyor"

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


def _filler_tags(fill_target_g: float) -> tuple[TagDef, ...]:
    return (
        TagDef(
            name="fill_weight",
            unit="g",
            low=0.0,
            high=2 * fill_target_g,
            description="net weight of the last container filled",
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

CNC_TAG_COUNT = len(_MACHINE_TAGS) + len(_CNC_TAGS)
FILLER_TAG_COUNT = len(_MACHINE_TAGS) + len(_filler_tags(1.0))
CONVEYOR_TAG_COUNT = len(_MACHINE_TAGS) + len(_CONVEYOR_TAGS)


def asset_types(fill_target_g: float) -> list[AssetTypeDef]:
    """The four types: an abstract `machine` and the `cnc`, `filler`, `conveyor` built on it."""
    return [
        AssetTypeDef(
            name=MACHINE,
            description="anything with a state and a power meter",
            tags=_MACHINE_TAGS,
        ),
        AssetTypeDef(name=CNC, parent=MACHINE, description="CNC machining centre", tags=_CNC_TAGS),
        AssetTypeDef(
            name=FILLER,
            parent=MACHINE,
            description="filler with check weigher",
            tags=_filler_tags(fill_target_g),
        ),
        AssetTypeDef(
            name=CONVEYOR,
            parent=MACHINE,
            description="packaging line conveyor",
            tags=_CONVEYOR_TAGS,
        ),
    ]
