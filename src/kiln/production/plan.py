"""Which assets the production engine follows, and through which tags: the asset types' state
models (`production.types`, inherited down the type tree) applied to the plant's assets.

Compiling refuses a model that names a tag its type does not have, or matches state names the
state tag does not define, with the asset type, the field and what would be valid, so a typo in
the plant file stops the start instead of leaving a machine "unknown" forever.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kiln.core.expressions import expression_names
from kiln.model import AssetDef, AssetTypeDef, DataType, Level, TagDef, resolve_tags
from kiln.production.taxonomy import (
    REASON_SEPARATOR,
    Category,
    StateModel,
    StateRule,
    reason_categories,
    reason_paths,
)

# Signals: what the engine records per asset, each a series of samples in the store.
STATE = "state"
REASON = "reason"
GOOD = "good"
SCRAP = "scrap"
TOTAL = "total"
IDEAL_CYCLE = "ideal_cycle"
CONDITION_PREFIX = "c:"  # a tag a `when` condition reads: "c:<tag name>"


class PlanError(ValueError):
    """A state model that does not fit its asset type."""


@dataclass(frozen=True, slots=True)
class StateMapping:
    """(state code, reason code) -> (category, reason path or None), by the model's rules."""

    model: StateModel
    state_names: Mapping[int, str] = field(default_factory=dict)
    reason_names: Mapping[int, str] = field(default_factory=dict)

    def __call__(self, state: float, reason: float) -> tuple[Category, str | None]:
        """The first state rule that matches (`when` rules are the engine's, not this)."""
        if _code(state) is None:
            return Category.UNKNOWN, None
        for rule in self.model.rules:
            if rule.when is None:
                category, path = self.single(rule, state, reason)
                if category is not None:
                    return category, path
        return self.model.default, self._reason_of(_code(reason))

    def single(
        self, rule: StateRule, state: float, reason: float
    ) -> tuple[Category | None, str | None]:
        """(category, reason path) if this state rule matches, else (None, None)."""
        code, reason_code = _code(state), _code(reason)
        if code is None:
            return None, None
        if rule.state is not None and not _matches(rule.state, code, self.state_names):
            return None, None
        if rule.stop_reason is not None and (
            reason_code is None or not _matches(rule.stop_reason, reason_code, self.reason_names)
        ):
            return None, None
        return rule.category, rule.reason or self._reason_of(reason_code)

    def _reason_of(self, code: int | None) -> str | None:
        """The reason tag's value as a reason path: the tree node named like it, else its name."""
        if code is None:
            return None
        name = self.reason_names.get(code)
        if name is None or name == "none":
            return None if code == 0 else str(code)
        for path in reason_paths(self.model.reasons):
            if path == name or path.endswith(REASON_SEPARATOR + name):
                return path
        return name


def _code(value: float) -> int | None:
    """A state code, if the value is one (an integer); else None (unknown)."""
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _matches(want: str | int, code: int, names: Mapping[int, str]) -> bool:
    if isinstance(want, int):
        return want == code
    return names.get(code, str(code)) == want


@dataclass(frozen=True, slots=True)
class AssetPlan:
    """One followed asset: its model, and the tag path of each signal."""

    asset: str
    type_name: str
    model: StateModel
    signals: Mapping[str, str]  # signal -> tag path
    mapping: StateMapping
    conditions: Mapping[str, str] = field(default_factory=dict)  # tag name -> path
    condition_states: Mapping[str, Mapping[int, str]] = field(default_factory=dict)  # by path

    line: str = ""  # the nearest ancestor at ISA-95 level line (else the parent)

    def reason_category(self, reason: str) -> Category | None:
        return reason_categories(self.model.reasons).get(reason)


def model_for(
    type_name: str, types: Mapping[str, AssetTypeDef], models: Mapping[str, StateModel]
) -> StateModel | None:
    """The state model of a type: its own, else its nearest ancestor's."""
    name: str | None = type_name
    seen: set[str] = set()
    while name is not None and name not in seen:
        seen.add(name)
        if name in models:
            return models[name]
        parent = types.get(name)
        name = parent.parent if parent is not None else None
    return None


