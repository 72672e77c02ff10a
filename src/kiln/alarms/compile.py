"""Compiling alarm definitions into the alarms that are evaluated (`AlarmSpec`s).

A definition is written once, on an asset type, an asset, a tag (the plant file's
`alarms.definitions`) or through the API, and names its tags the way users think of them
(`spindle_temp`). Compiling places every definition on its asset, applies the overrides in a
fixed order and resolves every name to a full tag path, so that evaluation never has to look
anything up again. Everything wrong is found here, at load time, with the asset, the alarm and
the field named: a typo in a tag name is a configuration error, not an alarm that never fires.

Order of overrides per asset, each replacing an alarm of the same name: the asset type's chain
(root type first, a child type replacing its parent's), the asset's own `alarms`, minus
`alarms_off`, then tag alarms on the asset's tags, then alarms added through the API.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kiln.alarms.definitions import (
    AlarmDef,
    DeviationAlarm,
    DiscreteAlarm,
    ExpressionAlarm,
    LimitAlarm,
    Priority,
)
from kiln.alarms.records import AlarmSpec, Condition
from kiln.core.expressions import expression_names
from kiln.model import AssetDef, AssetTypeDef, TagDef, resolve_tags

_LIMITS: tuple[Condition, ...] = ("hihi", "hi", "lo", "lolo")


class AlarmConfigError(ValueError):
    """A definition that cannot be compiled; the message names the asset, the alarm and the
    field, then what is wrong and how to put it right."""

    def __init__(self, asset: str, alarm: str, field: str, problem: str) -> None:
        self.asset, self.alarm, self.field = asset, alarm, field
        super().__init__(f"asset {asset!r}, alarm {alarm!r}, field {field!r}: {problem}")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


class _Asset:
    """What compiling knows of one asset: its tags by name (None: untyped, any name goes)."""

    def __init__(self, path: str, tags: dict[str, TagDef] | None) -> None:
        self.path = path
        self.tags = tags


def compile_alarms(
    types: Sequence[AssetTypeDef],
    assets: Sequence[AssetDef],
    tag_alarms: Sequence[AlarmDef] = (),
    extra: Sequence[tuple[str, AlarmDef]] = (),
) -> list[AlarmSpec]:
    """Every alarm of the plant, one `AlarmSpec` per condition; raises AlarmConfigError.

    `tag_alarms` are `alarms.definitions`: their tag references are full paths and their
    asset is the tag's parent path. `extra` are (asset path, definition) pairs added through
    the API; the asset need not be declared.
    """
    by_type = {t.name: t for t in types}
    known: dict[str, _Asset] = {}
    tag_defs: dict[str, TagDef] = {}  # full path -> definition, for every tag of a typed asset
    placed: dict[str, dict[str, AlarmDef]] = {}
    for asset in assets:
        alarms: dict[str, AlarmDef] = {}
        if asset.type is None:
            known[asset.path] = _Asset(asset.path, None)
        else:
            try:
                tags = resolve_tags(asset.type, by_type)
            except ValueError as exc:
                raise AlarmConfigError(asset.path, "-", "type", str(exc)) from None
            known[asset.path] = _Asset(asset.path, {t.name: t for t in tags})
            tag_defs.update({f"{asset.path}/{t.name}": t for t in tags})
            alarms = _type_alarms(asset.type, by_type)
        alarms.update({a.name: a for a in asset.alarms})
        for name in asset.alarms_off:
            if name not in alarms:
                have = ", ".join(sorted(alarms)) or "none"
                raise AlarmConfigError(
                    asset.path,
                    name,
                    "alarms_off",
                    f"no alarm named {name!r} to turn off (its alarms: {have})",
                )
            del alarms[name]
        placed[asset.path] = alarms
    for alarm in tag_alarms:
        paths = _tag_refs(alarm)
        for field, ref in paths:
            if "/" not in ref:
                raise AlarmConfigError(
                    "-",
                    alarm.name,
                    field,
                    f"{ref!r} is a bare name: alarms.definitions name tags by full path "
                    "(e.g. acme/plant1/line1/mill/spindle_temp); put alarms on an asset or "
                    "asset type to use names",
                )
        if not paths:
            raise AlarmConfigError(
                "-",
                alarm.name,
                "kind",
                "an expression alarm names tags, which cannot be paths: define it on the "
                "asset or its type (the asset's `alarms`)",
            )
        placed.setdefault(_parent(paths[0][1]), {})[alarm.name] = alarm
    for path, alarm in extra:
        placed.setdefault(path, {})[alarm.name] = alarm
    specs: list[AlarmSpec] = []
    for path, alarms in placed.items():
        where = known.get(path) or _Asset(path, None)
        for alarm in alarms.values():
            specs.extend(_specs(where, alarm, tag_defs))
    return specs


def _type_alarms(type_name: str, by_type: dict[str, AssetTypeDef]) -> dict[str, AlarmDef]:
    """A type's alarms with its ancestors', a child's replacing a parent's by name (the chain
    was checked for unknown types and cycles by `resolve_tags`)."""
    chain: list[AssetTypeDef] = []
    name: str | None = type_name
    while name is not None:
        chain.append(by_type[name])
        name = by_type[name].parent
    merged: dict[str, AlarmDef] = {}
    for t in reversed(chain):
        merged.update({a.name: a for a in t.alarms})
    return merged


def _tag_refs(alarm: AlarmDef) -> list[tuple[str, str]]:
    """(field, reference) of every tag an alarm is on or compares with, not its condition
    expressions: the tag first."""
    if isinstance(alarm, ExpressionAlarm):
        return []
    refs = [("tag", alarm.tag)]
    if isinstance(alarm, LimitAlarm):
        for kind in _LIMITS:
            lim = getattr(alarm, kind)
            if lim is not None and isinstance(lim.value, str):
                refs.append((f"{kind}.value", lim.value))
    elif isinstance(alarm, DeviationAlarm):
        refs.append(("setpoint", alarm.setpoint))
    return refs


def referenced_paths(asset: str, definition: AlarmDef) -> list[str]:
    """The full path of every tag a definition on `asset` reads, in order of first mention:
    its tag, limit values and set-point that are tags, and the names in its expression and
    `suppress_when`. Bare names resolve under `asset` as compiling resolves them; nothing is
    checked against a type, so the API can decide who may read them before the engine
    compiles."""
    refs = [ref for _, ref in _tag_refs(definition)]
    if isinstance(definition, ExpressionAlarm):
        refs.extend(expression_names(definition.expression))
    if definition.suppress_when is not None:
        refs.extend(expression_names(definition.suppress_when))
    paths = (ref if "/" in ref else f"{asset}/{ref}" for ref in refs)
    return list(dict.fromkeys(paths))


def _specs(asset: _Asset, alarm: AlarmDef, tag_defs: dict[str, TagDef]) -> Iterator[AlarmSpec]:
    """The alarms one definition makes on one asset."""

    def resolve(field: str, ref: str) -> str:
        if "/" in ref:
            return ref
        if asset.tags is not None and ref not in asset.tags:
            have = ", ".join(sorted(asset.tags)) or "none"
            raise AlarmConfigError(
                asset.path,
                alarm.name,
                field,
                f"tag {ref!r} is not a tag of the asset's type (its tags: {have})",
            )
        return f"{asset.path}/{ref}"

    tags: dict[str, str] = {}
    for field, ref in _tag_refs(alarm):
        tags[ref] = resolve(field, ref)
    if isinstance(alarm, ExpressionAlarm):
        for name in expression_names(alarm.expression):
            tags[name] = resolve("expression", name)
    if alarm.suppress_when is not None:
        for name in expression_names(alarm.suppress_when):
            tags[name] = resolve("suppress_when", name)
    states = {p: dict(d.states) for p in tags.values() if (d := tag_defs.get(p)) and d.states}
    tag = None if isinstance(alarm, ExpressionAlarm) else tags[alarm.tag]
    if isinstance(alarm, DiscreteAlarm):
        _check_states(asset.path, alarm, states.get(tags[alarm.tag]))
    base = f"{asset.path}/{alarm.name}"

    def spec(condition: Condition, priority: Priority, suffix: bool) -> AlarmSpec:
        return AlarmSpec(
            id=f"{base}:{condition}" if suffix else base,
            asset=asset.path,
            name=alarm.name,
            condition=condition,
            priority=priority,
            definition=alarm,
            tag=tag,
            tags=tags,
            states=states,
        )

    if isinstance(alarm, LimitAlarm):
        for kind in _LIMITS:
            lim = getattr(alarm, kind)
            if lim is not None:
                yield spec(kind, lim.priority or alarm.priority, True)
    elif isinstance(alarm, DeviationAlarm):
        if alarm.high is not None:
            yield spec("deviation_high", alarm.priority, True)
        if alarm.low is not None:
            yield spec("deviation_low", alarm.priority, True)
    else:
        yield spec(alarm.kind, alarm.priority, False)


def _check_states(asset: str, alarm: DiscreteAlarm, names: dict[int, str] | None) -> None:
    """State names of a discrete alarm must be names the tag's states give."""
    if names is None:
        return
    for state in alarm.states:
        if isinstance(state, str) and state not in names.values():
            have = ", ".join(f"{k}: {v}" for k, v in sorted(names.items()))
            raise AlarmConfigError(
                asset,
                alarm.name,
                "states",
                f"{state!r} is not a state of tag {alarm.tag!r} (its states: {have})",
            )


__all__ = ["AlarmConfigError", "compile_alarms", "expression_names", "referenced_paths"]
