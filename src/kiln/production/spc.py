"""Statistical process control: Shewhart charts, their constants, and process capability. Pure.

Charts: X̄-R, X̄-S and I-MR for measured values, p, np, c and u for counts. A chart is the
plotted statistic and, for every point, its centre line, sigma and 3-sigma limits (`Limits`).
The centre and spread come from a *baseline*: computed over the charted data itself, or frozen
from a reference period and passed in, so later data is judged against limits that do not move
with it.
The p and u charts take a subgroup size per point and then have limits per point.

The control chart constants are computed, not transcribed, from their definitions:

    d2(n) = E[W],  d3(n) = sd[W]      W the range of n independent standard normal values
    c4(n) = √(2/(n-1)) Γ(n/2) / Γ((n-1)/2)     E[S] = c4 sigma, S the sample standard deviation
    A2 = 3 / (d2 √n)        D3 = max(0, 1 - 3 d3/d2)        D4 = 1 + 3 d3/d2
    A3 = 3 / (c4 √n)        B3 = max(0, 1 - 3 √(1-c4²)/c4)  B4 = 1 + 3 √(1-c4²)/c4
    E2 = 3 / d2(2)          (individuals limits from the mean moving range)

d2 and d3 are the first two moments of the range, integrated numerically (Simpson's rule, step
0.05, which gives them to better than 1e-7): with Φ the standard normal distribution function,

    E[W]  =  ∫ P(min < x < max) dx            = ∫ 1 - Φ(x)^n - (1-Φ(x))^n dx
    E[W²] = 2 ∫∫_{x<y} P(min < x, y < max)    = 2 ∫_0^∞ ∫ 1 - (1-Φ(x))^n - Φ(x+w)^n
                                                          + (Φ(x+w) - Φ(x))^n dx dw

((max - min)² / 2 is the area of the triangle min < x < y < max, hence the double integral.)
The values match the published tables (tests/production/test_spc.py names the table).

Capability: Cp and Cpk use the within-subgroup sigma (R̄/d2, or MR̄/d2(2) for individuals), Pp
and Ppk the overall sample standard deviation; a missing specification limit makes them
one-sided.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

MIN_SUBGROUP = 2
MAX_SUBGROUP = 50  # the integration range below holds the range distribution up to here
SIGMA_MULTIPLE = 3.0  # Shewhart's 3-sigma limits

_STEP = 0.05  # integration step, in units of sigma
_X_HALF_WIDTH = 7.0  # P(min < x < max) is below 50 Φ(-7) ≈ 6e-11 outside ±7
_W_MAX = 10.0  # P(W > 10) is negligible for n ≤ 50


@dataclass(frozen=True, slots=True)
class Constants:
    """Control chart constants for subgroups of `n` values; the symbols are the standard's."""

    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    B3: float
    B4: float
    D3: float
    D4: float
    E2: float


def constants(n: int) -> Constants:
    """The constants for subgroup size `n` (2..50), computed once and cached."""
    if not MIN_SUBGROUP <= n <= MAX_SUBGROUP:
        raise ValueError(
            f"subgroup size {n} is outside {MIN_SUBGROUP}..{MAX_SUBGROUP}: a subgroup needs at "
            "least two values for a range; for single values use the I-MR chart"
        )
    return _constants(n)


@functools.cache
def _constants(n: int) -> Constants:
    d2, d3 = _range_moments(n)
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    s_spread = SIGMA_MULTIPLE * math.sqrt(1 - c4 * c4) / c4
    r_spread = SIGMA_MULTIPLE * d3 / d2
    d2_pair, _ = _range_moments(2)
    return Constants(
        n=n,
        d2=d2,
        d3=d3,
        c4=c4,
        A2=SIGMA_MULTIPLE / (d2 * math.sqrt(n)),
        A3=SIGMA_MULTIPLE / (c4 * math.sqrt(n)),
        B3=max(0.0, 1 - s_spread),
        B4=1 + s_spread,
        D3=max(0.0, 1 - r_spread),
        D4=1 + r_spread,
        E2=SIGMA_MULTIPLE / d2_pair,
    )


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _simpson(ys: Sequence[float], h: float) -> float:
    return h / 3 * (ys[0] + ys[-1] + 4 * sum(ys[1:-1:2]) + 2 * sum(ys[2:-1:2]))