def compile_plans(
    types: Sequence[AssetTypeDef],
    assets: Sequence[AssetDef],
    models: Mapping[str, StateModel],
) -> list[AssetPlan]:
    """A plan per asset whose type (or an ancestor type) has a state model."""
    by_name = {t.name: t for t in types}
    unknown = sorted(set(models) - set(by_name))
    if unknown:
        raise PlanError(
            f"production.types names asset type(s) {', '.join(unknown)} that the plant does "
            f"not define; defined: {', '.join(sorted(by_name)) or 'none'}"
        )
    levels = {a.path: a.level for a in assets}
    checked: dict[str, None] = {}
    plans: list[AssetPlan] = []
    for asset in assets:
        if asset.type is None:
            continue
        model = model_for(asset.type, by_name, models)
        if model is None:
            continue
        tags = {t.name: t for t in resolve_tags(asset.type, by_name)}
        if asset.type not in checked:
            _check(asset.type, model, tags)
            checked[asset.type] = None
        plans.append(_plan(asset, model, tags, _line_of(asset.path, levels)))
    return plans


def _check(type_name: str, model: StateModel, tags: Mapping[str, TagDef]) -> None:
    where = f"production.types: the state model of asset type {type_name!r}"

    def need(field_name: str, tag: str | None) -> None:
        if tag is not None and tag not in tags:
            raise PlanError(
                f"{where}: {field_name} {tag!r} is not a tag of the type; its tags: "
                + ", ".join(sorted(tags))
            )

    need("state_tag", model.state_tag)
    need("reason_tag", model.reason_tag)
    for name in ("good", "scrap", "total"):
        counter = getattr(model, name)
        need(name, counter.tag if counter is not None else None)
    need("ideal_cycle_tag", model.ideal_cycle_tag)
    for i, rule in enumerate(model.rules):
        for ref in expression_names(rule.when) if rule.when else ():
            need(f"rule {i + 1} (when)", ref)
        _check_names(where, i, rule, model, tags)


def _check_names(
    where: str, i: int, rule: StateRule, model: StateModel, tags: Mapping[str, TagDef]
) -> None:
    for value, tag_name in ((rule.state, model.state_tag), (rule.stop_reason, model.reason_tag)):
        if not isinstance(value, str) or tag_name is None:
            continue
        tag = tags[tag_name]
        names = set((tag.states or {}).values())
        if tag.data_type is DataType.STATE and value not in names:
            raise PlanError(
                f"{where}: rule {i + 1} matches {value!r}, which tag {tag_name!r} does not "
                f"define; its states: {', '.join(sorted(names))}"
            )


def _line_of(path: str, levels: Mapping[str, Level]) -> str:
    parts = path.split("/")
    for n in range(len(parts) - 1, 0, -1):
        ancestor = "/".join(parts[:n])
        if levels.get(ancestor) is Level.LINE:
            return ancestor
    return "/".join(parts[:-1])


def _plan(asset: AssetDef, model: StateModel, tags: Mapping[str, TagDef], line: str) -> AssetPlan:
    def path(tag: str) -> str:
        return f"{asset.path}/{tag}"

    signals: dict[str, str] = {}
    if model.state_tag:
        signals[STATE] = path(model.state_tag)
    if model.reason_tag:
        signals[REASON] = path(model.reason_tag)
    for name in (GOOD, SCRAP, TOTAL):
        counter = getattr(model, name)
        if counter is not None:
            signals[name] = path(counter.tag)
    if model.ideal_cycle_tag:
        signals[IDEAL_CYCLE] = path(model.ideal_cycle_tag)
    conditions = {
        ref: path(ref) for rule in model.rules if rule.when for ref in expression_names(rule.when)
    }
    for ref, p in conditions.items():
        signals[CONDITION_PREFIX + ref] = p
    state_tag = tags.get(model.state_tag or "")
    reason_tag = tags.get(model.reason_tag or "")
    mapping = StateMapping(
        model,
        dict(state_tag.states or {}) if state_tag else {},
        dict(reason_tag.states or {}) if reason_tag else {},
    )
    condition_states = {
        p: dict(tags[ref].states or {}) for ref, p in conditions.items() if tags[ref].states
    }
    assert asset.type is not None
    return AssetPlan(
        asset.path, asset.type, model, signals, mapping, conditions, condition_states, line
    )
