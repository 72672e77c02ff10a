"""What a machine's time is spent on: the state categories, the reason trees, and the rules that
map a machine's tags to them. Pure configuration models, shared by the engine, the API and the
virtual factory.

Every instant of a machine's time falls in one **category**; each category is charged to one
element of the ISO 22400-2 time model (`kiln.production.oee`):

    category              ISO 22400-2 element                     availability
    running               actual production time APT              (the numerator)
    setup                 actual unit setup time AUST             loss
    technical, material,  actual unit delay time ADET             loss
    operator, quality,
    micro_stop
    planning              actual unit down time ADOT              loss (available, no order)
    unknown               unaccounted (in PBT, in no element)     loss, shown as "no reason"
    planned_stop          planned down time PDOT                  not a loss
    planned_maintenance   PDOT, and its planned-maintenance part  not a loss
    blocked, starved      not charged (taken out of PBT)          not a loss of this machine

Blocked (the next machine cannot take) and starved (the previous one delivers nothing) are
caused elsewhere on the line: charging them to this machine would blame it twice for its
neighbour's stop. That follows PackML's and UMH's practice; ISO 22400-2 has no element for it,
so Kiln keeps the time as its own element (`not_charged_time`) and says so.

A **reason** is a path in the asset type's reason tree, e.g. `mechanical/jam`; its category is
the one given on the nearest node up the path. An unplanned stop shorter than the asset type's
`micro_stop_s` counts as `micro_stop`, whatever its reason: nobody enters reasons for those.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.core.expressions import check_expression

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"
REASON_SEPARATOR = "/"


class Category(StrEnum):
    RUNNING = "running"
    SETUP = "setup"
    PLANNED_STOP = "planned_stop"
    PLANNED_MAINTENANCE = "planned_maintenance"
    TECHNICAL = "technical"
    MATERIAL = "material"
    OPERATOR = "operator"
    QUALITY = "quality"
    PLANNING = "planning"
    MICRO_STOP = "micro_stop"
    BLOCKED = "blocked"
    STARVED = "starved"
    UNKNOWN = "unknown"


# Stored codes of the categories (state intervals keep a small integer): append, never reorder.
CATEGORY_CODES: dict[Category, int] = {c: i for i, c in enumerate(Category)}
CATEGORY_BY_CODE: tuple[Category, ...] = tuple(Category)


class Element(StrEnum):
    """Where a category's time goes in the ISO 22400-2 time model."""

    APT = "actual_production_time"
    AUST = "actual_unit_setup_time"
    ADET = "actual_unit_delay_time"
    ADOT = "actual_unit_down_time"
    UNACCOUNTED = "unaccounted"
    PDOT = "planned_down_time"
    PLANNED_MAINTENANCE = "planned_maintenance_time"  # also part of PDOT
    NOT_CHARGED = "not_charged_time"


ELEMENT: dict[Category, Element] = {
    Category.RUNNING: Element.APT,
    Category.SETUP: Element.AUST,
    Category.TECHNICAL: Element.ADET,
    Category.MATERIAL: Element.ADET,
    Category.OPERATOR: Element.ADET,
    Category.QUALITY: Element.ADET,
    Category.MICRO_STOP: Element.ADET,
    Category.PLANNING: Element.ADOT,
    Category.UNKNOWN: Element.UNACCOUNTED,
    Category.PLANNED_STOP: Element.PDOT,
    Category.PLANNED_MAINTENANCE: Element.PLANNED_MAINTENANCE,
    Category.BLOCKED: Element.NOT_CHARGED,
    Category.STARVED: Element.NOT_CHARGED,
}