@functools.cache
def _range_moments(n: int) -> tuple[float, float]:
    """(d2, d3): mean and standard deviation of the range of n standard normal values."""
    nx = round(2 * _X_HALF_WIDTH / _STEP)  # even, as Simpson's rule needs
    nw = round(_W_MAX / _STEP)
    # One grid serves x and x + w: both are multiples of the step from -_X_HALF_WIDTH.
    cdf = [_normal_cdf(-_X_HALF_WIDTH + i * _STEP) for i in range(nx + nw + 1)]
    all_above = [(1 - p) ** n for p in cdf]  # P(min > x)
    all_below = [p**n for p in cdf]  # P(max < x)
    mean = _simpson([1 - all_above[i] - all_below[i] for i in range(nx + 1)], _STEP)
    inner = [
        _simpson(
            [
                1 - all_above[i] - all_below[i + k] + (cdf[i + k] - cdf[i]) ** n
                for i in range(nx + 1)
            ],
            _STEP,
        )
        for k in range(nw + 1)
    ]
    second_moment = 2 * _simpson(inner, _STEP)
    return mean, math.sqrt(second_moment - mean * mean)


# --- charts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Centre line, sigma of the plotted statistic, and the control limits around the centre.

    A limit that would fall outside what the statistic can take (a negative range, a
    proportion above 1) is clamped there, so `lower` and `upper` need not be symmetric; the
    rules (`spc_rules`) use `centre` and `sigma`.
    """

    centre: float
    sigma: float
    lower: float
    upper: float

    @classmethod
    def around(
        cls, centre: float, sigma: float, floor: float | None = None, ceiling: float | None = None
    ) -> Limits:
        lower = centre - SIGMA_MULTIPLE * sigma
        upper = centre + SIGMA_MULTIPLE * sigma
        if floor is not None:
            lower = max(floor, lower)
        if ceiling is not None:
            upper = min(ceiling, upper)
        return cls(centre, sigma, lower, upper)

    def standardize(self, value: float) -> float:
        """(value - centre) / sigma: the value in sigma units, what the run rules read."""
        if self.sigma <= 0:
            raise ValueError(
                f"the limits around {self.centre} have sigma = {self.sigma}: the baseline shows no "
                "variation, so no value can be placed in sigma units; choose a baseline period in "
                "which the process varied"
            )
        return (value - self.centre) / self.sigma


@dataclass(frozen=True, slots=True)
class Chart:
    """The plotted values and, point by point, the limits they are judged against."""

    values: tuple[float, ...]
    limits: tuple[Limits, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.limits):
            raise ValueError(f"{len(self.values)} values but {len(self.limits)} limits")

    @property
    def beyond_limits(self) -> tuple[int, ...]:
        """Indices of the points outside their control limits."""
        return tuple(
            i
            for i, (v, lim) in enumerate(zip(self.values, self.limits, strict=True))
            if v < lim.lower or v > lim.upper
        )

    def standardized(self) -> tuple[float, ...]:
        """Every point in sigma units of its own limits: the input of `spc_rules`."""
        return tuple(lim.standardize(v) for v, lim in zip(self.values, self.limits, strict=True))


class Spread(Enum):
    """Which dispersion statistic a variables baseline holds."""

    RANGE = "R̄"
    STDEV = "S̄"
    MOVING_RANGE = "MR̄"


@dataclass(frozen=True, slots=True)
class VariablesBaseline:
    """What the limits of a variables chart are computed from: the grand mean, the mean
    dispersion (`spread`, of kind `kind`) and the subgroup size (2 for a moving range)."""

    mean: float
    spread: float
    n: int
    kind: Spread


@dataclass(frozen=True, slots=True)
class VariablesChart:
    """A location chart (X̄ or individuals) and its dispersion chart (R, S or MR)."""

    location: Chart
    spread: Chart
    baseline: VariablesBaseline


def _finite(values: Sequence[float], what: str) -> None:
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise ValueError(f"{what} {i} is {v}: drop it or replace it before charting")


def _subgroups(subgroups: Sequence[Sequence[float]], n: int | None = None) -> int:
    """Check the subgroups (none empty, all of one size, finite values); return the size."""
    if not subgroups:
        raise ValueError("no subgroups: a chart needs at least one")
    size = n if n is not None else len(subgroups[0])
    for i, group in enumerate(subgroups):
        if len(group) != size:
            raise ValueError(
                f"subgroup {i} has {len(group)} values, expected {size}: X̄ charts need subgroups "
                "of one size (the constants depend on it)"
            )
        _finite(group, f"subgroup {i}, value")
    constants(size)  # raises for a size without constants
    return size


def _check_baseline(baseline: VariablesBaseline, kind: Spread, n: int) -> None:
    if baseline.kind is not kind:
        raise ValueError(
            f"the baseline holds {baseline.kind.value} but this chart needs {kind.value}: "
            "compute it with the baseline function of the same chart"
        )
    if baseline.n != n:
        raise ValueError(
            f"the baseline is for subgroups of {baseline.n} and the data has {n}: limits of one "
            "subgroup size do not apply to another"
        )


def _range(group: Sequence[float]) -> float:
    return max(group) - min(group)


def xbar_r_baseline(subgroups: Sequence[Sequence[float]]) -> VariablesBaseline:
    """X̄̄ and R̄ of `subgroups` (all of one size)."""
    n = _subgroups(subgroups)
    return VariablesBaseline(
        mean=statistics.fmean(statistics.fmean(g) for g in subgroups),
        spread=statistics.fmean(_range(g) for g in subgroups),
        n=n,
        kind=Spread.RANGE,
    )


def xbar_r(
    subgroups: Sequence[Sequence[float]], baseline: VariablesBaseline | None = None
) -> VariablesChart:
    """X̄-R chart: X̄̄ ± A2 R̄ and [D3 R̄, D4 R̄]; limits from `baseline`, else from the data."""
    n = _subgroups(subgroups)
    base = baseline or xbar_r_baseline(subgroups)
    _check_baseline(base, Spread.RANGE, n)
    k = constants(n)
    r_bar = base.spread
    location = Limits.around(base.mean, k.A2 * r_bar / SIGMA_MULTIPLE)  # sigma of X̄ = R̄/(d2 √n)
    spread = Limits(r_bar, k.d3 * r_bar / k.d2, k.D3 * r_bar, k.D4 * r_bar)
    means = tuple(statistics.fmean(g) for g in subgroups)
    ranges = tuple(_range(g) for g in subgroups)
    return VariablesChart(
        Chart(means, (location,) * len(means)), Chart(ranges, (spread,) * len(ranges)), base
    )


def xbar_s_baseline(subgroups: Sequence[Sequence[float]]) -> VariablesBaseline:
    """X̄̄ and S̄ (mean of the subgroups' sample standard deviations)."""
    n = _subgroups(subgroups)
    return VariablesBaseline(
        mean=statistics.fmean(statistics.fmean(g) for g in subgroups),
        spread=statistics.fmean(statistics.stdev(g) for g in subgroups),
        n=n,
        kind=Spread.STDEV,
    )


def xbar_s(
    subgroups: Sequence[Sequence[float]], baseline: VariablesBaseline | None = None
) -> VariablesChart:
    """X̄-S chart: X̄̄ ± A3 S̄ and [B3 S̄, B4 S̄]; limits from `baseline`, else from the data."""
    n = _subgroups(subgroups)
    base = baseline or xbar_s_baseline(subgroups)
    _check_baseline(base, Spread.STDEV, n)
    k = constants(n)
    s_bar = base.spread
    location = Limits.around(base.mean, k.A3 * s_bar / SIGMA_MULTIPLE)
    sigma_s = s_bar * math.sqrt(1 - k.c4 * k.c4) / k.c4
    spread = Limits(s_bar, sigma_s, k.B3 * s_bar, k.B4 * s_bar)
    means = tuple(statistics.fmean(g) for g in subgroups)
    stdevs = tuple(statistics.stdev(g) for g in subgroups)
    return VariablesChart(
        Chart(means, (location,) * len(means)), Chart(stdevs, (spread,) * len(stdevs)), base
    )


def _moving_ranges(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(abs(b - a) for a, b in itertools.pairwise(values))


def i_mr_baseline(values: Sequence[float]) -> VariablesBaseline:
    """Mean of the individual values and MR̄, the mean moving range of 2."""
    if len(values) < 2:
        raise ValueError(f"{len(values)} value(s): a moving range needs at least two")
    _finite(values, "value")
    return VariablesBaseline(
        mean=statistics.fmean(values),
        spread=statistics.fmean(_moving_ranges(values)),
        n=2,
        kind=Spread.MOVING_RANGE,
    )


def i_mr(values: Sequence[float], baseline: VariablesBaseline | None = None) -> VariablesChart:
    """Individuals and moving-range chart: x̄ ± E2 MR̄ and [0, D4(2) MR̄].

    The moving-range chart has one point fewer: its point k is |x[k+1] - x[k]|.
    """
    base = baseline or i_mr_baseline(values)
    _finite(values, "value")
    _check_baseline(base, Spread.MOVING_RANGE, 2)
    k = constants(2)
    mr_bar = base.spread
    location = Limits.around(base.mean, k.E2 * mr_bar / SIGMA_MULTIPLE)
    spread = Limits(mr_bar, k.d3 * mr_bar / k.d2, k.D3 * mr_bar, k.D4 * mr_bar)
    ranges = _moving_ranges(values)
    return VariablesChart(
        Chart(tuple(values), (location,) * len(values)),
        Chart(ranges, (spread,) * len(ranges)),
        base,
    )


# Attributes charts: the baseline is the centre (p̄, c̄ or ū); sigma follows from it and, for p
# and u, from each point's subgroup size.


def _counts(counts: Sequence[int], sizes: Sequence[float], what: str) -> None:
    if len(counts) != len(sizes):
        raise ValueError(f"{len(counts)} counts but {len(sizes)} subgroup sizes: give one each")
    if not counts:
        raise ValueError("no subgroups: a chart needs at least one")
    for i, (c, n) in enumerate(zip(counts, sizes, strict=True)):
        if c < 0 or n <= 0:
            raise ValueError(f"subgroup {i}: {c} {what} of {n}; counts are ≥ 0, sizes > 0")


def p_centre(defectives: Sequence[int], sizes: Sequence[int]) -> float:
    """p̄ = Σ defectives / Σ inspected: pooled, so a large subgroup weighs more."""
    _counts(defectives, sizes, "defective")
    return sum(defectives) / sum(sizes)


def p_chart(defectives: Sequence[int], sizes: Sequence[int], centre: float | None = None) -> Chart:
    """Fraction defective d/n per subgroup, limits p̄ ± 3 √(p̄(1-p̄)/n) within [0, 1]."""
    _counts(defectives, sizes, "defective")
    for i, (d, n) in enumerate(zip(defectives, sizes, strict=True)):
        if d > n:
            raise ValueError(f"subgroup {i}: {d} defective of {n} inspected; d cannot exceed n")
    p_bar = p_centre(defectives, sizes) if centre is None else centre
    if not 0 <= p_bar <= 1:
        raise ValueError(f"p̄ = {p_bar} is not a proportion: give it in 0..1")
    return Chart(
        tuple(d / n for d, n in zip(defectives, sizes, strict=True)),
        tuple(Limits.around(p_bar, math.sqrt(p_bar * (1 - p_bar) / n), 0.0, 1.0) for n in sizes),
    )


def np_chart(defectives: Sequence[int], size: int, centre: float | None = None) -> Chart:
    """Number defective in subgroups of one size n, limits n p̄ ± 3 √(n p̄ (1-p̄)) in [0, n].

    `centre` is p̄ (a proportion), so a baseline from `p_centre` applies to either chart.
    """
    for i, d in enumerate(defectives):
        if not 0 <= d <= size:
            raise ValueError(f"subgroup {i}: {d} defective of {size}; it must lie in 0..{size}")
    p_bar = p_centre(defectives, [size] * len(defectives)) if centre is None else centre
    if not 0 <= p_bar <= 1:
        raise ValueError(f"p̄ = {p_bar} is not a proportion: give it in 0..1")
    limits = Limits.around(size * p_bar, math.sqrt(size * p_bar * (1 - p_bar)), 0.0, size)
    return Chart(tuple(float(d) for d in defectives), (limits,) * len(defectives))


def c_chart(counts: Sequence[int], centre: float | None = None) -> Chart:
    """Defects per unit of constant size, limits c̄ ± 3 √c̄ (Poisson), not below 0."""
    _counts(counts, [1] * len(counts), "defects in")
    c_bar = statistics.fmean(counts) if centre is None else centre
    limits = Limits.around(c_bar, math.sqrt(c_bar), 0.0)
    return Chart(tuple(float(c) for c in counts), (limits,) * len(counts))


def u_centre(counts: Sequence[int], units: Sequence[float]) -> float:
    """ū = Σ defects / Σ units inspected."""
    _counts(counts, units, "defects in")
    return sum(counts) / sum(units)


def u_chart(counts: Sequence[int], units: Sequence[float], centre: float | None = None) -> Chart:
    """Defects per unit c/n with n units per subgroup, limits ū ± 3 √(ū/n), not below 0."""
    _counts(counts, units, "defects in")
    u_bar = u_centre(counts, units) if centre is None else centre
    return Chart(
        tuple(c / n for c, n in zip(counts, units, strict=True)),
        tuple(Limits.around(u_bar, math.sqrt(u_bar / n), 0.0) for n in units),
    )


# --- capability --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    """Capability and performance indices against specification limits `lsl`, `usl`.

    Cp and Pp need both limits; Cpk and Ppk take the nearer of those given, so with one limit
    they are that one-sided index (CPU or CPL). An index is None when it cannot be computed
    (limit missing, or sigma = 0).
    """

    mean: float
    sigma_within: float  # R̄/d2 or MR̄/d2(2): short-term, what Cp and Cpk use
    sigma_overall: float  # sample standard deviation of all values: Pp and Ppk
    lsl: float | None
    usl: float | None

    @property
    def cp(self) -> float | None:
        return self._potential(self.sigma_within)

    @property
    def cpk(self) -> float | None:
        return self._actual(self.sigma_within)

    @property
    def pp(self) -> float | None:
        return self._potential(self.sigma_overall)

    @property
    def ppk(self) -> float | None:
        return self._actual(self.sigma_overall)

    def _potential(self, sigma: float) -> float | None:
        if self.lsl is None or self.usl is None or sigma <= 0:
            return None
        return (self.usl - self.lsl) / (6 * sigma)

    def _actual(self, sigma: float) -> float | None:
        if sigma <= 0:
            return None
        sides = []
        if self.usl is not None:
            sides.append((self.usl - self.mean) / (3 * sigma))
        if self.lsl is not None:
            sides.append((self.mean - self.lsl) / (3 * sigma))
        return min(sides)


def _spec(lsl: float | None, usl: float | None) -> None:
    if lsl is None and usl is None:
        raise ValueError("no specification limit: give the lower, the upper or both")
    if lsl is not None and usl is not None and lsl >= usl:
        raise ValueError(f"lower specification {lsl} is not below the upper {usl}: swap them")


def capability(
    subgroups: Sequence[Sequence[float]], lsl: float | None = None, usl: float | None = None
) -> Capability:
    """Indices from subgroups of one size (2..50): sigma within R̄/d2, overall s of all values."""
    _spec(lsl, usl)
    n = _subgroups(subgroups)
    values = [v for g in subgroups for v in g]
    return Capability(
        mean=statistics.fmean(values),
        sigma_within=statistics.fmean(_range(g) for g in subgroups) / constants(n).d2,
        sigma_overall=statistics.stdev(values),
        lsl=lsl,
        usl=usl,
    )


def capability_individuals(
    values: Sequence[float], lsl: float | None = None, usl: float | None = None
) -> Capability:
    """Indices from individual values: sigma within = MR̄/d2(2), sigma overall = s."""
    _spec(lsl, usl)
    base = i_mr_baseline(values)
    return Capability(
        mean=base.mean,
        sigma_within=base.spread / constants(2).d2,
        sigma_overall=statistics.stdev(values),
        lsl=lsl,
        usl=usl,
    )
