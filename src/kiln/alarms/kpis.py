"""Alarm-system performance per EEMUA 191 and ISA-18.2 / IEC 62682: a pure module.

`alarm_kpis()` reads journal entries and the current alarm records and returns the figures the
standards measure an alarm system by, each with its verdict against the target in `TARGETS`.
Nothing here reads a clock or does I/O: the range and "now" are arguments (microseconds since
the epoch, the `kiln.core.clock` convention).

What is counted. ISA-18.2 and EEMUA 191 count *annunciated* alarms. Here that is an
**activation**: a journal entry of event `becomes_abnormal` that was announced (no shelve,
suppression or out of service hid it) and opened a new occurrence (the alarm was not active
before). A **re-alarm** (event `realarm`, announced) is annunciated again without a new
occurrence: it is counted apart, and the average rates are also given with re-alarms included;
every field name says which (`activations...` or `..._incl_realarms...`). An alarm revealed
when its shelve ends is not an activation: its `becomes_abnormal` was journaled unannounced.

Choices where the standards leave room, each stated at its function:

- Flood (`_floods`): a sliding 10-minute window over activation instants, with ISA-18.2's
  hysteresis: it starts at the instant more than 10 activations lie in the last 10 minutes and
  ends at the first instant fewer than 5 do.
- `positions` divides the average rates only. Which console an alarm goes to is not known here,
  so peaks and floods are of the subtree as one console: ask per console's subtree for those.
- Priority distribution: Kiln has four priorities, the guidance three (~80 % low, ~15 % medium,
  ~5 % high); critical is merged with high for the comparison.
- Stale: the condition active for more than 24 h, whether or not an overlay hides it (an alarm
  stuck active behind a shelve is still one to fix).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kiln.alarms.definitions import Priority
from kiln.alarms.records import AlarmRecord, JournalEntry
from kiln.alarms.states import ACTIVE_STATES, Event, Shelving, State
from kiln.core.values import path_has_prefix

_US = 1_000_000
TEN_MIN_US = 600 * _US
HOUR_US = 3600 * _US
DAY_US = 86_400 * _US

# ISA-18.2's alarm flood (its definitions, clause 3): a rate greater than the operator can
# manage, "e.g. more than 10 alarms per 10 minutes"; it ends when the rate drops below 5 per 10
# minutes, the end rule of ISA-18.2 flood analysis as practitioners state it (taken from
# secondary sources, not checked against the standard's own text).
FLOOD_START_ABOVE = 10
FLOOD_END_BELOW = 5
HOUR_BUSY_ABOVE = 30  # ISA-18.2 Table 5: "percentage of hours containing more than 30 alarms"
CHATTER_COUNT = 3  # the rule: 3 or more activations of one alarm ...
CHATTER_WINDOW_US = 60 * _US  # ... within 60 s
STALE_AFTER_US = DAY_US  # ISA-18.2: a stale alarm stays active for more than 24 h
TOP_N = 10

# Where the targets come from. ISA-18.2's Table 5 is "Recommended alarm system performance
# metrics" (clause 16, monitoring and assessment; IEC 62682:2014 carries the same figures); the
# numbering from secondary sources, not the standards' own text. EEMUA 191 (3rd ed., 2013)
# gives the same average-rate and priority-distribution benchmarks, where ISA-18.2 took them from.
ISA_TABLE_5 = "ISA-18.2 Table 5 (recommended alarm system performance metrics) / IEC 62682"
EEMUA_191 = "EEMUA 191 (3rd ed.)"


class Verdict(StrEnum):
    ACCEPTABLE = "acceptable"  # within ISA-18.2's "very likely to be acceptable" / the target
    MANAGEABLE = "manageable"  # above that, within the "maximum manageable"
    OVER_TARGET = "over_target"
    NO_DATA = "no_data"  # nothing to judge (e.g. a share of no alarms)


@dataclass(frozen=True, slots=True)
class Target:
    """One row of the targets: `acceptable` and, where the source gives one, a looser
    `manageable`; `below` for a "less than" target, else "at most"."""

    label: str
    unit: str
    acceptable: float
    manageable: float | None
    rule: str
    source: str
    below: bool = False

    def verdict(self, value: float | None) -> Verdict:
        if value is None:
            return Verdict.NO_DATA
        if value < self.acceptable or (not self.below and value == self.acceptable):
            return Verdict.ACCEPTABLE
        if self.manageable is not None and value <= self.manageable:
            return Verdict.MANAGEABLE
        return Verdict.OVER_TARGET


_RATE_SOURCE = f"{ISA_TABLE_5}; {EEMUA_191}"

# The targets, one table (ISA-18.2 Table 5 unless said otherwise), per operator position.
TARGETS: dict[str, Target] = {
    "activations_per_10_min": Target(
        "Alarms per operator position per 10 minutes", "alarms/10 min", 1, 2,
        "~1 very likely acceptable, ~2 maximum manageable", _RATE_SOURCE,
    ),
    "activations_per_hour": Target(
        "Alarms per operator position per hour", "alarms/h", 6, 12,
        "~6 very likely acceptable, ~12 maximum manageable", _RATE_SOURCE,
    ),
    "activations_per_day": Target(
        "Alarms per operator position per day", "alarms/day", 150, 300,
        "~150 very likely acceptable, ~300 maximum manageable", _RATE_SOURCE,
    ),
    "peak_activations_in_10_min": Target(
        "Most alarms in one 10-minute period", "alarms", 10, None, "at most 10", ISA_TABLE_5
    ),
    "percent_10_min_periods_over_10": Target(
        "10-minute periods with more than 10 alarms", "%", 1, None, "under ~1 %", ISA_TABLE_5,
        below=True,
    ),
    "percent_hours_over_30": Target(
        "Hours with more than 30 alarms", "%", 1, None, "under ~1 %", ISA_TABLE_5, below=True
    ),
    "percent_time_in_flood": Target(
        "Time in alarm flood", "%", 1, None, "under ~1 %", ISA_TABLE_5, below=True
    ),
    "top_10_share": Target(
        "Share of the 10 most frequent alarms", "%", 1, 5, "~1 % to 5 % maximum", ISA_TABLE_5
    ),
    "chattering_alarms": Target(
        "Chattering alarms", "alarms", 0, None, "zero (act on any that occur)", ISA_TABLE_5
    ),
    "stale_at_now": Target(
        "Stale alarms now (active > 24 h)", "alarms", 5, None, "fewer than 5 on any day",
        ISA_TABLE_5, below=True,
    ),
    "stale_max_on_any_day": Target(
        "Most stale alarms on one day in the range", "alarms", 5, None,
        "fewer than 5 on any day", ISA_TABLE_5, below=True,
    ),
}  # fmt: skip

# ~80 % low, ~15 % medium, ~5 % high (ISA-18.2 Table 5 for three priorities; EEMUA 191).
PRIORITY_GUIDANCE: dict[str, float] = {"low": 80.0, "medium": 15.0, "high_and_critical": 5.0}
PRIORITY_SOURCE = f"{ISA_TABLE_5}; {EEMUA_191}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure with its verdict against `TARGETS[key]`."""

    key: str
    value: float | None

    @property
    def target(self) -> Target:
        return TARGETS[self.key.removesuffix("_incl_realarms")]

    @property
    def verdict(self) -> Verdict:
        return self.target.verdict(self.value)

    def to_json(self) -> dict[str, Any]:
        t = self.target
        incl = " (re-alarms included)" if "incl_realarms" in self.key else ""
        return {
            "label": t.label + incl,
            "value": self.value,
            "unit": t.unit,
            "target": t.acceptable,
            "maximum_manageable": t.manageable,
            "rule": t.rule,
            "verdict": self.verdict.value,
            "source": t.source,
        }


