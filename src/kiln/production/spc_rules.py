"""Run rules on a control chart: the eight Nelson rules and the Western Electric rules. Pure.

The rules read standardised values z = (x - centre) / sigma (`spc.Chart.standardized`), so one
set of code serves every chart, including p and u charts whose limits vary point by point. With
constant limits z is an increasing affine function of x, so trends and alternations are those of
the data. Zones: C within 1 sigma of the centre, B from 1 to 2 sigma, A from 2 to 3 sigma.

Nelson's rules (L. S. Nelson, "The Shewhart Control Chart—Tests for Special Causes", Journal of
Quality Technology 16(4), 1984, pp. 237-239), as numbered there:

    1  one point beyond 3 sigma
    2  nine points in a row on one side of the centre line
    3  six points in a row steadily increasing or steadily decreasing
    4  fourteen points in a row alternating up and down
    5  two out of three points in a row beyond 2 sigma, on the same side
    6  four out of five points in a row beyond 1 sigma, on the same side
    7  fifteen points in a row within 1 sigma (either side)
    8  eight points in a row beyond 1 sigma, on either side

The Western Electric rules (Western Electric, Statistical Quality Control Handbook, 1956), with
their own numbers: 1 one point beyond 3 sigma; 2 two of three beyond 2 sigma on one side;
3 four of five beyond 1 sigma on one side; 4 eight in a row on one side.

Conventions, the same in both evaluations below. "Beyond k sigma" is |z| > k and "within
1 sigma" is |z| < 1; a point exactly on the centre line is on neither side and breaks a run; equal
neighbours break a trend and an alternation. A rule fires at the point that completes its
pattern, and again at each later point that extends it (a tenth point on one side fires rule 2
again). The k-of-m rules fire only at a point that is itself one of the k, so a pattern is not
reported again by the point after it; before m points exist, the points so far form the window.

`evaluate` runs a whole series at once from run lengths and prefix counts; `LiveRules` takes one
point at a time and checks the window of the last points, for live data. They are written
independently and must agree (tests/production/test_spc_rules.py).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    BEYOND = "beyond"  # the point beyond `limit` sigma
    K_OF_M = "k-of-m"  # `k` of the last `m` beyond `limit` sigma on one side, the point among them
    SAME_SIDE = "same-side"  # `m` in a row on one side of the centre
    TREND = "trend"  # `m` in a row strictly increasing or strictly decreasing
    ALTERNATING = "alternating"  # `m` in a row alternating up and down
    WITHIN = "within"  # `m` in a row within `limit` sigma
    OUTSIDE = "outside"  # `m` in a row beyond `limit` sigma, either side


@dataclass(frozen=True, slots=True)
class Rule:
    number: int
    kind: Kind
    m: int = 1  # points in the pattern (the window)
    k: int = 1  # for K_OF_M: how many of the m
    limit: float = 0.0  # in sigma


NELSON: tuple[Rule, ...] = (
    Rule(1, Kind.BEYOND, limit=3),
    Rule(2, Kind.SAME_SIDE, m=9),
    Rule(3, Kind.TREND, m=6),
    Rule(4, Kind.ALTERNATING, m=14),
    Rule(5, Kind.K_OF_M, m=3, k=2, limit=2),
    Rule(6, Kind.K_OF_M, m=5, k=4, limit=1),
    Rule(7, Kind.WITHIN, m=15, limit=1),
    Rule(8, Kind.OUTSIDE, m=8, limit=1),
)

WESTERN_ELECTRIC: tuple[Rule, ...] = (
    Rule(1, Kind.BEYOND, limit=3),
    Rule(2, Kind.K_OF_M, m=3, k=2, limit=2),
    Rule(3, Kind.K_OF_M, m=5, k=4, limit=1),
    Rule(4, Kind.SAME_SIDE, m=8),
)


class RuleSet(Enum):
    NELSON = "nelson"
    WESTERN_ELECTRIC = "western-electric"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return NELSON if self is RuleSet.NELSON else WESTERN_ELECTRIC


@dataclass(frozen=True, slots=True, order=True)
class Violation:
    """Rule `rule` (numbered within its rule set) fired at point `index`."""

    index: int
    rule: int


def _check(z: float, index: int) -> None:
    if not math.isfinite(z):
        raise ValueError(
            f"point {index} is {z} sigma from the centre: the rules need finite values (a sigma "
            "of 0 in the limits gives infinities; drop missing points before evaluating)"
        )


def _side(z: float) -> int:
    return (z > 0) - (z < 0)


# --- batch -------------------------------------------------------------------------------------


def evaluate(zs: Sequence[float], rules: RuleSet = RuleSet.NELSON) -> tuple[Violation, ...]:
    """Every rule firing over the series `zs` (sigma units), sorted by index, then rule."""
    for i, z in enumerate(zs):
        _check(z, i)
    fired: list[Violation] = []
    for rule in rules.rules:
        fired.extend(Violation(i, rule.number) for i in _batch(rule, zs))
    return tuple(sorted(fired))


def _runs(flags: Sequence[bool]) -> list[int]:
    """Length of the run of True ending at each index (0 where False)."""
    out: list[int] = []
    run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        out.append(run)
    return out


def _batch(rule: Rule, zs: Sequence[float]) -> list[int]:
    n = len(zs)
    if rule.kind is Kind.BEYOND:
        return [i for i, z in enumerate(zs) if abs(z) > rule.limit]
    if rule.kind is Kind.K_OF_M:
        hits: list[int] = []
        for side in (1, -1):
            beyond = [side * z > rule.limit for z in zs]
            prefix = [0]
            for b in beyond:
                prefix.append(prefix[-1] + b)
            hits += [
                i
                for i in range(n)
                if beyond[i] and prefix[i + 1] - prefix[max(0, i - rule.m + 1)] >= rule.k
            ]
        return hits
    if rule.kind is Kind.SAME_SIDE:
        run = 0
        out: list[int] = []
        for i, z in enumerate(zs):
            side = _side(z)
            run = (run + 1 if i and side == _side(zs[i - 1]) else 1) if side else 0
            out.append(run)
        return [i for i, r in enumerate(out) if r >= rule.m]
    if rule.kind is Kind.TREND:
        up = _runs([i > 0 and zs[i] > zs[i - 1] for i in range(n)])  # rises in a row
        down = _runs([i > 0 and zs[i] < zs[i - 1] for i in range(n)])
        # m points steadily moving are m - 1 moves in one direction.
        return [i for i in range(n) if max(up[i], down[i]) >= rule.m - 1]
    if rule.kind is Kind.ALTERNATING:
        moves = [0] + [_side(zs[i] - zs[i - 1]) for i in range(1, n)]
        flips = _runs([i > 1 and moves[i] * moves[i - 1] < 0 for i in range(n)])
        # m points alternating are m - 1 moves, each turning the previous one: m - 2 flips.
        return [i for i in range(n) if flips[i] >= rule.m - 2]
    if rule.kind is Kind.WITHIN:
        within = _runs([abs(z) < rule.limit for z in zs])
        return [i for i in range(n) if within[i] >= rule.m]
    outside = _runs([abs(z) > rule.limit for z in zs])
    return [i for i in range(n) if outside[i] >= rule.m]


# --- live --------------------------------------------------------------------------------------


class LiveRules:
    """The rules evaluated one point at a time, keeping only the last points they can need."""

    def __init__(self, rules: RuleSet = RuleSet.NELSON) -> None:
        self.rules = rules.rules
        self._window: deque[float] = deque(maxlen=max(r.m for r in self.rules))
        self._index = -1

    def push(self, z: float) -> tuple[Violation, ...]:
        """Add the next point (sigma units); return the rules it fires, by rule number."""
        _check(z, self._index + 1)
        self._index += 1
        self._window.append(z)
        points = list(self._window)
        return tuple(
            Violation(self._index, rule.number) for rule in self.rules if _fires(rule, points)
        )


def _fires(rule: Rule, points: list[float]) -> bool:
    """Whether `rule` holds for the pattern ending at the last of `points`."""
    last = points[-1]
    if rule.kind is Kind.BEYOND:
        return abs(last) > rule.limit
    if rule.kind is Kind.K_OF_M:
        side = _side(last)
        if abs(last) <= rule.limit:
            return False
        return sum(1 for z in points[-rule.m :] if side * z > rule.limit) >= rule.k
    if len(points) < rule.m:
        return False
    tail = points[-rule.m :]
    if rule.kind is Kind.SAME_SIDE:
        return all(z > 0 for z in tail) or all(z < 0 for z in tail)
    if rule.kind is Kind.TREND:
        pairs = list(itertools.pairwise(tail))
        return all(a < b for a, b in pairs) or all(a > b for a, b in pairs)
    if rule.kind is Kind.ALTERNATING:
        moves = [_side(b - a) for a, b in itertools.pairwise(tail)]
        return all(a * b < 0 for a, b in itertools.pairwise(moves))
    if rule.kind is Kind.WITHIN:
        return all(abs(z) < rule.limit for z in tail)
    return all(abs(z) > rule.limit for z in tail)
