"""Alarm definitions: good ones load, and each bad one is refused naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from kiln.alarms.definitions import (
    AlarmDef,
    BadQualityAlarm,
    DeviationAlarm,
    DiscreteAlarm,
    ExpressionAlarm,
    LimitAlarm,
    Priority,
    RateOfChangeAlarm,
    StaleAlarm,
)

ALARM: TypeAdapter[Any] = TypeAdapter(AlarmDef)


def test_a_limit_alarm_with_numbers_tags_and_deadbands() -> None:
    alarm = ALARM.validate_python(
        {
            "kind": "limit",
            "name": "spindle_over_temp",
            "tag": "spindle_temp",
            "priority": "critical",
            "hihi": {"value": 95, "deadband": 2},
            "hi": {"value": "acme/plant1/line1/mill/temp_limit"},
            "lo": {"value": 5.5},
            "on_delay_s": 3,
            "off_delay_s": 1.5,
            "realarm_s": 600,
            "latching": True,
            "message": "{asset} spindle at {value:.1f} °C above {limit} ({tag})",
            "suppress_when": "machine_state == 'planned_stop' or speed < 10",
        }
    )
    assert isinstance(alarm, LimitAlarm)
    assert alarm.priority is Priority.CRITICAL
    assert alarm.hihi is not None
    assert alarm.hihi.value == 95.0
    assert alarm.hihi.deadband == 2.0
    assert alarm.hi is not None
    assert alarm.hi.value == "acme/plant1/line1/mill/temp_limit"
    assert alarm.latching
    with pytest.raises(ValidationError):
        alarm.name = "other"  # frozen


@pytest.mark.parametrize(
    ("data", "model"),
    [
        ({"kind": "deviation", "name": "d", "tag": "weight", "setpoint": "weight_sp", "high": 5}, DeviationAlarm),
        ({"kind": "rate_of_change", "name": "r", "tag": "t", "max_rate_per_s": 2, "window_s": 10}, RateOfChangeAlarm),
        ({"kind": "discrete", "name": "s", "tag": "state", "states": ["fault", 7]}, DiscreteAlarm),
        ({"kind": "bad_quality", "name": "q", "tag": "t", "priority": "low"}, BadQualityAlarm),
        ({"kind": "stale", "name": "st", "tag": "t", "after_s": 30}, StaleAlarm),
        ({"kind": "expression", "name": "e", "expression": "(a - b) / 2 > 3 and not jam"}, ExpressionAlarm),
    ],
)  # fmt: skip
def test_each_kind_loads(data: dict[str, Any], model: type) -> None:
    assert isinstance(ALARM.validate_python(data), model)


def _limit(**changes: Any) -> dict[str, Any]:
    return {"kind": "limit", "name": "hi_temp", "tag": "temp", "hi": {"value": 80}} | changes


# Each bad definition and the field its error must name (the last part of pydantic's `loc`, or
# a word of the message where the fault lies between fields).
BAD = [
    pytest.param(_limit(colour="red"), "colour", id="unknown-field"),
    pytest.param(_limit(kind="nonsense"), "kind", id="unknown-kind"),
    pytest.param(_limit(name="bad name!"), "name", id="name"),
    pytest.param(_limit(priority="urgent"), "priority", id="priority"),
    pytest.param(_limit(on_delay_s=-1), "on_delay_s", id="on-delay"),
    pytest.param(_limit(off_delay_s=-1), "off_delay_s", id="off-delay"),
    pytest.param(_limit(realarm_s=0), "realarm_s", id="realarm"),
    pytest.param(_limit(tag="a b"), "tag", id="tag"),
    pytest.param(_limit(hi={"value": 80, "deadband": -1}), "deadband", id="deadband"),
    pytest.param(_limit(hi={"value": "bad path/"}), "value", id="limit-tag"),
    pytest.param(_limit(hi=None), "hihi, hi, lo, lolo", id="no-limit"),
    pytest.param(_limit(lo={"value": 90}), "lo=90 must be below hi=80", id="limit-order"),
    pytest.param(_limit(message="{value} over {threshold}"), "message", id="placeholder"),
    pytest.param(_limit(message="{value.real}"), "message", id="placeholder-attribute"),
    pytest.param(_limit(message="{value"), "message", id="template-malformed"),
    pytest.param(_limit(suppress_when="state =="), "suppress_when", id="suppress-syntax"),
    pytest.param(_limit(latching="maybe"), "latching", id="latching"),
    pytest.param(
        {"kind": "deviation", "name": "d", "tag": "w", "setpoint": "w_sp"},
        "high, low or both",
        id="deviation-no-band",
    ),
    pytest.param(
        {"kind": "deviation", "name": "d", "tag": "w", "setpoint": "w sp", "high": 1},
        "setpoint",
        id="setpoint",
    ),
    pytest.param(
        {"kind": "rate_of_change", "name": "r", "tag": "t", "max_rate_per_s": 1, "window_s": 0},
        "window_s",
        id="window",
    ),
    pytest.param(
        {"kind": "rate_of_change", "name": "r", "tag": "t", "max_rate_per_s": -1, "window_s": 5},
        "max_rate_per_s",
        id="rate",
    ),
    pytest.param({"kind": "discrete", "name": "s", "tag": "t", "states": []}, "states", id="states"),
    pytest.param({"kind": "stale", "name": "s", "tag": "t", "after_s": 0}, "after_s", id="stale"),
    pytest.param({"kind": "stale", "name": "s", "tag": "t"}, "after_s", id="stale-missing"),
    pytest.param({"kind": "expression", "name": "e", "expression": "open('f')"}, "expression", id="call"),
    pytest.param({"kind": "expression", "name": "e", "expression": "a.b > 1"}, "expression", id="attribute"),
    pytest.param({"kind": "expression", "name": "e", "expression": "a[0] > 1"}, "expression", id="subscript"),
    pytest.param({"kind": "expression", "name": "e", "expression": "[x for x in a]"}, "expression", id="comprehension"),
    pytest.param({"kind": "expression", "name": "e", "expression": "lambda: 1"}, "expression", id="lambda"),
    pytest.param({"kind": "expression", "name": "e", "expression": "a > None"}, "expression", id="none-constant"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "field"), BAD)
def test_a_bad_definition_names_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ALARM.validate_python(data)
    errors = caught.value.errors()
    named = {str(part) for error in errors for part in error["loc"]}
    # The field in the error's location, or (for faults between fields) in its message.
    assert field in named or any(field in error["msg"] for error in errors), caught.value


def test_expression_errors_say_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match="uses Call: only arithmetic"):
        ALARM.validate_python({"kind": "expression", "name": "e", "expression": "f(x)"})


def test_unknown_placeholders_are_listed_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"\{threshold\}; use \{asset\}, \{limit\}"):
        ALARM.validate_python(_limit(message="{value} over {threshold}"))
