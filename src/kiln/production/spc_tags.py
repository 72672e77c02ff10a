"""Control charts on a tag's series: subgroups formed from timed values, limits, run rules. Pure.

`SpcDef` is what a user writes: which tag, which chart, how values form subgroups and where the
control limits come from. `SpcChartRun` is fed the tag's (time, value) points in time order and
returns one `SpcPoint` per completed subgroup, judged by the run rules (`spc_rules.LiveRules`);
its state snapshots to JSON, so an engine can stop and carry on where it was.
`chart_over_history` charts a stored series at once for the API, with capability against the
tag's specification limits.

Subgroups. Counted: every `subgroup_size` values of an X̄ chart form one, and every value of an
individuals or attributes chart is one. Timed (`subgroup_s`): time is cut into windows of that
length from the epoch and a window closes when a value of a later window arrives. An X̄ window
takes its first `subgroup_size` values (the usual plan, "n consecutive parts each period"), and
a window with fewer is not charted, since the chart constants hold for one size only; an
individuals window is its last value; an attributes window sums its counts and sample sizes.

Counters (`counter`). A machine's cumulative counter (scrap_count) is charted by its increase
within each timed window, never by its value: increments by `counts.counter_deltas` (resets and
rollovers as there), each in the window of the later of its two samples. n of a p or u chart is
the increase of the `sample_size_counters` in the same window (good_count + scrap_count for a
scrap fraction). The counters come in as separate series (`add_counters`); the run keeps each
one's last sample, so a restart carries on counting where it stopped.

Limits. Every number is computed by `spc` from the subgroups of a reference: the frozen baseline
period (`limits="baseline"`: the subgroups that end in [baseline_start, baseline_end), frozen
when the first subgroup after it completes), or the `rolling_subgroups` subgroups before the one
judged (`limits="rolling"`; a subgroup is judged only once that many precede it, and it is not
part of its own limits). A subgroup without limits is returned unjudged: limits None, no rules.
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, Self

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from kiln.core.values import validate_path
from kiln.production import spc
from kiln.production.counts import counter_deltas, sorted_unique
from kiln.production.spc_rules import LiveRules, RuleSet

ChartKind = Literal["xbar_r", "xbar_s", "imr", "p", "np", "c", "u"]
_VARIABLES_SUBGROUPS = frozenset({"xbar_r", "xbar_s"})
_ATTRIBUTES = frozenset({"p", "np", "c", "u"})
_SIZED = frozenset({"p", "np", "u"})  # count charts that need the sample size n
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")
_US = 1_000_000
_STATE_VERSION = 1


def _check_tag(ref: str) -> str:
    """A tag name on the asset type, or a full tag path."""
    if "/" in ref:
        return validate_path(ref)
    if not _NAME.fullmatch(ref):
        raise ValueError(f"tag {ref!r} is neither a tag name nor a path such as acme/line1/x")
    return ref


TagRef = Annotated[str, AfterValidator(_check_tag)]


def _epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no time zone: give baseline times with an offset")
    return round(moment.timestamp() * _US)


class SpcDef(BaseModel):
    """One control chart on one tag, as a user writes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=f"^{_NAME.pattern}$")
    tag: TagRef = Field(description="tag name on the asset type, or a full tag path")
    chart: ChartKind
    subgroup_size: int | None = Field(
        default=None, ge=1, description="values per X̄ subgroup (default 5); 1 for other charts"
    )
    subgroup_s: float | None = Field(
        default=None, gt=0, description="subgroups by time windows of this length, not by count"
    )
    limits: Literal["baseline", "rolling"] = "rolling"
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None
    rolling_subgroups: int = Field(default=25, ge=2)
    rules: Literal["nelson", "weco"] = "nelson"
    enabled_rules: tuple[int, ...] | None = Field(
        default=None, description="the rule numbers to evaluate; all of the set when omitted"
    )
    priority: Literal["low", "medium", "high", "critical"] = "medium"
    sample_size_tag: TagRef | None = Field(
        default=None, description="p/u charts: the tag giving each count's sample size n"
    )
    sample_size: int | None = Field(default=None, ge=1, description="p/np/u charts: a fixed n")
    skip_repeats: bool | None = Field(
        default=None,
        description="leave out a value equal to the one before (a held value: the machine "
        "idle, the last measurement repeated); by default on for X-bar and I-MR charts",
    )
    counter: bool = Field(
        default=False,
        description="the tag is a cumulative counter: chart its increase in each subgroup_s "
        "window (resets and rollovers handled), not its value",
    )
    rollover: int | None = Field(
        default=None, ge=2, description="counter charts: the counters' range, e.g. 65536 (16 bit)"
    )
    sample_size_counters: tuple[TagRef, ...] | None = Field(
        default=None,
        min_length=1,
        description="counter p/u charts: counters whose summed increase in a window is its n",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        n = self.size
        if self.chart in _VARIABLES_SUBGROUPS and not spc.MIN_SUBGROUP <= n <= spc.MAX_SUBGROUP:
            raise ValueError(
                f"{self.chart} needs subgroup_size {spc.MIN_SUBGROUP}..{spc.MAX_SUBGROUP}, got {n}"
            )
        if self.chart not in _VARIABLES_SUBGROUPS and n != 1:
            raise ValueError(f"{self.chart} charts one value per subgroup: subgroup_size is 1")
        if self.limits == "baseline":
            if self.baseline_start is None or self.baseline_end is None:
                raise ValueError("baseline limits need baseline_start and baseline_end")
            if _epoch_us(self.baseline_start) >= _epoch_us(self.baseline_end):
                raise ValueError("baseline_start must be before baseline_end")
        self._check_counter()
        if self.chart in _SIZED:
            given = (
                (self.sample_size_tag is not None)
                + (self.sample_size is not None)
                + (self.sample_size_counters is not None)
            )
            if given != 1:
                raise ValueError(
                    f"a {self.chart} chart needs one of sample_size_tag or sample_size "
                    "(or sample_size_counters on a counter)"
                )
            if self.chart == "np" and self.sample_size is None:
                raise ValueError("an np chart needs a fixed sample_size; use p for a varying n")
        elif (
            self.sample_size_tag is not None
            or self.sample_size is not None
            or self.sample_size_counters is not None
        ):
            raise ValueError(f"a {self.chart} chart takes no sample size")
        if self.enabled_rules is not None:
            known = {r.number for r in self.rule_set.rules}
            unknown = sorted(set(self.enabled_rules) - known)
            if unknown or not self.enabled_rules:
                raise ValueError(
                    f"enabled_rules {list(self.enabled_rules)}: choose from {sorted(known)}"
                )
        return self

    def _check_counter(self) -> None:
        """Counters are charted by their increases per time window: only attributes charts
        count increases, and only a window of time gives an increase a subgroup."""
        if not self.counter:
            if self.sample_size_counters is not None:
                raise ValueError("sample_size_counters needs counter: true (the tag a counter)")
            if self.rollover is not None:
                raise ValueError("rollover is for counter charts: set counter: true")
            return
        if self.chart not in _ATTRIBUTES:
            raise ValueError(
                f"counter: true charts a counter's increases: chart p, np, c or u, not {self.chart}"
            )
        if self.subgroup_s is None:
            raise ValueError("counter: true needs timed subgroups: give subgroup_s")
        if self.sample_size_tag is not None:
            raise ValueError(
                "counter: true takes n from sample_size_counters (counters too), "
                "not sample_size_tag"
            )
        if self.skip_repeats:
            raise ValueError(
                "skip_repeats with counter: true: a repeated count is an increase of 0"
            )
        counters = self.sample_size_counters or ()
        if len(set(counters)) != len(counters):
            raise ValueError("sample_size_counters names a counter twice")

    @property
    def counter_tags(self) -> tuple[str, ...]:
        """A counter chart's counters, each once: the charted tag, then those of n."""
        if not self.counter:
            return ()
        return tuple(dict.fromkeys((self.tag, *(self.sample_size_counters or ()))))

    @property
    def skips_repeats(self) -> bool:
        """Measurements are charted, not repeats of them: a variables chart leaves out a value
        equal to the one before (a continuous measurement does not repeat to the last digit
        unless it is being held); counts repeat legitimately and are all charted."""
        if self.skip_repeats is not None:
            return self.skip_repeats
        return self.chart in ("xbar_r", "xbar_s", "imr")

    @property
    def size(self) -> int:
        """The subgroup size in effect: 5 by default for X̄ charts, 1 for the others."""
        if self.subgroup_size is not None:
            return self.subgroup_size
        return 5 if self.chart in _VARIABLES_SUBGROUPS else 1

    @property
    def rule_set(self) -> RuleSet:
        return RuleSet.NELSON if self.rules == "nelson" else RuleSet.WESTERN_ELECTRIC


@dataclass(frozen=True, slots=True)
class SpcPoint:
    """One completed subgroup: its time (of its last value), statistic(s), limits and rules.

    `value` is the plotted statistic (mean, individual, proportion, count or rate); `spread`
    the range, standard deviation or moving range of a variables chart (None for attributes
    and the first individual). `limits`/`spread_limits` are None while the point is unjudged.
    """

    time_us: int
    value: float
    spread: float | None
    n: float  # values in the subgroup, or the sample size of a count
    limits: spc.Limits | None
    spread_limits: spc.Limits | None
    rules: tuple[int, ...]

    @property
    def spread_beyond(self) -> bool:
        """The spread outside its own control limits (the R, S or MR chart's rule 1)."""
        if self.spread is None or self.spread_limits is None:
            return False
        return not self.spread_limits.lower <= self.spread <= self.spread_limits.upper

    def to_json(self) -> dict[str, Any]:
        return {
            "time_us": self.time_us,
            "value": self.value,
            "spread": self.spread,
            "n": self.n,
            "limits": _limits_json(self.limits),
            "spread_limits": _limits_json(self.spread_limits),
            "rules": list(self.rules),
            "spread_beyond": self.spread_beyond,
        }


def _limits_json(limits: spc.Limits | None) -> dict[str, float] | None:
    if limits is None:
        return None
    return {"cl": limits.centre, "ucl": limits.upper, "lcl": limits.lower, "sigma": limits.sigma}


# A subgroup as the limits are computed from it: an X̄ subgroup's values, an individual, or an
# attributes subgroup's [count, sample size]. Lists, so that state round-trips through JSON.
Record = list[float] | float


class SpcChartRun:
    """One chart fed live: points in, judged subgroups out. No I/O; `snapshot` is JSON-able."""

    def __init__(self, defn: SpcDef, *, keep_subgroups: bool = False) -> None:
        self.defn = defn
        # The X̄ subgroups' values, for capability over a stored series; not kept live.
        self.subgroups: list[list[float]] | None = [] if keep_subgroups else None
        self._pending: list[tuple[int, float, float]] = []  # (time_us, value, sample size)
        self._window: int | None = None  # time window of the pending values (timed subgroups)
        self._last_us: int | None = None
        self._last_value: float | None = None  # the last value fed (repeats are left out)
        self._skips = defn.skips_repeats
        self._previous: float | None = None  # last individual, for the moving range
        self._frozen = False
        self._reference: deque[Record] = deque(
            maxlen=defn.rolling_subgroups if defn.limits == "rolling" else None
        )
        self._window_us = None if defn.subgroup_s is None else round(defn.subgroup_s * _US)
        self._baseline: tuple[int, int] | None = None
        if defn.baseline_start is not None and defn.baseline_end is not None:
            self._baseline = (_epoch_us(defn.baseline_start), _epoch_us(defn.baseline_end))
        self._zs: deque[float] = deque(maxlen=max(r.m for r in defn.rule_set.rules))
        self._rules = LiveRules(defn.rule_set)
        self._enabled = None if defn.enabled_rules is None else frozenset(defn.enabled_rules)
        # Counter charts: each counter's last good sample (time, value), None before its first.
        self._counters: dict[str, tuple[int, float] | None] = dict.fromkeys(defn.counter_tags)
        # The last window some counter was first seen in: up to it windows are part-known.
        self._partial_until: int | None = None

    # -- feeding ------------------------------------------------------------------------------

    def add(
        self,
        times: Sequence[int],
        values: Sequence[float],
        sizes: Sequence[float] | None = None,
    ) -> list[SpcPoint]:
        """Feed points in time order (int microseconds); return the subgroups they complete.

        `sizes` gives each count's sample size when the chart reads it from `sample_size_tag`.
        A point not later than the last one fed is an error: the caller orders its input.
        """
        if len(times) != len(values):
            raise ValueError(f"{len(times)} times but {len(values)} values")
        if self.defn.counter:
            if sizes is not None or self.defn.sample_size_counters is not None:
                raise ValueError(
                    f"counter chart {self.defn.name!r}: give its counters to add_counters"
                )
            return self.add_counters({self.defn.tag: (times, values)})
        if self.defn.sample_size_tag is not None and (sizes is None or len(sizes) != len(values)):
            raise ValueError(f"{self.defn.chart} chart {self.defn.name!r}: give one size each")
        out: list[SpcPoint] = []
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            if self._last_us is not None and t <= self._last_us:
                raise ValueError(
                    f"chart {self.defn.name!r}: point at {t} us is not after the last at "
                    f"{self._last_us} us; feed points in time order"
                )
            n = float(sizes[i]) if sizes is not None else float(self.defn.sample_size or 1)
            self._last_us = t
            if self._skips and self._last_value == float(v):
                continue  # held, not measured again
            self._last_value = float(v)
            out.extend(self._take(int(t), float(v), n))
        return out

    def add_counters(
        self, series: Mapping[str, tuple[Sequence[int], Sequence[float]]]
    ) -> list[SpcPoint]:
        """Feed a counter chart its counters' cumulative samples, keyed by tag (the charted
        tag and those of `sample_size_counters`; a counter with nothing new may be left out);
        return the windows they complete.

        Each series is taken as `counter_deltas` takes it (any order, NaN skipped, a repeat
        counted once). A sample older than its counter's last is late: it is left out, and its
        increase is counted with the next sample. An increase older than the open window (one
        counter's samples behind another's) is counted in the open window: a closed one is not
        reopened. Fed together or cut by time anywhere, the same samples give the same points.
        """
        if not self.defn.counter:
            raise ValueError(f"chart {self.defn.name!r} is not a counter chart: use add")
        unknown = sorted(set(series) - set(self._counters))
        if unknown:
            raise ValueError(
                f"chart {self.defn.name!r} counts {list(self._counters)}, not {unknown}"
            )
        n_weight = set(self.defn.sample_size_counters or ())
        rows: list[tuple[int, float, float]] = []  # (time, increase of d, increase of n)
        for tag in self._counters:  # in a fixed order: rows at one instant sort stably
            if tag not in series:
                continue
            times, deltas = self._increments(tag, *series[tag])
            in_d, in_n = tag == self.defn.tag, tag in n_weight
            rows.extend(
                (int(t), float(d) if in_d else 0.0, float(d) if in_n else 0.0)
                for t, d in zip(times, deltas, strict=True)
            )
        rows.sort(key=lambda r: r[0])
        out: list[SpcPoint] = []
        for t, d, n in rows:
            out.extend(self._take_increase(t, d, n))
        return out

    def _increments(
        self, tag: str, times: Sequence[int], values: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """One counter's new increases, and its last sample remembered for the next feed."""
        t = np.asarray(times, dtype=np.int64)
        v = np.asarray(values, dtype=np.float64)
        if t.shape != v.shape or t.ndim != 1:
            raise ValueError(f"counter {tag!r}: {t.shape} times but {v.shape} values")
        last = self._counters[tag]
        keep = np.isfinite(v) if last is None else np.isfinite(v) & (t >= last[0])
        t, v = t[keep], v[keep]
        if not len(t):
            return t, v
        increases = counter_deltas(t, v, previous=last, rollover=self.defn.rollover)
        # The last sample as counter_deltas ordered them (by time, input order within an
        # instant, a repeated sample once), so the next feed goes on from the same one.
        t, v = sorted_unique(t, v)
        self._counters[tag] = (int(t[-1]), float(v[-1]))
        if last is None:
            assert self._window_us is not None  # counter charts are timed (SpcDef)
            first = int(t[0]) // self._window_us
            self._partial_until = (
                first if self._partial_until is None else max(first, self._partial_until)
            )
        return increases

    def _take_increase(self, t: int, d: float, n: float) -> list[SpcPoint]:
        assert self._window_us is not None
        window = t // self._window_us
        out: list[SpcPoint] = []
        if self._window is not None and window > self._window:
            if self._pending:
                out.extend(self._close())
            self._window = window
        elif self._window is None:
            self._window = window
        if self._pending:
            last_t, d_sum, n_sum = self._pending[0]
            self._pending = [(max(last_t, t), d_sum + d, n_sum + n)]
        else:
            self._pending = [(t, d, n)]
        return out

    def flush(self, end_us: int | None = None) -> list[SpcPoint]:
        """Close a timed subgroup still open (its window has ended with no later value); with
        `end_us`, only if its window ended by then: a window cut short by the end of a range
        holds part of its values (a count too low), and the live chart never closes it."""
        if self._window_us is None or not self._pending:
            return []
        open_at_end = (
            end_us is not None
            and self._window is not None
            and (self._window + 1) * self._window_us > end_us
        )
        return [] if open_at_end else self._close()

    def _take(self, t: int, v: float, n: float) -> list[SpcPoint]:
        out: list[SpcPoint] = []
        if self._window_us is not None:
            window = t // self._window_us
            if self._pending and window != self._window:
                out.extend(self._close())
            self._window = window
            self._pending.append((t, v, n))
            return out
        self._pending.append((t, v, n))
        if len(self._pending) >= self.defn.size:
            out.extend(self._close())
        return out

    def _close(self) -> list[SpcPoint]:
        pending, self._pending = self._pending, []
        chart = self.defn.chart
        if self.defn.counter:
            return self._close_counts(pending)
        if chart in _VARIABLES_SUBGROUPS:
            if len(pending) < self.defn.size:
                return []  # a short timed window: not a subgroup of the chart's size
            taken = pending[: self.defn.size]
            group = [v for _, v, _ in taken]
            record: Record = group
            time_us = taken[-1][0]
            if self.subgroups is not None:
                self.subgroups.append(group)
        elif chart == "imr":
            time_us, value, _ = pending[-1]
            record = value
        else:
            record = [sum(v for _, v, _ in pending), sum(n for _, _, n in pending)]
            time_us = pending[-1][0]
        return [self._judge(time_us, record)]

    def _close_counts(self, pending: list[tuple[int, float, float]]) -> list[SpcPoint]:
        """A counter chart's window (one pending row: last time, increases of d and of n)."""
        window, partial = self._window, self._partial_until
        started = all(last is not None for last in self._counters.values())
        if not started or window is None or partial is None or window <= partial:
            return []  # a counter's increases before its first sample are unknown
        time_us, count, produced = pending[0]
        if self.defn.sample_size_counters is None:
            size = float(self.defn.sample_size or 1)  # fixed n per window (c: one window)
        elif produced == 0:
            # Nothing produced in the window (the machine idle): a fraction of nothing is 0/0,
            # and idle time is no sample of the process; charting it as 0 would drag the centre.
            return []
        else:
            size = produced
        return [self._judge(time_us, [count, size])]

    # -- judging ------------------------------------------------------------------------------

    def _judge(self, time_us: int, record: Record) -> SpcPoint:
        defn = self.defn
        if self._baseline is not None and defn.limits == "baseline" and not self._frozen:
            start, end = self._baseline
            if time_us < end:
                if time_us >= start:
                    self._reference.append(record)
                return self._unjudged(time_us, record)
            self._frozen = len(self._reference) >= self._minimum()
            if not self._frozen:
                self._reference.clear()  # too little baseline: nothing to freeze, ever
                self._frozen = True
        has_limits = len(self._reference) >= (
            defn.rolling_subgroups if defn.limits == "rolling" else self._minimum()
        )
        if not has_limits:
            point = self._unjudged(time_us, record)
        else:
            point = self._point(time_us, record, list(self._reference))
            point = self._apply_rules(point)
        if defn.limits == "rolling":
            self._reference.append(record)
        if defn.chart == "imr":
            assert isinstance(record, float)
            self._previous = record
        return point

    def _minimum(self) -> int:
        """Fewest reference subgroups limits are computed from (a moving range needs two)."""
        return 2 if self.defn.chart == "imr" else 1

    def _unjudged(self, time_us: int, record: Record) -> SpcPoint:
        value, spread, n = self._statistic(record)
        if self.defn.chart == "imr":
            assert isinstance(record, float)
            self._previous = record
        return SpcPoint(time_us, value, spread, n, None, None, ())

    def _statistic(self, record: Record) -> tuple[float, float | None, float]:
        chart = self.defn.chart
        if isinstance(record, float):
            spread = None if self._previous is None else abs(record - self._previous)
            return record, spread, 1.0
        if chart == "xbar_r":
            return statistics.fmean(record), max(record) - min(record), float(len(record))
        if chart == "xbar_s":
            return statistics.fmean(record), statistics.stdev(record), float(len(record))
        count, n = record
        if chart in ("p", "u"):
            return count / n, None, n
        return count, None, n

    def _point(self, time_us: int, record: Record, ref: list[Record]) -> SpcPoint:
        """The subgroup against limits computed by `spc` from the reference subgroups."""
        chart = self.defn.chart
        if chart in _VARIABLES_SUBGROUPS:
            assert isinstance(record, list)
            groups = [r for r in ref if isinstance(r, list)]
            if chart == "xbar_r":
                vc = spc.xbar_r([record], spc.xbar_r_baseline(groups))
            else:
                vc = spc.xbar_s([record], spc.xbar_s_baseline(groups))
            return SpcPoint(
                time_us,
                vc.location.values[0],
                vc.spread.values[0],
                float(len(record)),
                vc.location.limits[0],
                vc.spread.limits[0],
                (),
            )
        if chart == "imr":
            assert isinstance(record, float)
            individuals = [r for r in ref if isinstance(r, float)]
            base = spc.i_mr_baseline(individuals)
            before = record if self._previous is None else self._previous
            vc = spc.i_mr([before, record], base)
            spread = None if self._previous is None else vc.spread.values[0]
            return SpcPoint(
                time_us, record, spread, 1.0, vc.location.limits[1], vc.spread.limits[0], ()
            )
        assert isinstance(record, list)
        count, n = _count(record[0]), record[1]
        pairs = [(_count(r[0]), r[1]) for r in ref if isinstance(r, list)]
        counts = [c for c, _ in pairs]
        if chart == "p":
            p_bar = spc.p_centre(counts, [_count(s) for _, s in pairs])
            c = spc.p_chart([count], [_count(n)], p_bar)
        elif chart == "np":
            # p̄ pooled over the reference's own sizes: a timed window may hold several samples.
            p_bar = spc.p_centre(counts, [_count(s) for _, s in pairs])
            c = spc.np_chart([count], _count(n), p_bar)
        elif chart == "c":
            c = spc.c_chart([count], statistics.fmean(counts))
        else:
            c = spc.u_chart([count], [n], spc.u_centre(counts, [s for _, s in pairs]))
        return SpcPoint(time_us, c.values[0], None, n, c.limits[0], None, ())

    def _apply_rules(self, point: SpcPoint) -> SpcPoint:
        assert point.limits is not None
        if point.limits.sigma <= 0:
            return point  # no variation in the reference: nothing can be put in sigma units
        z = point.limits.standardize(point.value)
        self._zs.append(z)
        fired = tuple(
            v.rule for v in self._rules.push(z) if self._enabled is None or v.rule in self._enabled
        )
        return SpcPoint(
            point.time_us,
            point.value,
            point.spread,
            point.n,
            point.limits,
            point.spread_limits,
            fired,
        )

    # -- state --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to carry on, as JSON-able values; `restore` takes it back."""
        return {
            "version": _STATE_VERSION,
            "definition": self.defn.model_dump(mode="json"),
            "pending": [list(p) for p in self._pending],
            "window": self._window,
            "last_us": self._last_us,
            "last_value": self._last_value,
            "previous": self._previous,
            "frozen": self._frozen,
            "reference": list(self._reference),
            "zs": list(self._zs),
            "counters": {k: None if v is None else list(v) for k, v in self._counters.items()},
            "partial_until": self._partial_until,
        }

    @classmethod
    def restore(cls, defn: SpcDef, state: dict[str, Any]) -> SpcChartRun:
        """A run continuing from `snapshot()`; refused if it was taken for another definition
        (limits computed for one chart do not carry over to another)."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"SPC state version {state.get('version')!r} is not understood")
        try:
            # Compared as definitions, not as dicts: a state saved before a field was added
            # lacks its key, and its default is what that chart had.
            saved_defn = SpcDef.model_validate(state["definition"])
        except ValidationError:
            saved_defn = None
        if saved_defn != defn:
            raise ValueError(f"the saved state of chart {defn.name!r} is for another definition")
        run = cls(defn)
        run._pending = [(int(t), float(v), float(n)) for t, v, n in state["pending"]]
        run._window = state["window"]
        run._last_us = state["last_us"]
        run._last_value = state.get("last_value")
        run._previous = state["previous"]
        run._frozen = bool(state["frozen"])
        saved = state.get("counters") or {}
        for tag in run._counters:
            last = saved.get(tag)
            run._counters[tag] = None if last is None else (int(last[0]), float(last[1]))
        run._partial_until = state.get("partial_until")
        run._reference.extend(
            [float(x) for x in r] if isinstance(r, list) else float(r) for r in state["reference"]
        )
        # The rules only look at the last points: replaying them rebuilds their window exactly.
        for z in state["zs"]:
            run._zs.append(float(z))
            run._rules.push(float(z))
        return run


def _count(value: float) -> int:
    if value < 0 or not float(value).is_integer():
        raise ValueError(f"{value} is not a count: attributes charts take whole numbers >= 0")
    return int(value)


# --- a stored series at once -------------------------------------------------------------------


class SpecSide(Protocol):
    """Specification limits as `kiln.model.SpecLimits` holds them (read only)."""

    @property
    def lsl(self) -> float | None: ...
    @property
    def usl(self) -> float | None: ...
    @property
    def target(self) -> float | None: ...


def chart_over_history(
    defn: SpcDef,
    times: Sequence[int],
    values: Sequence[float],
    spec: SpecSide | None,
    sizes: Sequence[float] | None = None,
    counters: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
    end_us: int | None = None,
) -> dict[str, Any]:
    """A whole stored series charted as the live run would have: points, the latest limits,
    the violations, and capability against `spec` (None without spec limits, for attributes
    charts, or with too little data). A counter chart takes its `sample_size_counters`'
    series in `counters`, keyed by tag. A timed window still open at `end_us` is not charted."""
    run = SpcChartRun(defn, keep_subgroups=True)
    if defn.counter:
        points = run.add_counters({**(counters or {}), defn.tag: (times, values)})
    else:
        points = run.add(times, values, sizes)
    points += run.flush(end_us)
    judged = [p for p in points if p.limits is not None]
    latest = judged[-1] if judged else None
    return {
        "name": defn.name,
        "tag": defn.tag,
        "chart": defn.chart,
        "priority": defn.priority,
        "points": [p.to_json() for p in points],
        "limits": None if latest is None else _limits_json(latest.limits),
        "spread_limits": None if latest is None else _limits_json(latest.spread_limits),
        "violations": [{"time_us": p.time_us, "rules": list(p.rules)} for p in points if p.rules],
        "capability": _capability(defn, run, points, spec),
    }


def _capability(
    defn: SpcDef, run: SpcChartRun, points: list[SpcPoint], spec: SpecSide | None
) -> dict[str, float | None] | None:
    if spec is None or defn.chart in _ATTRIBUTES:
        return None
    try:
        if defn.chart == "imr":
            cap = spc.capability_individuals([p.value for p in points], spec.lsl, spec.usl)
        else:
            cap = spc.capability(run.subgroups or [], spec.lsl, spec.usl)
    except (ValueError, statistics.StatisticsError):
        return None  # too few values for a sigma
    return {
        "mean": cap.mean,
        "sigma_within": cap.sigma_within,
        "sigma_overall": cap.sigma_overall,
        "lsl": spec.lsl,
        "usl": spec.usl,
        "target": spec.target,
        "cp": cap.cp,
        "cpk": cap.cpk,
        "pp": cap.pp,
        "ppk": cap.ppk,
    }


__all__ = ["ChartKind", "SpcChartRun", "SpcDef", "SpcPoint", "SpecSide", "chart_over_history"]