# The unplanned stops: these have reasons people enter, and may be micro-stops.
UNPLANNED = frozenset(
    {
        Category.TECHNICAL,
        Category.MATERIAL,
        Category.OPERATOR,
        Category.QUALITY,
        Category.PLANNING,
        Category.UNKNOWN,
    }
)
# A stop whose time counts against the machine (an availability loss): Pareto, MTBF, MTTR.
LOSSES = frozenset(
    c
    for c, e in ELEMENT.items()
    if e in (Element.AUST, Element.ADET, Element.ADOT, Element.UNACCOUNTED)
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReasonDef(_Frozen):
    """A node of a reason tree. `category` is inherited by children that give none."""

    name: str = Field(pattern=_NAME)
    category: Category | None = None
    description: str = ""
    children: tuple[ReasonDef, ...] = ()

    @field_validator("children")
    @classmethod
    def _unique(cls, children: tuple[ReasonDef, ...]) -> tuple[ReasonDef, ...]:
        _check_unique(children)
        return children


def _check_unique(nodes: tuple[ReasonDef, ...]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise ValueError(f"reason {node.name!r} appears twice under the same parent")
        seen.add(node.name)


class StateRule(_Frozen):
    """One mapping rule: if it matches, the machine is in `category`, with `reason` if given.

    A rule matches on the state tag's value (`state`: a name of the tag's states or a code),
    optionally also on the reason tag's (`stop_reason`), or on a condition over the asset's
    tags (`when`, e.g. `spindle_speed > 0 and not fault`). Rules are tried in order; the first
    that matches wins.
    """

    state: str | int | None = Field(default=None, description="a state name or code to match")
    stop_reason: str | int | None = Field(
        default=None, description="a value of the reason tag to match as well"
    )
    when: str | None = Field(default=None, description="a condition over the asset's tags")
    category: Category
    reason: str | None = Field(
        default=None, description="the reason path this rule records, e.g. mechanical/jam"
    )

    @field_validator("when")
    @classmethod
    def _when(cls, text: str | None) -> str | None:
        return None if text is None else check_expression(text)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.when is not None and (self.state is not None or self.stop_reason is not None):
            raise ValueError("a rule matches either `when` or `state`/`stop_reason`, not both")
        if self.when is None and self.state is None and self.stop_reason is None:
            raise ValueError("a rule needs `state`, `stop_reason` or `when` to match on")
        return self


class CounterDef(_Frozen):
    """A counter tag: only its increases count. A drop is a reset to zero, or with `rollover`
    (e.g. 65536 for a 16-bit counter) a wrap when the drop exceeds half the range."""

    tag: str = Field(pattern=_NAME)
    rollover: int | None = Field(default=None, gt=1)


class StateModel(_Frozen):
    """How one asset type's tags become states, reasons and counts (`production.types`)."""

    state_tag: str | None = Field(default=None, pattern=_NAME)
    reason_tag: str | None = Field(default=None, pattern=_NAME)
    rules: tuple[StateRule, ...] = ()
    default: Category = Field(
        default=Category.UNKNOWN, description="the category when no rule matches"
    )
    reasons: tuple[ReasonDef, ...] = ()
    micro_stop_s: float = Field(
        default=0.0, ge=0.0, description="unplanned stops shorter than this are micro-stops"
    )
    good: CounterDef | None = None
    scrap: CounterDef | None = None
    total: CounterDef | None = Field(
        default=None, description="produced (good + scrap) when there is no good counter"
    )
    count_events: bool = Field(
        default=False,
        description="good and scrap also come as count events (POST /api/v1/production/counts)",
    )
    ideal_cycle_s: float | None = Field(
        default=None, gt=0, description="ideal cycle time when no product gives one"
    )
    ideal_cycle_tag: str | None = Field(
        default=None, pattern=_NAME, description="a tag holding the ideal cycle time, in s"
    )

    @field_validator("reasons")
    @classmethod
    def _unique_roots(cls, reasons: tuple[ReasonDef, ...]) -> tuple[ReasonDef, ...]:
        _check_unique(reasons)
        return reasons

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        needs_state = any(r.state is not None for r in self.rules)
        if needs_state and self.state_tag is None:
            raise ValueError("rules match on `state` but no `state_tag` is given")
        if any(r.stop_reason is not None for r in self.rules) and self.reason_tag is None:
            raise ValueError("rules match on `stop_reason` but no `reason_tag` is given")
        if self.good is None and self.total is None and self.scrap is not None:
            raise ValueError("a scrap counter needs a good or a total counter beside it")
        known = set(reason_paths(self.reasons))
        for rule in self.rules:
            if rule.reason is not None and known and rule.reason not in known:
                raise ValueError(
                    f"rule reason {rule.reason!r} is not in the reason tree; known: "
                    + ", ".join(sorted(known))
                )
        return self

    def category_of(self, reason: str) -> Category | None:
        """The category a reason path carries (its nearest node's up the path)."""
        return reason_categories(self.reasons).get(reason)


def _walk(
    nodes: tuple[ReasonDef, ...], prefix: str, inherited: Category | None
) -> Iterator[tuple[str, Category | None]]:
    for node in nodes:
        path = f"{prefix}{node.name}"
        category = node.category or inherited
        yield path, category
        yield from _walk(node.children, path + REASON_SEPARATOR, category)


def reason_paths(reasons: tuple[ReasonDef, ...]) -> list[str]:
    """Every node's path, parents before children."""
    return [path for path, _ in _walk(reasons, "", None)]


def reason_categories(reasons: tuple[ReasonDef, ...]) -> dict[str, Category]:
    """Path -> category, for the nodes that have one (given or inherited)."""
    return {path: cat for path, cat in _walk(reasons, "", None) if cat is not None}


ReasonDef.model_rebuild()
