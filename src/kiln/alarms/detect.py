"""Alarm condition detection: which alarms become active, clear or re-alarm, and when.

Pure and synchronous: values in, a list of `Transition`s out; no bus, no database, no clock of
its own. What happens to a transition afterwards (the ISA-18.2 state machine, the journal,
announcing) is the business of the rest of `kiln.alarms`.

Every decision is taken on source timestamps, never on the time of arrival: a value is taken to
hold until the next value of the same tag, so an on-delay that expires between two samples fires
at the instant it expired (source time of the first abnormal sample plus the delay), whether the
next sample arrives a millisecond later, in the same late batch, or an hour later. The state
carried between batches is one small `GateState` per tag and alarm kind, so a series gives the
same transitions evaluated in one batch or split into many.

The common case is cheap: a batch of many tags whose values lie inside their limits, with no
alarm pending or active on those tags, is a few NumPy operations over the whole batch. Only the
tags with something going on (a value past a limit, bad quality, an alarm pending, active or
delayed, a rule that needs history such as rate of change) are walked point by point.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from kiln.core.values import ValueBatch

LimitKind = Literal["hihi", "hi", "lo", "lolo"]
AlarmKind = Literal["hihi", "hi", "lo", "lolo", "roc", "deviation", "bad_quality", "stale"]
Event = Literal["active", "cleared", "realarm"]

# Column order of the limit matrix; high limits alarm above, low ones below.
LIMIT_KINDS: tuple[LimitKind, ...] = ("hihi", "hi", "lo", "lolo")
_DIRECTION = np.array([1.0, 1.0, -1.0, -1.0])
_COLUMN: dict[str, int] = {kind: col for col, kind in enumerate(LIMIT_KINDS)}
_US = 1_000_000


def _us(seconds: float) -> int:
    return round(seconds * _US)


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays shared by every kind of alarm, in seconds; 0 means none.

    on_delay_s: the condition must hold this long before the alarm becomes active.
    off_delay_s: the condition must be normal this long before the alarm clears.
    realarm_s: an alarm active this long is announced again, and again every realarm_s.
    """

    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    realarm_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("on_delay_s", "off_delay_s", "realarm_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} is {value!r}: give a number of seconds, 0 or more")


@dataclass(frozen=True, slots=True)
class LimitRule:
    """A HiHi/Hi/Lo/LoLo limit. A high alarm is abnormal above `limit` and normal again only
    below `limit - deadband`; a low one below `limit` and above `limit + deadband`. In between
    the condition keeps its state, which is what stops a value hovering at the limit from
    chattering."""

    kind: LimitKind
    limit: float
    deadband: float = 0.0
    timing: Timing = Timing()

    def __post_init__(self) -> None:
        if self.kind not in LIMIT_KINDS:
            raise ValueError(f"limit kind {self.kind!r} is unknown: use one of {LIMIT_KINDS}")
        if not math.isfinite(self.limit):
            raise ValueError(f"{self.kind} limit is {self.limit!r}: give a finite number")
        if not (math.isfinite(self.deadband) and self.deadband >= 0):
            raise ValueError(f"{self.kind} deadband is {self.deadband!r}: give a number >= 0")


@dataclass(frozen=True, slots=True)
class RateRule:
    """Rate of change: abnormal while |change over the last `window_s`| / elapsed seconds is
    above `max_per_s` (in the tag's units per second)."""

    max_per_s: float
    window_s: float
    timing: Timing = Timing()

    def __post_init__(self) -> None:
        if not (self.max_per_s > 0 and self.window_s > 0):
            raise ValueError("rate of change needs max_per_s > 0 and window_s > 0")


@dataclass(frozen=True, slots=True)
class DeviationRule:
    """Deviation from a set-point: abnormal while |value - setpoint| > `limit`, normal again
    below `limit - deadband`."""

    setpoint: float
    limit: float
    deadband: float = 0.0
    timing: Timing = Timing()

    def __post_init__(self) -> None:
        if not (self.limit > 0 and self.deadband >= 0):
            raise ValueError("deviation needs limit > 0 and deadband >= 0")


