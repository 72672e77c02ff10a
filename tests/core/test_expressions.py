"""The restricted expression language shared by alarms and production: what it accepts, the
names it reads, and how `Condition` evaluates it over tags' latest values."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from kiln.alarms import definitions as alarm_definitions
from kiln.alarms.compile import expression_names as alarm_expression_names
from kiln.core.expressions import Condition, Expression, check_expression, expression_names

TAGS = {"speed": "a/m/speed", "fault": "a/m/fault", "state": "a/m/state", "temp": "a/m/temp"}
STATES = {"a/m/state": {1: "running", 2: "fault"}}


def _cond(text: str) -> Condition:
    return Condition(check_expression(text), TAGS, STATES)


@pytest.mark.parametrize(
    "text",
    ["speed > 0 and not fault", "state == 'running'", "(temp - 32) * 5 / 9 >= 80", "-speed < 1"],
)
def test_allowed_expressions_pass_unchanged(text: str) -> None:
    assert check_expression(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("speed >", "does not parse"),
        ("__import__('os')", "uses Call"),
        ("speed.real > 0", "uses Attribute"),
        ("temps[0] > 1", "uses Subscript"),
        ("[x for x in speed]", "uses ListComp"),
        ("speed == None", "has constant None"),
    ],
)
def test_anything_else_is_refused_saying_what(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_expression(text)


def test_expression_type_validates_in_pydantic_models() -> None:
    class Rule(BaseModel):
        when: Expression

    assert Rule(when="speed > 0").when == "speed > 0"
    with pytest.raises(ValidationError, match="uses Call"):
        Rule(when="open('x')")


def test_names_each_once_in_a_fixed_order() -> None:
    names = expression_names("speed > 0 and not fault or speed < temp")
    assert sorted(names) == ["fault", "speed", "temp"]
    assert names == expression_names("speed > 0 and not fault or speed < temp")
    assert expression_names("1 + 2 > 0") == []


def test_alarm_modules_re_export_the_same_objects() -> None:
    assert alarm_definitions.check_expression is check_expression
    assert alarm_definitions.Expression is Expression
    assert alarm_expression_names is expression_names


def test_condition_reads_latest_values_by_path() -> None:
    cond = _cond("speed > 0 and not fault")
    assert cond.paths == frozenset({"a/m/speed", "a/m/fault"})
    assert cond.evaluate({"a/m/speed": (12.0, False), "a/m/fault": (False, False)}) is True
    assert cond.evaluate({"a/m/speed": (12.0, False), "a/m/fault": (True, False)}) is False
    assert cond.evaluate({"a/m/speed": (0, False), "a/m/fault": (0, False)}) is False


def test_condition_is_unknown_without_a_value_or_with_a_bad_one() -> None:
    cond = _cond("speed > 0")
    assert cond.evaluate({}) is None
    assert cond.evaluate({"a/m/speed": (5.0, True)}) is None  # Bad quality


@pytest.mark.parametrize(
    ("text", "latest", "expected"),
    [
        ("speed / temp > 1", {"a/m/speed": (1.0, False), "a/m/temp": (0.0, False)}, None),
        ("speed + 1 > 0", {"a/m/speed": ("high", False)}, None),  # no arithmetic on text
        ("speed ** 1000 > 0", {"a/m/speed": (10.0, False)}, None),  # overflow, not a big int
        ("0 < speed < 10", {"a/m/speed": (5.0, False)}, True),
        ("0 < speed < 10", {"a/m/speed": (15.0, False)}, False),
    ],
)
def test_condition_values(
    text: str, latest: dict[str, tuple[object, bool]], expected: object
) -> None:
    assert _cond(text).evaluate(latest) is expected  # type: ignore[arg-type]


def test_state_tags_compare_by_name_with_text_and_by_code_with_numbers() -> None:
    running = {"a/m/state": (1, False)}
    assert _cond("state == 'running'").evaluate(running) is True
    assert _cond("state == 'fault'").evaluate(running) is False
    assert _cond("state == 1").evaluate(running) is True
    assert _cond("state == 'running'").evaluate({"a/m/state": (1.0, False)}) is True
    # A code without a name stays a number: it equals no text.
    assert _cond("state == 'running'").evaluate({"a/m/state": (7, False)}) is False


def test_a_name_not_in_the_tag_map_is_an_error_at_construction() -> None:
    with pytest.raises(KeyError):
        Condition("nosuch > 1", TAGS, STATES)
