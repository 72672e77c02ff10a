"""Evaluating compiled alarms: values in, `ConditionChange`s out, on source time.

The numeric conditions (HiHi/Hi/Lo/LoLo limits, deviation, rate of change, bad quality and
stale) run in `AlarmDetector`s keyed by tag, so a wide batch of quiet values stays a few NumPy
operations. A deviation is two limits that follow the set-point: `deviation_high` is a Hi limit
at set-point + high, `deviation_low` a Lo limit at set-point - low, each with the deadband; a
limit given as a tag follows that tag's latest value the same way. Two definitions wanting the
same (tag, limit kind) go into separate detectors ("layers"), so neither is dropped.

Discrete states, expressions and suppression conditions are walked point by point, in source
time order, through the detector's own gates (`step_gate`), so their delays and re-alarm behave
exactly like the limits'. A batch that holds values of tags some limit follows is cut at each
such value: the detector sees the points before it with the old limit and the points from it on
with the new one, which is why splitting a series into batches does not change the result.

Expressions are never `eval()`ed: `kiln.core.expressions.check_expression` restricted the syntax
to arithmetic, comparisons, boolean logic, names and constants, and its `Condition` walks that
tree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kiln.alarms.definitions import (
    AlarmDef,
    BadQualityAlarm,
    DeviationAlarm,
    DiscreteAlarm,
    ExpressionAlarm,
    LimitAlarm,
    RateOfChangeAlarm,
    StaleAlarm,
)
from kiln.alarms.detect import (
    LIMIT_KINDS,
    AlarmDetector,
    AlarmKind,
    Emit,
    Event,
    GateState,
    LimitKind,
    LimitRule,
    RateRule,
    TagRules,
    Timing,
    Transition,
    fire_gate,
    step_gate,
)
from kiln.alarms.records import AlarmSpec, ConditionChange
from kiln.core.expressions import Condition as _Condition
from kiln.core.expressions import Value, state_code
from kiln.core.values import ValueBatch

_NEVER = np.iinfo(np.int64).min


def _timing(d: AlarmDef) -> Timing:
    return Timing(d.on_delay_s, d.off_delay_s, d.realarm_s or 0.0)


def _is_bad(quality: int) -> bool:
    """OPC UA severity Bad (Part 4, 7.39.2: top two bits 10 or 11), as kiln.core.quality."""
    return (quality >> 30) & 0b10 != 0


def _number(value: object) -> float:
    """The numeric view of a value; NaN for text and anything else without one."""
    if isinstance(value, bool | int | float):
        return float(value)
    return math.nan


def _plain(value: object) -> Value:
    """A batch cell as a Python value (NumPy scalars become int/float)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return math.nan


def _shown(value: Value, names: Mapping[int, str] | None) -> float | str:
    """What a change reports as its value: the state name where the tag has one for it."""
    if isinstance(value, str):
        return value
    if names is not None and (code := state_code(value)) is not None and code in names:
        return names[code]
    return float(value)


# --- alarms walked point by point ------------------------------------------------------------


@dataclass(slots=True)
class _Walked:
    """A discrete or expression alarm: its gate and what it needs to decide."""

    id: str
    timing: Timing
    gate: GateState = field(default_factory=GateState)
    # discrete
    ints: frozenset[int] = frozenset()
    names: frozenset[str] = frozenset()
    tag_states: Mapping[int, str] | None = None
    # expression
    condition: _Condition | None = None

    def matches(self, value: Value) -> bool:
        if isinstance(value, str):
            return value in self.names
        code = state_code(value)
        if code is None:
            return False
        if code in self.ints:
            return True
        return self.tag_states is not None and self.tag_states.get(code) in self.names


@dataclass(slots=True)
class _Suppression:
    id: str
    condition: _Condition
    on: bool = False


@dataclass(frozen=True, slots=True)
class _Follow:
    """A detector limit that follows a tag: limit = the tag's value + offset."""

    layer: int
    tag: str
    kind: LimitKind
    offset: float


@dataclass(slots=True)
class _InForce:
    """A following limit's current value and the one before, to report the limit in force at
    a change's source time."""

    since_us: int = _NEVER
    now: float = math.nan
    before: float = math.nan

    def at(self, source_us: int) -> float:
        return self.now if source_us >= self.since_us else self.before


