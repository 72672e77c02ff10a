"""A machine's recorded states, derived from the samples of the tags its model reads.

The engine keeps every sample of the state tag, the reason tag and the tags `when` conditions
read; the state rows (`compute.STATE_DTYPE`) are a function of those samples alone. In order,
the rows of a batch are derived from the batch and the values before it; when a sample arrives
late, the rows from its instant on are derived again from the stored samples, which is exactly
what the rows would have been had it arrived in time. The result does not depend on the order
in which samples arrived.

`raw` keeps what the machine said: for a state-tag model `(state << 16) | reason code` (the
reason's low 16 bits; -1 when the state is unknown), for a condition model the index of the rule
that matched (-1: none, the default category).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from kiln.core.expressions import Condition
from kiln.production.chunks import STATE_DTYPE
from kiln.production.plan import CONDITION_PREFIX, REASON, STATE, AssetPlan
from kiln.production.taxonomy import CATEGORY_CODES, Category

Samples = npt.NDArray[np.void]  # compute.SAMPLE_DTYPE, sorted by time
ReasonIds = Callable[[str | None], int]
STATE_SIGNALS = (STATE, REASON)


def is_state_signal(signal: str) -> bool:
    return signal in STATE_SIGNALS or signal.startswith(CONDITION_PREFIX)


def _values_at(
    samples: Samples | None, times: npt.NDArray[np.int64], initial: float
) -> npt.NDArray[np.float64]:
    """The value in force at each time: the latest sample at or before it (the last of equal
    times), else `initial`."""
    if samples is None or len(samples) == 0:
        return np.full(len(times), initial)
    idx = np.searchsorted(samples["t"], times, side="right") - 1
    vals = samples["v"][np.where(idx >= 0, idx, 0)].astype(np.float64)
    return np.where(idx >= 0, vals, initial)


def derive_rows(
    plan: AssetPlan,
    samples: Mapping[str, Samples],
    initial: Mapping[str, float],
    reason_ids: ReasonIds,
    *,
    previous: tuple[int, int, int] | None = None,
) -> npt.NDArray[np.void]:
    """State rows at every instant where a state signal has a sample in `samples`.

    `initial` holds each signal's value before the first of those instants (NaN: unknown);
    `previous` the (category, reason, raw) in force before them, so that a row repeating it is
    not written again.
    """
    signals = [s for s in plan.signals if is_state_signal(s)]
    parts = [samples[s]["t"] for s in signals if s in samples and len(samples[s])]
    if not parts:
        return np.zeros(0, dtype=STATE_DTYPE)
    times = np.unique(np.concatenate(parts)).astype(np.int64)
    values = {s: _values_at(samples.get(s), times, initial.get(s, math.nan)) for s in signals}
    if any(rule.when is not None for rule in plan.model.rules):
        cat, reason, raw = _by_rules(plan, times, values, reason_ids)
    else:
        cat, reason, raw = _by_state(plan, times, values, reason_ids)
    rows = np.zeros(len(times), dtype=STATE_DTYPE)
    rows["t"], rows["category"], rows["reason"], rows["raw"] = times, cat, reason, raw
    # Keep a row only where something changed.
    key = np.stack([rows["category"].astype(np.int64), rows["reason"], rows["raw"]], axis=1)
    changed = np.ones(len(rows), dtype=bool)
    changed[1:] = (key[1:] != key[:-1]).any(axis=1)
    if previous is not None:
        changed[0] = tuple(int(k) for k in key[0]) != tuple(previous)
    return rows[changed]


def _by_state(
    plan: AssetPlan,
    times: npt.NDArray[np.int64],
    values: Mapping[str, npt.NDArray[np.float64]],
    reason_ids: ReasonIds,
) -> tuple[list[int], list[int], list[int]]:
    state = values.get(STATE, np.full(len(times), math.nan))
    reason = values.get(REASON, np.full(len(times), math.nan))
    cache: dict[tuple[float, float], tuple[int, int, int]] = {}
    cat: list[int] = []
    rid: list[int] = []
    raw: list[int] = []
    for s, r in zip(state.tolist(), reason.tolist(), strict=True):
        key = (s, r) if math.isfinite(s) else (math.inf, math.inf)
        got = cache.get(key)
        if got is None:
            category, path = plan.mapping(s, r)
            code = -1  # what the machine said, when it fits: a state code 0..32767
            if math.isfinite(s) and s.is_integer() and 0 <= s < 1 << 15:
                code = (int(s) << 16) | (int(r) & 0xFFFF if _is_code(r) else 0)
            got = (CATEGORY_CODES[category], reason_ids(path), code)
            cache[key] = got
        cat.append(got[0])
        rid.append(got[1])
        raw.append(got[2])
    return cat, rid, raw


def _by_rules(
    plan: AssetPlan,
    times: npt.NDArray[np.int64],
    values: Mapping[str, npt.NDArray[np.float64]],
    reason_ids: ReasonIds,
) -> tuple[list[int], list[int], list[int]]:
    conditions = [
        None if rule.when is None else Condition(rule.when, plan.conditions, plan.condition_states)
        for rule in plan.model.rules
    ]
    paths = {s: plan.signals[s] for s in values}
    cat: list[int] = []
    rid: list[int] = []
    raw: list[int] = []
    for i in range(len(times)):
        latest = {paths[s]: (_scalar(v[i]), not math.isfinite(v[i])) for s, v in values.items()}
        category, path, index = _first_match(plan, conditions, values, i, latest)
        cat.append(CATEGORY_CODES[category])
        rid.append(reason_ids(path))
        raw.append(index)
    return cat, rid, raw


def _first_match(
    plan: AssetPlan,
    conditions: list[Condition | None],
    values: Mapping[str, npt.NDArray[np.float64]],
    i: int,
    latest: Mapping[str, tuple[float, bool]],
) -> tuple[Category, str | None, int]:
    state = float(values[STATE][i]) if STATE in values else math.nan
    reason = float(values[REASON][i]) if REASON in values else math.nan
    for index, (rule, condition) in enumerate(zip(plan.model.rules, conditions, strict=True)):
        if condition is not None:
            if condition.evaluate(latest):
                return rule.category, rule.reason, index
            continue
        category, path = plan.mapping.single(rule, state, reason)
        if category is not None:
            return category, path, index
    return plan.model.default, None, -1


def _is_code(value: float) -> bool:
    return math.isfinite(value) and value.is_integer()


def _scalar(value: float) -> float | int:
    return int(value) if math.isfinite(value) and float(value).is_integer() else value