@dataclass(frozen=True, slots=True)
class TagRules:
    """Everything detected on one tag. `bad_quality` alarms on OPC UA severity Bad; `stale_s`
    alarms when the tag has had no value for that long (checked by `AlarmDetector.tick`)."""

    limits: tuple[LimitRule, ...] = ()
    rate: RateRule | None = None
    deviation: DeviationRule | None = None
    bad_quality: Timing | None = None
    stale_s: float | None = None
    stale_timing: Timing = Timing()

    def __post_init__(self) -> None:
        kinds = [lim.kind for lim in self.limits]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"limits {kinds} repeat a kind: give each of hihi/hi/lo/lolo once")
        if self.stale_s is not None and not self.stale_s > 0:
            raise ValueError(f"stale_s is {self.stale_s!r}: give a number of seconds > 0")


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of an alarm condition, at the source time it happened."""

    tag: str
    kind: AlarmKind
    event: Event
    source_us: int
    value: float


@dataclass(slots=True)
class GateState:
    """What one alarm of one tag carries between batches.

    `raw` is the condition after hysteresis, as of `raw_since_us`; `active` is the alarm after
    the on/off delays; `announced_us` is when it was last activated or re-alarmed; `value` the
    value held (a number here; text where a caller of `step_gate` gates on text values).
    """

    raw: bool = False
    raw_since_us: int = 0
    active: bool = False
    announced_us: int = 0
    value: float | str = math.nan

    @property
    def idle(self) -> bool:
        return not (self.raw or self.active)


# Receives each change a gate makes: the event, its source time and the value held then.
Emit = Callable[[Event, int, "float | str"], None]


def fire_gate(st: GateState, timing: Timing, until_us: int, inclusive: bool, emit: Emit) -> None:
    """Emit the changes the passing of time causes, up to `until_us`, in time order."""

    def due(at: int) -> bool:
        return at <= until_us if inclusive else at < until_us

    realarm = _us(timing.realarm_s)
    while True:
        if not st.active:
            at = st.raw_since_us + _us(timing.on_delay_s)
            if st.raw and due(at):
                st.active, st.announced_us = True, at
                emit("active", at, st.value)
                continue
            return
        clear_at = None if st.raw else st.raw_since_us + _us(timing.off_delay_s)
        again = st.announced_us + realarm if realarm else None
        if again is not None and due(again) and (clear_at is None or again < clear_at):
            st.announced_us = again
            emit("realarm", again, st.value)
            continue
        if clear_at is not None and due(clear_at):
            st.active = False
            emit("cleared", clear_at, st.value)
        return


def step_gate(
    st: GateState,
    timing: Timing,
    at_us: int,
    raw: bool | None,
    value: float | str,
    emit: Emit,
) -> None:
    """Apply one sample: `raw` is the condition it shows (None: no change, e.g. the value is in
    the deadband or unusable). Time up to just before the sample passes first, with the value
    held until then; then the sample's own effect, at its time.

    Public so that conditions the detector does not know (discrete states, expressions) run
    through exactly the same delays and re-alarm as its own."""
    fire_gate(st, timing, at_us, False, emit)
    st.value = value
    if raw is not None and raw != st.raw:
        st.raw, st.raw_since_us = raw, at_us
    fire_gate(st, timing, at_us, True, emit)


def _emitter(tag: str, kind: AlarmKind, out: list[Transition]) -> Emit:
    def emit(event: Event, at: int, value: float | str) -> None:
        out.append(Transition(tag, kind, event, at, cast(float, value)))

    return emit


def _fire(
    tag: str,
    kind: AlarmKind,
    st: GateState,
    timing: Timing,
    until_us: int,
    inclusive: bool,
    out: list[Transition],
) -> None:
    fire_gate(st, timing, until_us, inclusive, _emitter(tag, kind, out))


def _step(
    tag: str,
    kind: AlarmKind,
    st: GateState,
    timing: Timing,
    at_us: int,
    raw: bool | None,
    value: float,
    out: list[Transition],
) -> None:
    step_gate(st, timing, at_us, raw, value, _emitter(tag, kind, out))


def _limit_condition(kind: LimitKind, limit: float, deadband: float, value: float) -> bool | None:
    """The condition a value shows against a limit; None inside the deadband, or when the limit
    is not known (NaN: a limit taken from a tag that has no value yet)."""
    d = value - limit if kind in ("hihi", "hi") else limit - value
    if d > 0:
        return True
    if d < -deadband:
        return False
    return None


@dataclass(slots=True)
class _TagState:
    gates: dict[AlarmKind, GateState] = field(default_factory=dict)
    history: deque[tuple[int, float]] = field(default_factory=deque)  # for rate of change

    def gate(self, kind: AlarmKind) -> GateState:
        st = self.gates.get(kind)
        if st is None:
            st = self.gates[kind] = GateState()
        return st


class AlarmDetector:
    """Detects the alarm conditions of a fixed set of tags, batch after batch.

    `evaluate` takes a `ValueBatch` (or its columns); `tick(now_us)` lets time pass without
    values: delays expire, re-alarms fall due and stale tags are found. Points of one tag are
    taken in source-time order within a batch; a point older than one already evaluated for the
    same tag is late beyond repair and skipped (counted in `late_points`).
    """

    def __init__(self, rules: Mapping[str, TagRules]) -> None:
        self._tags = list(rules)
        self._index = {tag: i for i, tag in enumerate(self._tags)}
        self._rules = [rules[t] for t in self._tags]
        n = len(self._tags)
        self._limits = np.full((n, len(LIMIT_KINDS)), np.nan)
        for i, r in enumerate(self._rules):
            for lim in r.limits:
                self._limits[i, LIMIT_KINDS.index(lim.kind)] = lim.limit
        # Tags that must always be walked point by point: their rules need history or compare
        # with something other than a fixed limit.
        self._always = np.array(
            [r.rate is not None or r.deviation is not None for r in self._rules], dtype=bool
        )
        self._engaged = np.zeros(n, dtype=bool)  # some alarm of the tag is not idle
        self._newest = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        # Stale: the tags' thresholds (out of reach for tags without one), which are stale now.
        never = np.iinfo(np.int64).max // 2
        self._stale_us = np.array(
            [never if r.stale_s is None else _us(r.stale_s) for r in self._rules], dtype=np.int64
        )
        self._stale_raw = np.zeros(n, dtype=bool)
        self._stale_busy = np.zeros(n, dtype=bool)  # staleness ended, its off-delay running
        self._state: dict[int, _TagState] = {}
        self.late_points = 0

    def state(self, tag: str, kind: AlarmKind) -> GateState | None:
        """The carried state of one alarm (None if it has never left normal)."""
        ts = self._state.get(self._index[tag])
        return None if ts is None else ts.gates.get(kind)

    def limit(self, tag: str, kind: LimitKind) -> float:
        """The limit in force (NaN: none known yet)."""
        return float(self._limits[self._index[tag], _COLUMN[kind]])

    def set_limit(self, tag: str, kind: LimitKind, value: float) -> None:
        """Change a limit from now on, for limits that follow a tag (a limit tag, or a
        deviation's set-point plus its band). NaN means no limit known: the condition then
        keeps its state until a limit is known again. The rule's own `limit` is only the
        starting value; the matrix is what every point is compared with."""
        i = self._index[tag]
        if not any(lim.kind == kind for lim in self._rules[i].limits):
            raise KeyError(f"tag {tag!r} has no {kind} limit to change")
        self._limits[i, _COLUMN[kind]] = value

    def restore(self, tag: str, kind: AlarmKind, since_us: int) -> None:
        """Mark an alarm active since `since_us`, as it was before a restart: its condition is
        taken as abnormal, so the first normal value clears it (after the off-delay) and an
        abnormal one changes nothing."""
        i = self._index[tag]
        gate = self._tag(i).gate(kind)
        gate.raw = gate.active = True
        gate.raw_since_us = gate.announced_us = since_us
        if kind == "stale":
            self._stale_raw[i] = True
        else:
            self._engaged[i] = True

    def evaluate(self, batch: ValueBatch) -> list[Transition]:
        """Transitions caused by the points of `batch` whose tag has rules; others are ignored."""
        index = self._index
        idx = np.fromiter((index.get(p, -1) for p in batch.paths), dtype=np.int64, count=len(batch))
        known = idx >= 0
        values = np.asarray(batch.values)
        if values.dtype.kind not in "fiub":
            values = np.array([_as_float(v) for v in batch.values], dtype=np.float64)
        return self.evaluate_indexed(
            idx[known],
            values.astype(np.float64, copy=False)[known],
            np.asarray(batch.source_us, dtype=np.int64)[known],
            np.asarray(batch.qualities, dtype=np.int64)[known],
        )

    def evaluate_indexed(
        self,
        tag_idx: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        source_us: npt.NDArray[np.int64],
        qualities: npt.NDArray[np.int64],
    ) -> list[Transition]:
        """`evaluate` on columns whose tags are already indices into the detector's tags (the
        order of `rules`), for producers that resolve paths once."""
        out: list[Transition] = []
        if len(tag_idx) == 0:
            return out
        bad = (qualities >> 30) & 0b10 != 0
        with np.errstate(invalid="ignore"):
            past = ((values[:, None] - self._limits[tag_idx]) * _DIRECTION > 0).any(axis=1)
        # A NaN (text, or no number) cannot pass a limit; it only matters to a tag already engaged.
        busy = past | bad | self._engaged[tag_idx] | self._always[tag_idx]
        # A point older than the newest already seen for its tag cannot be evaluated in order.
        late = source_us < self._newest[tag_idx]
        np.maximum.at(self._newest, tag_idx, source_us)
        if late.any():
            # A late point of a tag is skipped, but not the tag's newer points.
            self.late_points += int(late.sum())
            keep = ~late
            tag_idx, values, source_us, qualities = (
                tag_idx[keep],
                values[keep],
                source_us[keep],
                qualities[keep],
            )
            busy, bad = busy[keep], bad[keep]
        self._note_seen(tag_idx, source_us, out)
        if not busy.any():
            return out
        walk = np.isin(tag_idx, np.unique(tag_idx[busy]))
        sel = np.flatnonzero(walk)
        order = sel[np.lexsort((source_us[sel], tag_idx[sel]))]
        for k in order.tolist():
            self._point(int(tag_idx[k]), float(values[k]), int(source_us[k]), bool(bad[k]), out)
        return out

    def _note_seen(
        self,
        tag_idx: npt.NDArray[np.int64],
        source_us: npt.NDArray[np.int64],
        out: list[Transition],
    ) -> None:
        """A new value ends staleness, at the source time of the first value after it began."""
        hit = self._stale_raw[tag_idx]
        if not hit.any():
            return
        for i in np.unique(tag_idx[hit]).tolist():
            gate = self._tag(i).gate("stale")
            # A value that arrives late may predate the tick that found the tag stale; the
            # clearing is then dated when staleness began, never before it.
            first = max(int(source_us[tag_idx == i].min()), gate.raw_since_us)
            _step(
                self._tags[i],
                "stale",
                gate,
                self._rules[i].stale_timing,
                first,
                False,
                math.nan,
                out,
            )
            self._stale_raw[i] = False
            self._stale_busy[i] = not gate.idle  # an off-delay may still be running

    def tick(self, now_us: int) -> list[Transition]:
        """Let time pass to `now_us`: expired delays, due re-alarms and stale tags."""
        out: list[Transition] = []
        seen = self._newest != np.iinfo(np.int64).min
        due = seen & ~self._stale_raw & (self._newest + self._stale_us <= now_us)
        for i in np.flatnonzero(due).tolist():
            since = int(self._newest[i] + self._stale_us[i])
            gate = self._tag(i).gate("stale")
            _step(
                self._tags[i],
                "stale",
                gate,
                self._rules[i].stale_timing,
                since,
                True,
                math.nan,
                out,
            )
            self._stale_raw[i] = True
        # Only tags with an alarm pending or active have delays or re-alarms to fall due.
        for i in np.flatnonzero(self._engaged | self._stale_raw | self._stale_busy).tolist():
            ts = self._state.get(i)
            if ts is None:
                continue
            tag, rules = self._tags[i], self._rules[i]
            for kind, gate in ts.gates.items():
                if not gate.idle:
                    _fire(tag, kind, gate, self._timing(rules, kind), now_us, True, out)
            self._engaged[i] = self._any_engaged(ts)
            stale = ts.gates.get("stale")
            self._stale_busy[i] = stale is not None and not stale.idle and not self._stale_raw[i]
        out.sort(key=lambda t: t.source_us)
        return out

    def _tag(self, i: int) -> _TagState:
        ts = self._state.get(i)
        if ts is None:
            ts = self._state[i] = _TagState()
        return ts

    @staticmethod
    def _any_engaged(ts: _TagState) -> bool:
        return any(not g.idle for k, g in ts.gates.items() if k != "stale")

    @staticmethod
    def _timing(rules: TagRules, kind: AlarmKind) -> Timing:
        if kind == "stale":
            return rules.stale_timing
        if kind == "bad_quality":
            return rules.bad_quality or Timing()
        if kind == "roc":
            return rules.rate.timing if rules.rate else Timing()
        if kind == "deviation":
            return rules.deviation.timing if rules.deviation else Timing()
        return next(lim.timing for lim in rules.limits if lim.kind == kind)

    def _point(self, i: int, value: float, at: int, bad: bool, out: list[Transition]) -> None:
        """One point of a tag that needs looking at, in source-time order."""
        tag, rules, ts = self._tags[i], self._rules[i], self._tag(i)
        usable = not bad and not math.isnan(value)
        if rules.bad_quality is not None and (bad or "bad_quality" in ts.gates):
            _step(
                tag, "bad_quality", ts.gate("bad_quality"), rules.bad_quality, at, bad, value, out
            )
        row = self._limits[i]
        for lim in rules.limits:
            limit = float(row[_COLUMN[lim.kind]])
            cond = _limit_condition(lim.kind, limit, lim.deadband, value) if usable else None
            if not cond and lim.kind not in ts.gates:
                continue  # normal and never alarmed: nothing to carry
            _step(tag, lim.kind, ts.gate(lim.kind), lim.timing, at, cond, value, out)
        if rules.deviation is not None:
            dev = rules.deviation
            off = abs(value - dev.setpoint)
            raw: bool | None = None
            if usable and off > dev.limit:
                raw = True
            elif usable and off < dev.limit - dev.deadband:
                raw = False
            _step(tag, "deviation", ts.gate("deviation"), dev.timing, at, raw, value, out)
        if rules.rate is not None:
            rising = self._rate(ts, rules.rate, at, value, usable)
            _step(tag, "roc", ts.gate("roc"), rules.rate.timing, at, rising, value, out)
        self._engaged[i] = self._any_engaged(ts)

    @staticmethod
    def _rate(ts: _TagState, rule: RateRule, at: int, value: float, usable: bool) -> bool | None:
        if not usable:
            return None
        hist = ts.history
        hist.append((at, value))
        while hist and hist[0][0] < at - _us(rule.window_s):
            hist.popleft()
        t0, v0 = hist[0]
        if t0 == at:
            return None  # one point in the window: no rate yet
        return abs(value - v0) / ((at - t0) / _US) > rule.max_per_s


def _as_float(value: object) -> float:
    """Numeric view of a value; text and other non-numbers are not limit-checked (NaN)."""
    if isinstance(value, bool | int | float):
        return float(value)
    return math.nan


__all__ = [
    "LIMIT_KINDS",
    "AlarmDetector",
    "AlarmKind",
    "DeviationRule",
    "Emit",
    "Event",
    "GateState",
    "LimitKind",
    "LimitRule",
    "RateRule",
    "TagRules",
    "Timing",
    "Transition",
    "fire_gate",
    "step_gate",
]