class _Layer:
    """One detector's rules while they are being put together: at most one of each kind of
    condition per tag, as `TagRules` allows."""

    def __init__(self) -> None:
        self.owner: dict[tuple[str, AlarmKind], str] = {}
        self.limits: dict[str, list[LimitRule]] = {}
        self.rate: dict[str, RateRule] = {}
        self.bad: dict[str, Timing] = {}
        self.stale: dict[str, tuple[float, Timing]] = {}

    def rules(self) -> dict[str, TagRules]:
        tags = {tag for tag, _ in self.owner}
        return {
            tag: TagRules(
                limits=tuple(self.limits.get(tag, ())),
                rate=self.rate.get(tag),
                bad_quality=self.bad.get(tag),
                stale_s=self.stale[tag][0] if tag in self.stale else None,
                stale_timing=self.stale[tag][1] if tag in self.stale else Timing(),
            )
            for tag in sorted(tags)
        }


class Evaluator:
    """Evaluates a fixed set of compiled alarms, batch after batch (see the module doc)."""

    def __init__(self, specs: Sequence[AlarmSpec]) -> None:
        self._specs = {s.id: s for s in specs}
        layers: list[_Layer] = []
        follows: list[tuple[str, _Follow]] = []  # (followed path, follower)
        self._walked: dict[str, _Walked] = {}
        self._suppress: dict[str, _Suppression] = {}

        def place(tag: str, kind: AlarmKind, alarm_id: str) -> tuple[int, _Layer]:
            n = next((n for n, lay in enumerate(layers) if (tag, kind) not in lay.owner), None)
            if n is None:
                n = len(layers)
                layers.append(_Layer())
            layers[n].owner[tag, kind] = alarm_id
            return n, layers[n]

        for spec in specs:
            d = spec.definition
            timing = _timing(d)
            if d.suppress_when is not None:
                self._suppress[spec.id] = _Suppression(
                    spec.id, _Condition(d.suppress_when, spec.tags, spec.states)
                )
            if isinstance(d, ExpressionAlarm):
                cond = _Condition(d.expression, spec.tags, spec.states)
                self._walked[spec.id] = _Walked(spec.id, timing, condition=cond)
                continue
            tag = spec.tags[d.tag]
            if isinstance(d, DiscreteAlarm):
                self._walked[spec.id] = _Walked(
                    spec.id,
                    timing,
                    ints=frozenset(s for s in d.states if isinstance(s, int)),
                    names=frozenset(s for s in d.states if isinstance(s, str)),
                    tag_states=spec.states.get(tag),
                )
            elif isinstance(d, LimitAlarm | DeviationAlarm):
                kind, lim_value, deadband, follow = self._limit(spec, d)
                n, layer = place(tag, kind, spec.id)
                start = lim_value if follow is None else 0.0  # replaced by NaN below
                layer.limits.setdefault(tag, []).append(LimitRule(kind, start, deadband, timing))
                if follow is not None:
                    follows.append((follow[0], _Follow(n, tag, kind, follow[1])))
            elif isinstance(d, RateOfChangeAlarm):
                place(tag, "roc", spec.id)[1].rate[tag] = RateRule(
                    d.max_rate_per_s, d.window_s, timing
                )
            elif isinstance(d, BadQualityAlarm):
                place(tag, "bad_quality", spec.id)[1].bad[tag] = timing
            elif isinstance(d, StaleAlarm):
                place(tag, "stale", spec.id)[1].stale[tag] = (d.after_s, timing)
        self._detectors = [AlarmDetector(layer.rules()) for layer in layers]
        self._owner = [layer.owner for layer in layers]
        self._slot = {aid: (n, key) for n, o in enumerate(self._owner) for key, aid in o.items()}
        self._follows: dict[str, list[_Follow]] = {}
        self._in_force: dict[tuple[int, str, str], _InForce] = {}
        for path, f in follows:
            self._follows.setdefault(path, []).append(f)
            self._detectors[f.layer].set_limit(f.tag, f.kind, math.nan)
            self._in_force[f.layer, f.tag, f.kind] = _InForce()

        # Walked inputs: which conditions each tag path feeds.
        self._discrete_on: dict[str, list[_Walked]] = {}
        self._expression_on: dict[str, list[_Walked]] = {}
        self._suppression_on: dict[str, list[_Suppression]] = {}
        for w in self._walked.values():
            if w.condition is None:
                on = self._specs[w.id].tag
                assert on is not None
                self._discrete_on.setdefault(on, []).append(w)
            else:
                for path in w.condition.paths:
                    self._expression_on.setdefault(path, []).append(w)
        for s in self._suppress.values():
            for path in s.condition.paths:
                self._suppression_on.setdefault(path, []).append(s)
        walked = {*self._follows, *self._discrete_on, *self._expression_on, *self._suppression_on}

        every: set[str] = set(walked)
        self._states: dict[str, Mapping[int, str]] = {}
        for spec in specs:
            every.update(spec.tags.values())
            self._states.update(spec.states)
        self.paths = frozenset(every)
        self._paths = sorted(every)
        self._index = {p: i for i, p in enumerate(self._paths)}
        n = len(self._paths)
        self._is_walked = np.zeros(n, dtype=bool)
        self._is_walked[[self._index[p] for p in walked]] = True
        self._is_followed = np.zeros(n, dtype=bool)
        self._is_followed[[self._index[p] for p in self._follows]] = True
        # Per detector: global tag index -> the detector's tag index (-1: not one of its tags).
        self._to_layer: list[npt.NDArray[np.int64]] = []
        for layer in layers:
            order = sorted({tag for tag, _ in layer.owner})  # the order `rules()` gives
            m = np.full(n, -1, dtype=np.int64)
            m[[self._index[t] for t in order]] = np.arange(len(order))
            self._to_layer.append(m)
        self._latest: dict[str, tuple[Value, bool]] = {}  # walked paths: (value, bad)
        self._newest: dict[str, int] = {}  # walked paths: newest source time seen
        self._late = 0

    @staticmethod
    def _limit(
        spec: AlarmSpec, d: LimitAlarm | DeviationAlarm
    ) -> tuple[LimitKind, float, float, tuple[str, float] | None]:
        """(detector limit kind, fixed limit, deadband, (followed path, offset) or None)."""
        if isinstance(d, DeviationAlarm):
            setpoint = spec.tags[d.setpoint]
            if spec.condition == "deviation_high":
                assert d.high is not None
                return "hi", math.nan, d.deadband, (setpoint, d.high)
            assert d.low is not None
            return "lo", math.nan, d.deadband, (setpoint, -d.low)
        kind = spec.condition
        assert kind in LIMIT_KINDS
        lim = getattr(d, kind)
        if isinstance(lim.value, str):
            return kind, math.nan, lim.deadband, (spec.tags[lim.value], 0.0)
        return kind, float(lim.value), lim.deadband, None

    @property
    def late_points(self) -> int:
        """Points skipped because a newer one of the same tag had been evaluated already."""
        return self._late + sum(d.late_points for d in self._detectors)

    # --- values ------------------------------------------------------------------------------

    def evaluate(self, batch: ValueBatch) -> list[ConditionChange]:
        """The condition changes a batch causes, in source-time order."""
        if len(batch) == 0:
            return []
        index = self._index
        gidx = np.fromiter((index.get(p, -1) for p in batch.paths), np.int64, count=len(batch))
        try:
            raw = np.asarray(batch.values)
        except ValueError:  # ragged: a list or dict among the values; each is judged alone
            raw = np.empty(0, dtype=object)
        if raw.dtype.kind in "fiub" and raw.ndim == 1:
            values = raw.astype(np.float64, copy=False)
        else:
            values = np.fromiter((_number(v) for v in batch.values), np.float64, len(batch))
        source = np.asarray(batch.source_us, dtype=np.int64)
        quality = np.asarray(batch.qualities, dtype=np.int64)
        pos = np.arange(len(batch))
        if not (known := gidx >= 0).all():
            gidx, values, source = gidx[known], values[known], source[known]
            quality, pos = quality[known], pos[known]
        out: list[ConditionChange] = []
        walked = self._is_walked[gidx]
        if not walked.any():
            self._detect(gidx, values, source, quality, out)
            out.sort(key=lambda c: c.source_us)
            return out
        # Time order, ties in batch order: the same order however the series is split.
        order = np.argsort(source, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        start = 0
        for k in order[walked[order]].tolist():
            g = int(gidx[k])
            if self._is_followed[g] and (r := int(rank[k])) > start:
                sel = order[start:r]
                self._detect(gidx[sel], values[sel], source[sel], quality[sel], out)
                start = r
            value = _plain(batch.values[int(pos[k])])
            self._walk(self._paths[g], value, int(source[k]), _is_bad(int(quality[k])), out)
        if start < len(order):
            sel = order[start:]
            self._detect(gidx[sel], values[sel], source[sel], quality[sel], out)
        out.sort(key=lambda c: c.source_us)
        return out

    def _detect(
        self,
        gidx: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        source: npt.NDArray[np.int64],
        quality: npt.NDArray[np.int64],
        out: list[ConditionChange],
    ) -> None:
        """Run the points through every detector that has some of their tags."""
        for n, det in enumerate(self._detectors):
            idx = self._to_layer[n][gidx]
            mine = idx >= 0
            if mine.all():
                found = det.evaluate_indexed(idx, values, source, quality)
            elif mine.any():
                found = det.evaluate_indexed(idx[mine], values[mine], source[mine], quality[mine])
            else:
                continue
            self._changes(n, found, out)

    def _changes(self, n: int, found: list[Transition], out: list[ConditionChange]) -> None:
        owner = self._owner[n]
        for t in found:
            limit: float | None = None
            if t.kind in LIMIT_KINDS:
                held = self._in_force.get((n, t.tag, t.kind))
                if held is None:
                    lim = self._detectors[n].limit(t.tag, t.kind)
                else:
                    lim = held.at(t.source_us)
                limit = None if math.isnan(lim) else lim
            value = None if math.isnan(t.value) else t.value
            out.append(ConditionChange(owner[t.tag, t.kind], t.event, t.source_us, value, limit))

    def _walk(
        self, path: str, value: Value, at: int, bad: bool, out: list[ConditionChange]
    ) -> None:
        """One point of a tag that a limit follows or a walked condition reads."""
        if at < self._newest.get(path, _NEVER):
            self._late += 1
            return
        self._newest[path] = at
        self._latest[path] = (value, bad)
        for f in self._follows.get(path, ()):
            limit = math.nan if bad else _number(value) + f.offset
            held = self._in_force[f.layer, f.tag, f.kind]
            held.since_us, held.before, held.now = at, held.now, limit
            self._detectors[f.layer].set_limit(f.tag, f.kind, limit)
        for w in self._discrete_on.get(path, ()):
            shown = _shown(value, w.tag_states)
            step_gate(w.gate, w.timing, at, None if bad else w.matches(value), shown, _emit(w, out))
        if path in self._expression_on:
            shown = _shown(value, self._states.get(path))
            for w in self._expression_on[path]:
                assert w.condition is not None
                raw = w.condition.evaluate(self._latest)
                step_gate(w.gate, w.timing, at, raw, shown, _emit(w, out))
        for s in self._suppression_on.get(path, ()):
            on = s.condition.evaluate(self._latest)
            if on is not None and on != s.on:
                s.on = on
                out.append(ConditionChange(s.id, "suppress_on" if on else "suppress_off", at))

    # --- time and restart --------------------------------------------------------------------

    def tick(self, now_us: int) -> list[ConditionChange]:
        """Let time pass to `now_us`: delays expiring, re-alarms and stale tags falling due."""
        out: list[ConditionChange] = []
        for n, det in enumerate(self._detectors):
            self._changes(n, det.tick(now_us), out)
        for w in self._walked.values():
            if not w.gate.idle:
                fire_gate(w.gate, w.timing, now_us, True, _emit(w, out))
        out.sort(key=lambda c: c.source_us)
        return out

    def restore(self, active: Mapping[str, int], suppressed: Iterable[str] = ()) -> None:
        """Take up where the engine left off before a restart: `active` maps alarm ids to the
        source time they became active; `suppressed` lists alarms whose suppression condition
        was on. Active alarms are abnormal until a normal value clears them (off-delay and
        all); ids no longer defined are ignored (their definition was removed)."""
        for alarm_id, since in active.items():
            if alarm_id in self._slot:
                n, (tag, kind) = self._slot[alarm_id]
                self._detectors[n].restore(tag, kind, since)
            elif (w := self._walked.get(alarm_id)) is not None:
                w.gate.raw = w.gate.active = True
                w.gate.raw_since_us = w.gate.announced_us = since
        for alarm_id in suppressed:
            if (s := self._suppress.get(alarm_id)) is not None:
                s.on = True


def _emit(w: _Walked, out: list[ConditionChange]) -> Emit:
    def emit(event: Event, at: int, value: float | str) -> None:
        shown = None if isinstance(value, float) and math.isnan(value) else value
        out.append(ConditionChange(w.id, event, at, shown))

    return emit


__all__ = ["Evaluator"]
