"""Alarm definitions as users write them on tags and asset types: pure, validated values.

Pydantic models, frozen and rejecting unknown fields like `kiln.model.definitions`; a bad
definition fails with the field named in the error. One model per kind of alarm, told apart by
`kind`; `AlarmDef` is the union to validate against. Tags are referred to by their name within
the asset (`spindle_temp`) or by a full path (`acme/plant1/line1/mill/spindle_temp`).
"""

from __future__ import annotations

import itertools
import re
import string
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Re-exported: the expression language lives in the kernel, alarms and production share it.
from kiln.core.expressions import Expression as Expression
from kiln.core.expressions import check_expression as check_expression
from kiln.core.values import validate_path

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")

PLACEHOLDERS = frozenset({"value", "limit", "tag", "asset"})


class Priority(StrEnum):
    """Alarm priorities, lowest first: few distinct levels, as alarm philosophies use."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def check_tag_ref(ref: str) -> str:
    """A tag's name within its asset, or a full tag path."""
    if "/" in ref:
        return validate_path(ref)
    if not _NAME.fullmatch(ref):
        raise ValueError(
            f"tag {ref!r} is neither a tag name (1-64 letters, digits, '_', '-', '.') nor a "
            "path such as acme/plant1/line1/mill/spindle_temp"
        )
    return ref


def check_message(template: str) -> str:
    """Return `template` if its placeholders are all known, else raise ValueError naming them."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"message template {template!r} is malformed: {exc}") from None
    unknown = sorted({name for name in fields if name not in PLACEHOLDERS})
    if unknown:
        known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
        shown = ", ".join("{" + u + "}" for u in unknown)
        raise ValueError(f"message template has unknown placeholder(s) {shown}; use {known}")
    return template


TagRef = Annotated[str, AfterValidator(check_tag_ref)]
MessageTemplate = Annotated[str, AfterValidator(check_message)]
Seconds = Annotated[float, Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _AlarmBase(_Frozen):
    name: str = Field(pattern=f"^{_NAME.pattern}$", description="unique among the asset's alarms")
    priority: Priority = Priority.MEDIUM
    on_delay_s: Seconds = Field(default=0.0, description="abnormal this long before it activates")
    off_delay_s: Seconds = Field(default=0.0, description="normal this long before it clears")
    realarm_s: float | None = Field(
        default=None, gt=0, description="announce again if still active after this long"
    )
    message: MessageTemplate = Field(
        default="{asset} {tag}: {value}", description="placeholders {value} {limit} {tag} {asset}"
    )
    latching: bool = Field(default=False, description="stays shown until reset after clearing")
    suppress_when: Expression | None = Field(
        default=None, description="suppressed by design while this expression is true"
    )


class LimitDef(_Frozen):
    """One limit: a number, or the tag whose value is the limit; its deadband clears it."""

    value: float | TagRef
    deadband: float = Field(default=0.0, ge=0)
    priority: Priority | None = Field(default=None, description="this limit's, else the alarm's")


class LimitAlarm(_AlarmBase):
    kind: Literal["limit"] = "limit"
    tag: TagRef
    hihi: LimitDef | None = None
    hi: LimitDef | None = None
    lo: LimitDef | None = None
    lolo: LimitDef | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = [
            (name, lim)
            for name, lim in (
                ("lolo", self.lolo),
                ("lo", self.lo),
                ("hi", self.hi),
                ("hihi", self.hihi),
            )
            if lim is not None
        ]
        if not given:
            raise ValueError("a limit alarm needs at least one of hihi, hi, lo, lolo")
        numbers = [(name, lim.value) for name, lim in given if isinstance(lim.value, float)]
        for (low_name, low), (high_name, high) in itertools.pairwise(numbers):
            if low >= high:
                raise ValueError(
                    f"{low_name}={low:g} must be below {high_name}={high:g}: "
                    "limits go lolo < lo < hi < hihi"
                )
        return self


class DeviationAlarm(_AlarmBase):
    """Active while the tag is further than `high` above or `low` below its set-point tag."""

    kind: Literal["deviation"] = "deviation"
    tag: TagRef
    setpoint: TagRef
    high: float | None = Field(default=None, gt=0)
    low: float | None = Field(default=None, gt=0)
    deadband: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.high is None and self.low is None:
            raise ValueError("a deviation alarm needs high, low or both")
        return self


class RateOfChangeAlarm(_AlarmBase):
    """Active while the tag changes faster than `max_rate_per_s` (either way) over `window_s`."""

    kind: Literal["rate_of_change"] = "rate_of_change"
    tag: TagRef
    max_rate_per_s: float = Field(gt=0)
    window_s: float = Field(gt=0)


class DiscreteAlarm(_AlarmBase):
    """Active while the tag's value is one of `states` (names of a state tag, or values)."""

    kind: Literal["discrete"] = "discrete"
    tag: TagRef
    states: tuple[str | int, ...] = Field(min_length=1)


class BadQualityAlarm(_AlarmBase):
    kind: Literal["bad_quality"] = "bad_quality"
    tag: TagRef


class StaleAlarm(_AlarmBase):
    kind: Literal["stale"] = "stale"
    tag: TagRef
    after_s: float = Field(gt=0, description="no new value for this long")


class ExpressionAlarm(_AlarmBase):
    """Active while an expression over the asset's tag names is true."""

    kind: Literal["expression"] = "expression"
    expression: Expression


AlarmDef = Annotated[
    LimitAlarm
    | DeviationAlarm
    | RateOfChangeAlarm
    | DiscreteAlarm
    | BadQualityAlarm
    | StaleAlarm
    | ExpressionAlarm,
    Field(discriminator="kind"),
]