@dataclass(frozen=True, slots=True)
class PriorityDistribution:
    counts: Mapping[Priority, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percent(self, priority: Priority) -> float | None:
        return None if self.total == 0 else 100.0 * self.counts.get(priority, 0) / self.total

    @property
    def compared(self) -> dict[str, float] | None:
        """Shares on the guidance's three levels, critical merged with high."""
        if self.total == 0:
            return None
        c = self.counts
        high = c.get(Priority.HIGH, 0) + c.get(Priority.CRITICAL, 0)
        return {
            "low": 100.0 * c.get(Priority.LOW, 0) / self.total,
            "medium": 100.0 * c.get(Priority.MEDIUM, 0) / self.total,
            "high_and_critical": 100.0 * high / self.total,
        }

    @property
    def verdict(self) -> Verdict:
        """Kiln's reading of "~80/15/5": the point is that higher priorities stay rare, so it is
        acceptable when high and critical are at most 5 % and medium-and-above at most 20 %."""
        shares = self.compared
        if shares is None:
            return Verdict.NO_DATA
        top = shares["high_and_critical"]
        ok = top <= PRIORITY_GUIDANCE["high_and_critical"] and shares["medium"] + top <= (
            PRIORITY_GUIDANCE["medium"] + PRIORITY_GUIDANCE["high_and_critical"]
        )
        return Verdict.ACCEPTABLE if ok else Verdict.OVER_TARGET

    def to_json(self) -> dict[str, Any]:
        return {
            "distribution": {
                "label": "Priority distribution (critical counted with high)",
                "value": self.compared,
                "unit": "%",
                "target": PRIORITY_GUIDANCE,
                "rule": "~80 % low, ~15 % medium, ~5 % high",
                "verdict": self.verdict.value,
                "source": PRIORITY_SOURCE,
            },
            "counts": {p.value: self.counts.get(p, 0) for p in Priority},
            "percent": {p.value: self.percent(p) for p in Priority},
        }


@dataclass(frozen=True, slots=True)
class AlarmCount:
    """An alarm with its activations in the range; `percent` of all activations, or for a
    chattering alarm `most_in_60_s`."""

    alarm_id: str
    count: int
    percent: float | None = None
    most_in_60_s: int | None = None


@dataclass(frozen=True, slots=True)
class Flood:
    start_us: int  # both clipped to the range
    end_us: int
    activations: int  # activations within [start_us, end_us)


@dataclass(frozen=True, slots=True)
class StaleOccurrence:
    alarm_id: str
    occurrence: int
    active_since_us: int
    cleared_us: int | None  # None: still active at the range's end (or now)


@dataclass(frozen=True, slots=True)
class NowCounts:
    """The alarms of the subtree at `now_us`, from their records."""

    shelved: int
    suppressed: int
    out_of_service: int
    active: int  # the condition is active (acknowledged or not)
    unacknowledged: int  # waiting for an acknowledgement, active or cleared
    active_unacknowledged: int


@dataclass(frozen=True, slots=True)
class AlarmKpis:
    start_us: int
    end_us: int
    now_us: int
    positions: int
    subtree: str | None
    activations: int
    realarms: int
    rates: tuple[Figure, ...]
    peak_10_min: Figure
    flood_figures: tuple[Figure, ...]
    floods: tuple[Flood, ...]
    priorities: PriorityDistribution
    top_10_share: Figure
    bad_actors: tuple[AlarmCount, ...]
    chattering: Figure
    chattering_alarms: tuple[AlarmCount, ...]
    stale_at_now: Figure
    stale_at_now_ids: tuple[str, ...]
    stale_max_on_any_day: Figure
    stale_in_range: tuple[StaleOccurrence, ...]
    now: NowCounts
    series_10_min: tuple[tuple[int, int], ...]  # (bucket start, activations), epoch-aligned
    series_hour: tuple[tuple[int, int], ...]

    def figure(self, key: str) -> Figure:
        """A figure by its `TARGETS` key (rates also as `<key>_incl_realarms`)."""
        every = (
            *self.rates,
            self.peak_10_min,
            *self.flood_figures,
            self.top_10_share,
            self.chattering,
            self.stale_at_now,
            self.stale_max_on_any_day,
        )
        for f in every:
            if f.key == key:
                return f
        raise KeyError(f"no KPI figure {key!r}: known are {', '.join(f.key for f in every)}")

    def to_json(self) -> dict[str, Any]:
        """The JSON the `alarms` command target's `kpis` returns and the console reads: every
        object with a "verdict" is a figure; `series.ten_minute` feeds the rate chart."""
        return {
            "range": {
                "start_us": self.start_us,
                "end_us": self.end_us,
                "now_us": self.now_us,
                "positions": self.positions,
                "subtree": self.subtree,
            },
            "counts": {
                "activations": self.activations,
                "realarms": self.realarms,
                "activations_incl_realarms": self.activations + self.realarms,
            },
            "rates": {f.key: f.to_json() for f in (*self.rates, self.peak_10_min)},
            "flood": {
                **{f.key: f.to_json() for f in self.flood_figures},
                "floods": [_flood_json(f) for f in self.floods],
            },
            "priorities": self.priorities.to_json(),
            "bad_actors": {
                "top_10_share": self.top_10_share.to_json(),
                "top_10": [_count_json(a) for a in self.bad_actors],
            },
            "chattering": {
                "chattering_alarms": self.chattering.to_json(),
                "alarms": [_count_json(a) for a in self.chattering_alarms],
            },
            "stale": {
                "stale_at_now": self.stale_at_now.to_json(),
                "stale_max_on_any_day": self.stale_max_on_any_day.to_json(),
                "at_now": list(self.stale_at_now_ids),
                "in_range": [_stale_json(s) for s in self.stale_in_range],
            },
            "now": {
                "shelved": self.now.shelved,
                "suppressed": self.now.suppressed,
                "out_of_service": self.now.out_of_service,
                "active": self.now.active,
                "unacknowledged": self.now.unacknowledged,
                "active_unacknowledged": self.now.active_unacknowledged,
            },
            "series": {
                "ten_minute": [list(p) for p in self.series_10_min],
                "hour": [list(p) for p in self.series_hour],
            },
        }


def _flood_json(f: Flood) -> dict[str, Any]:
    return {"start_us": f.start_us, "end_us": f.end_us, "activations": f.activations}


def _count_json(a: AlarmCount) -> dict[str, Any]:
    out: dict[str, Any] = {"alarm_id": a.alarm_id, "count": a.count}
    if a.percent is not None:
        out["percent"] = a.percent
    if a.most_in_60_s is not None:
        out["most_in_60_s"] = a.most_in_60_s
    return out


def _stale_json(s: StaleOccurrence) -> dict[str, Any]:
    return {
        "alarm_id": s.alarm_id,
        "occurrence": s.occurrence,
        "active_since_us": s.active_since_us,
        "cleared_us": s.cleared_us,
    }


def is_activation(entry: JournalEntry) -> bool:
    """An annunciated alarm: announced, and opening a new occurrence (not active before)."""
    return (
        entry.event == Event.BECOMES_ABNORMAL.value
        and entry.announced
        and entry.new_state in ACTIVE_STATES
        and entry.old_state not in ACTIVE_STATES
    )


def is_realarm(entry: JournalEntry) -> bool:
    return entry.event == "realarm" and entry.announced


def alarm_kpis(
    entries: Sequence[JournalEntry],
    records: Sequence[AlarmRecord],
    *,
    start_us: int,
    end_us: int,
    now_us: int,
    positions: int = 1,
    subtree: str | None = None,
) -> AlarmKpis:
    """The KPIs over [start_us, end_us) and the asset `subtree` (segment-wise; None: all).

    `entries` are journal entries of any event, and may begin before `start_us` so that what
    was going on at the start (a flood, an occurrence active for a day) is known; entries at or
    after `end_us` are ignored. `records` are the alarms' current records, read at `now_us`.
    """
    if end_us <= start_us:
        raise ValueError(f"the KPI range is empty: end_us ({end_us}) must be after start_us "
                         f"({start_us})")  # fmt: skip
    if positions < 1:
        raise ValueError(f"positions must be 1 or more (operator positions), not {positions}")
    mine = sorted(
        (e for e in entries if e.source_us < end_us and _in(e.asset, subtree)),
        key=lambda e: (e.source_us, e.seq),
    )
    recs = [r for r in records if _in(r.asset, subtree)]
    acts_all = [e for e in mine if is_activation(e)]  # including before the start, for floods
    acts = [e for e in acts_all if e.source_us >= start_us]
    realarms = sum(1 for e in mine if e.source_us >= start_us and is_realarm(e))
    times = [e.source_us for e in acts]
    span = end_us - start_us

    def per(n: int, unit_us: int) -> float:
        return n / (span / unit_us) / positions

    rates: list[Figure] = []
    for suffix, n in (("", len(acts)), ("_incl_realarms", len(acts) + realarms)):
        for key, unit in (("per_10_min", TEN_MIN_US), ("per_hour", HOUR_US), ("per_day", DAY_US)):
            rates.append(Figure(f"activations_{key}{suffix}", per(n, unit)))

    series_10 = _buckets(times, start_us, end_us, TEN_MIN_US)
    series_h = _buckets(times, start_us, end_us, HOUR_US)
    floods = _clip_floods(_floods([e.source_us for e in acts_all]), start_us, end_us, times)
    in_flood = sum(f.end_us - f.start_us for f in floods)
    flood_figures = (
        Figure("percent_time_in_flood", 100.0 * in_flood / span),
        Figure("percent_10_min_periods_over_10", _percent_over(series_10, FLOOD_START_ABOVE)),
        Figure("percent_hours_over_30", _percent_over(series_h, HOUR_BUSY_ABOVE)),
    )

    per_alarm = Counter(e.alarm_id for e in acts)
    top = sorted(per_alarm.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    total = len(acts)
    bad_actors = tuple(AlarmCount(a, n, percent=100.0 * n / total) for a, n in top)
    top_share = 100.0 * sum(n for _, n in top) / total if total else None

    chatter = _chattering(acts)
    stale_now = sorted(
        r.id
        for r in recs
        if r.state.process in ACTIVE_STATES
        and r.active_since_us is not None
        and now_us - r.active_since_us > STALE_AFTER_US
    )
    stale_range = _stale_occurrences(mine, recs, start_us, min(end_us, now_us))
    return AlarmKpis(
        start_us=start_us,
        end_us=end_us,
        now_us=now_us,
        positions=positions,
        subtree=subtree,
        activations=total,
        realarms=realarms,
        rates=tuple(rates),
        peak_10_min=Figure("peak_activations_in_10_min", max((n for _, n in series_10), default=0)),
        flood_figures=flood_figures,
        floods=tuple(floods),
        priorities=PriorityDistribution(Counter(e.priority for e in acts)),
        top_10_share=Figure("top_10_share", top_share),
        bad_actors=bad_actors,
        chattering=Figure("chattering_alarms", len(chatter)),
        chattering_alarms=chatter,
        stale_at_now=Figure("stale_at_now", len(stale_now)),
        stale_at_now_ids=tuple(stale_now),
        stale_max_on_any_day=Figure("stale_max_on_any_day", _most_per_day(stale_range)),
        stale_in_range=tuple(s for s, _ in stale_range),
        now=_now_counts(recs),
        series_10_min=tuple(series_10),
        series_hour=tuple(series_h),
    )


def _in(asset: str, subtree: str | None) -> bool:
    return subtree is None or path_has_prefix(asset, subtree)


def _buckets(times: Sequence[int], start_us: int, end_us: int, size: int) -> list[tuple[int, int]]:
    """Counts per epoch-aligned bucket overlapping [start_us, end_us); only times in the range
    count, so a partial first or last bucket holds what of it lies in the range."""
    counts = Counter(t - t % size for t in times)
    first = start_us - start_us % size
    return [(b, counts.get(b, 0)) for b in range(first, end_us, size)]


def _percent_over(series: Sequence[tuple[int, int]], above: int) -> float:
    return 100.0 * sum(1 for _, n in series if n > above) / len(series)


def _floods(times: Iterable[int]) -> list[tuple[int, int]]:
    """Flood intervals [start, end) by a sliding 10-minute window with hysteresis.

    The count at instant t is the number of activations in (t - 10 min, t]: an activation at a
    counts from a until a + 10 min. A flood starts at the first instant the count exceeds
    FLOOD_START_ABOVE (the 11th activation within 10 minutes) and ends at the first instant after
    it falls below FLOOD_END_BELOW (to 4), per ISA-18.2's "more than 10 alarms per 10 minutes"
    with the end rule "fewer than 5 per 10 minutes" used in its flood analysis. The count only
    changes at an activation or 10 minutes after one, so those instants are all that is looked at.
    """
    steps: defaultdict[int, int] = defaultdict(int)
    for t in times:
        steps[t] += 1
        steps[t + TEN_MIN_US] -= 1
    out: list[tuple[int, int]] = []
    count, started = 0, None
    for at in sorted(steps):
        count += steps[at]
        if started is None and count > FLOOD_START_ABOVE:
            started = at
        elif started is not None and count < FLOOD_END_BELOW:
            out.append((started, at))
            started = None
    return out  # the count ends at 0, so every flood has ended


def _clip_floods(
    floods: Sequence[tuple[int, int]], start_us: int, end_us: int, times: Sequence[int]
) -> list[Flood]:
    out = []
    for s, e in floods:
        s, e = max(s, start_us), min(e, end_us)
        if s < e:
            n = sum(1 for t in times if s <= t < e)
            out.append(Flood(s, e, n))
    return out


def _chattering(acts: Sequence[JournalEntry]) -> tuple[AlarmCount, ...]:
    """Alarms with CHATTER_COUNT or more activations within any CHATTER_WINDOW_US: activations
    at t and t + 60 s are within 60 s of each other, at t + 60.000001 s they are not."""
    by_alarm: defaultdict[str, list[int]] = defaultdict(list)
    for e in acts:
        by_alarm[e.alarm_id].append(e.source_us)
    out = []
    for alarm_id, times in sorted(by_alarm.items()):
        times.sort()
        most = max(bisect_right(times, t + CHATTER_WINDOW_US) - i for i, t in enumerate(times))
        if most >= CHATTER_COUNT:
            out.append(AlarmCount(alarm_id, len(times), most_in_60_s=most))
    return tuple(sorted(out, key=lambda a: (-(a.most_in_60_s or 0), a.alarm_id)))


def _stale_occurrences(
    entries: Sequence[JournalEntry], records: Sequence[AlarmRecord], start_us: int, stop_us: int
) -> list[tuple[StaleOccurrence, tuple[int, int]]]:
    """Occurrences active for more than 24 h at some instant of [start_us, stop_us), each with
    the interval of the range in which it was stale.

    An occurrence runs from its `becomes_abnormal` entry (announced or not: the condition is
    what ages) to its `returns_to_normal`. One whose start lies before the entries given is
    dated by its record's `active_since_us` when it is the record's current occurrence; an
    occurrence whose start cannot be known is not judged (only provably stale ones count).
    """
    since: dict[tuple[str, int], int] = {}
    cleared: dict[tuple[str, int], int] = {}
    for e in entries:
        key = (e.alarm_id, e.occurrence)
        if e.event == Event.BECOMES_ABNORMAL.value:
            since.setdefault(key, e.source_us)
        elif e.event == Event.RETURNS_TO_NORMAL.value:
            cleared.setdefault(key, e.source_us)
    for r in records:
        key = (r.id, r.state.occurrence)
        known = r.state.process in ACTIVE_STATES or key in cleared
        if r.active_since_us is not None and key not in since and known:
            since[key] = r.active_since_us
    out = []
    for (alarm_id, occurrence), began in since.items():
        ended = cleared.get((alarm_id, occurrence))
        stale_from = max(start_us, began + STALE_AFTER_US + 1)
        stale_to = stop_us if ended is None else min(stop_us, ended)
        if stale_from < stale_to:
            occ = StaleOccurrence(alarm_id, occurrence, began, ended)
            out.append((occ, (stale_from, stale_to)))
    out.sort(key=lambda item: (item[0].active_since_us, item[0].alarm_id))
    return out


def _most_per_day(stale: Sequence[tuple[StaleOccurrence, tuple[int, int]]]) -> int:
    """The most occurrences stale on one epoch-aligned (UTC) day of the range."""
    per_day: Counter[int] = Counter()
    for _, (s, e) in stale:
        for day in range(s // DAY_US, (e - 1) // DAY_US + 1):
            per_day[day] += 1
    return max(per_day.values(), default=0)


def _now_counts(records: Sequence[AlarmRecord]) -> NowCounts:
    unacked = {State.UNACKNOWLEDGED, State.RTN_UNACKNOWLEDGED, State.LATCHED_UNACKNOWLEDGED}
    return NowCounts(
        shelved=sum(1 for r in records if r.state.shelving is not Shelving.UNSHELVED),
        suppressed=sum(1 for r in records if r.state.suppressed),
        out_of_service=sum(1 for r in records if r.state.out_of_service),
        active=sum(1 for r in records if r.state.process in ACTIVE_STATES),
        unacknowledged=sum(1 for r in records if r.state.process in unacked),
        active_unacknowledged=sum(1 for r in records if r.state.process is State.UNACKNOWLEDGED),
    )


__all__ = [
    "PRIORITY_GUIDANCE",
    "TARGETS",
    "AlarmCount",
    "AlarmKpis",
    "Figure",
    "Flood",
    "NowCounts",
    "PriorityDistribution",
    "StaleOccurrence",
    "Target",
    "Verdict",
    "alarm_kpis",
    "is_activation",
    "is_realarm",
]
