"""Material planning over a large plant (issue 16: `mrp_run_s`).

The data, drawn from one seeded RNG (`random.Random(16)`), planned on `TODAY` (2025-03-03):

- **10,000 materials in 5 levels**: 1,000 finished goods (level 0), 1,500, 2,000 and 2,500
  made materials (levels 1 to 3) and 3,000 raw materials (level 4). Made and finished ones
  are counted in pieces with a manufacturing lead time of 1-5 days (finished goods 1-3); raw
  ones are bought from one of 40 suppliers with a purchasing lead time of 1-3 days and a
  supplier lead time of 2-15 days, 30 % of them counted in kg with 3 decimals, the rest in
  pieces. 10 % of all materials have a safety lead time of 1-2 days.
- **Bills of materials**: every made and finished material has one, of 2-4 components (more
  only where the covering rule below asks for it). Each component comes from the next level
  with probability 0.8, else from a deeper one, so components are shared between parents of
  different levels and the low-level codes matter (a level-3 material used directly by a
  level-1 parent is still planned after every level-2 parent). Every material below level 0 is
  a component of at least one parent of the level just above it, so its low-level code is its
  level; the benchmark checks that `MasterData.low_level_codes` gives exactly the 5 levels.
  A line takes 1-4 pieces of a counted component or 0.050-2.500 kg of a kg one per batch; 10 %
  of the bills make a batch of 10 (their lines take 5-40 pieces or 0.5-25 kg); 20 % of the
  lines carry a scrap percentage of 1, 2.5, 5 or 8.
- **Lot sizes and stock**: 20 % of materials have a minimum lot (5, 10, 20 or 50), 25 % a lot
  multiple (5, 10 or 25 pieces; 0.5 or 25 kg), 10 % a maximum lot: a whole number of
  multiples, at least the minimum, of 1-4 times 200, 500, 2,000, 8,000 or 30,000 units at
  levels 0 to 4 (requirements grow with each level down, so a split day stays the exception:
  about 1,000 of the 613,000 proposals); 10 % have a safety stock of 1-100. 30 % have stock
  on hand, 5 % part of it reserved. 10 % have 1-3 open orders (work orders for made
  materials, purchase orders for bought ones) due from 3 days before `TODAY` to 30 days after.
- **50,000 demands**: sales order lines of 1-50 pieces on the finished goods, in orders of 4
  lines (each line its own finished good, drawn uniformly), each order due on a day drawn
  uniformly from the 90 days from `TODAY` - 5 to `TODAY` + 84 (so about 5 % are past due and
  count on `TODAY`, rule 1 of `kiln.valuechain.mrp`).

Building the models (`Material`, `Bom`, `MasterData`, `Demand`, `OpenSupply`) is not timed.

Timed (`mrp_run_s`): ONE `kiln.valuechain.mrp.run_mrp` over all of it, inputs checked, every
material netted level by level, every proposal with its explanation and pegging, as the API
would get it. Reported with it: the number of proposals (work and purchase orders, late ones,
ones of a split day), the levels planned, and the pegs the proposals carry (of them, the ones
on a parent's planned order). The issue sets no target and there is no baseline: the figure is
reported as it is. `--quick`: 1/20 of every size (500 materials, 2,500 demands). `--profile`
(this module only) also runs the planning once under cProfile and prints the top functions to
stderr.

    python -m benchmarks.bench_mrp [--quick] [--profile]
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from kiln.valuechain.master import Bom, BomLine, MasterData, Material, MaterialKind
from kiln.valuechain.mrp import Demand, MrpPlan, OpenSupply, OrderKind, PegKind, run_mrp

SEED = 16
TODAY = date(2025, 3, 3)
LEVEL_SIZES = (1_000, 1_500, 2_000, 2_500, 3_000)  # finished goods first, raw last
DEMANDS = 50_000
LINES_PER_ORDER = 4
DAYS = 90
PAST_DUE_DAYS = 5  # the demands' days run from TODAY - 5 to TODAY + 84
SUPPLIERS = 40
QUICK_DIVISOR = 20
# The order of magnitude of a maximum lot at each level, in pieces or kg.
LOT_MAX_BASE = (200, 500, 2_000, 8_000, 30_000)
SCRAP = (Decimal(1), Decimal("2.5"), Decimal(5), Decimal(8))


def _say(text: str) -> None:
    print(f"[mrp] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Inputs:
    master: MasterData
    levels: tuple[tuple[str, ...], ...]  # codes by designed level
    demands: tuple[Demand, ...]
    open_supply: tuple[OpenSupply, ...]
    stock: dict[str, Decimal]
    reserved: dict[str, Decimal]


def _code(level: int, i: int) -> str:
    return f"L{level}-{i:05d}"


def _material(rng: random.Random, code: str, level: int, deepest: int) -> Material:
    raw = level == deepest
    kg = raw and rng.random() < 0.3
    decimals = 3 if kg else 0
    fields: dict[str, Any] = {
        "code": code,
        "unit": "kg" if kg else "pcs",
        "decimals": decimals,
        "kind": MaterialKind.RAW
        if raw
        else (MaterialKind.FINISHED if level == 0 else MaterialKind.MADE),
    }
    if raw:
        fields["supplier"] = f"SUP-{rng.randrange(SUPPLIERS):02d}"
        fields["purchasing_lead_days"] = rng.randint(1, 3)
        fields["supplier_lead_days"] = rng.randint(2, 15)
    else:
        fields["manufacturing_lead_days"] = rng.randint(1, 3 if level == 0 else 5)
    if rng.random() < 0.1:
        fields["safety_lead_days"] = rng.randint(1, 2)
    # Lot sizes in the material's unit: kg ones in whole kg, bags of 25 kg or half kg.
    lot_min = Decimal(0)
    multiple: Decimal | None = None
    if rng.random() < 0.2:
        lot_min = Decimal(rng.choice((5, 10, 20, 50)))
    if rng.random() < 0.25:
        multiple = Decimal(rng.choice(("0.5", "25"))) if kg else Decimal(rng.choice((5, 10, 25)))
    if rng.random() < 0.1:
        # A whole number of multiples (or of units), at least the minimum, sized to the level's
        # requirements (which grow with each level down) so that a split stays the exception.
        step = multiple if multiple is not None else Decimal(1)
        size = LOT_MAX_BASE[level] * rng.uniform(1, 4)
        fields["lot_max"] = step * max(int(size / float(step)), int(lot_min / step) + 1)
    if lot_min:
        fields["lot_min"] = lot_min
    if multiple is not None:
        fields["lot_multiple"] = multiple
    if rng.random() < 0.1:
        fields["safety_stock"] = Decimal(rng.randint(1, 100))
    return Material(**fields)


def _quantity(rng: random.Random, component: Material, batch: bool) -> Decimal:
    """A line's quantity per batch, in the component's unit."""
    if component.decimals:
        low, high = (500, 25_000) if batch else (50, 2_500)  # in grams
        return Decimal(rng.randint(low, high)).scaleb(-3)
    return Decimal(rng.randint(5, 40) if batch else rng.randint(1, 4))


def _boms(rng: random.Random, levels: list[list[str]], by_code: dict[str, Material]) -> list[Bom]:
    """Each made material's bill; every material below level 0 is a component of a parent of
    the level above it (so its low-level code is its level)."""
    boms: list[Bom] = []
    for level, parents in enumerate(levels[:-1]):
        # Cover the next level: its materials dealt round-robin to the shuffled parents.
        forced: dict[str, list[str]] = {p: [] for p in parents}
        order = parents[:]
        rng.shuffle(order)
        for j, child in enumerate(levels[level + 1]):
            forced[order[j % len(order)]].append(child)
        deeper = [c for lower in levels[level + 2 :] for c in lower]
        for parent in parents:
            chosen = forced[parent][:]
            wanted = max(rng.randint(2, 4), len(chosen))
            while len(chosen) < wanted:
                pool = deeper if deeper and rng.random() < 0.2 else levels[level + 1]
                child = rng.choice(pool)
                if child not in chosen:
                    chosen.append(child)
            batch = rng.random() < 0.1
            lines = tuple(
                BomLine(
                    component=c,
                    quantity=_quantity(rng, by_code[c], batch),
                    scrap_percent=rng.choice(SCRAP) if rng.random() < 0.2 else Decimal(0),
                )
                for c in sorted(chosen)
            )
            boms.append(
                Bom(parent=parent, output_quantity=Decimal(10 if batch else 1), lines=lines)
            )
    return boms


def _amount(rng: random.Random, material: Material, low: int, high: int) -> Decimal:
    """A random amount of `material` between `low` and `high` units, at its precision."""
    scale = 10**material.decimals
    return Decimal(rng.randint(low * scale, high * scale)).scaleb(-material.decimals)


def make_inputs(quick: bool = False) -> Inputs:
    rng = random.Random(SEED)
    divisor = QUICK_DIVISOR if quick else 1
    sizes = [n // divisor for n in LEVEL_SIZES]
    levels = [[_code(k, i) for i in range(n)] for k, n in enumerate(sizes)]
    deepest = len(levels) - 1
    materials = [_material(rng, c, k, deepest) for k, codes in enumerate(levels) for c in codes]
    by_code = {m.code: m for m in materials}
    master = MasterData(materials=tuple(materials), boms=tuple(_boms(rng, levels, by_code)))

    stock: dict[str, Decimal] = {}
    reserved: dict[str, Decimal] = {}
    supply: list[OpenSupply] = []
    for m in materials:
        if rng.random() < 0.3:
            stock[m.code] = _amount(rng, m, 0, 500)
            if rng.random() < 0.17:  # about 5 % of all materials
                reserved[m.code] = _amount(rng, m, 0, int(stock[m.code]) // 2)
        if rng.random() < 0.1:
            kind = OrderKind.PURCHASE_ORDER if m.bought else OrderKind.WORK_ORDER
            prefix = "PO" if m.bought else "WO"
            for n in range(rng.randint(1, 3)):
                supply.append(
                    OpenSupply(
                        id=f"{prefix}-{m.code}-{n + 1}",
                        kind=kind,
                        material=m.code,
                        quantity=_amount(rng, m, 1, 400),
                        due=TODAY + timedelta(days=rng.randint(-3, 30)),
                    )
                )

    finished = levels[0]
    demands: list[Demand] = []
    count = DEMANDS // divisor
    due = TODAY
    for i in range(count):
        order, line = divmod(i, LINES_PER_ORDER)
        if line == 0:
            due = TODAY + timedelta(days=rng.randrange(DAYS) - PAST_DUE_DAYS)
        demands.append(
            Demand(
                id=f"SO-{order:06d}/{line + 1}",
                material=rng.choice(finished),
                quantity=Decimal(rng.randint(1, 50)),
                due=due,
            )
        )
    return Inputs(
        master=master,
        levels=tuple(tuple(codes) for codes in levels),
        demands=tuple(demands),
        open_supply=tuple(supply),
        stock=stock,
        reserved=reserved,
    )


def plan(inputs: Inputs) -> MrpPlan:
    return run_mrp(
        inputs.master,
        today=TODAY,
        demands=inputs.demands,
        open_supply=inputs.open_supply,
        stock=inputs.stock,
        reserved=inputs.reserved,
    )


def _check_levels(inputs: Inputs) -> int:
    """The low-level codes are the designed levels; the number of levels."""
    codes = inputs.master.low_level_codes()
    for level, members in enumerate(inputs.levels):
        wrong = [c for c in members if codes[c] != level]
        if wrong:
            raise RuntimeError(
                f"{len(wrong)} materials of level {level} have another low-level code, e.g. "
                f"{wrong[0]}: {codes[wrong[0]]}"
            )
    return len(set(codes.values()))


def profile(inputs: Inputs, top: int = 25) -> None:
    """Plan once more under cProfile; the top functions by own and by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    plan(inputs)
    profiler.disable()
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
        print(out.getvalue(), file=sys.stderr, flush=True)


def measure(quick: bool = False, with_profile: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    inputs = make_inputs(quick)
    built = time.perf_counter() - t0
    levels = _check_levels(inputs)
    lines = sum(len(b.lines) for b in inputs.master.boms)
    _say(
        f"{len(inputs.master.materials):,} materials in {levels} levels, "
        f"{len(inputs.master.boms):,} bills with {lines:,} lines, {len(inputs.demands):,} "
        f"demands, {len(inputs.open_supply):,} open orders: built in {built:.1f} s"
    )
    t1 = time.perf_counter()
    result = plan(inputs)
    elapsed = time.perf_counter() - t1
    proposals = result.proposals
    kinds = Counter(p.kind for p in proposals)
    planned_levels = len({_level_of(p.material) for p in proposals})
    pegs = sum(len(p.explanation.pegging) for p in proposals)
    dependent = sum(
        1 for p in proposals for g in p.explanation.pegging if g.kind is PegKind.PROPOSAL
    )
    late = sum(1 for p in proposals if p.explanation.late)
    split = sum(1 for p in proposals if p.explanation.splits > 1)
    _say(
        f"run_mrp: {elapsed:.2f} s, {len(proposals):,} proposals "
        f"({kinds[OrderKind.WORK_ORDER]:,} work, {kinds[OrderKind.PURCHASE_ORDER]:,} purchase, "
        f"{late:,} late, {split:,} of a split day) on {planned_levels} levels, {pegs:,} pegs"
    )
    if with_profile:
        profile(inputs)
    return {
        "metric": "mrp_run_s",
        "value": round(elapsed, 3),
        "unit": "s, one run_mrp over every material, demand and open order",
        "path": "kiln.valuechain.mrp.run_mrp, in process (pure: no I/O)",
        "baseline": "none: the issue sets no target",
        "baseline_value": None,
        "ratio": None,
        "target_s": None,
        "met": None,
        "proposals": len(proposals),
        "work_orders": kinds[OrderKind.WORK_ORDER],
        "purchase_orders": kinds[OrderKind.PURCHASE_ORDER],
        "late": late,
        "of_split_days": split,
        "levels": levels,
        "levels_with_proposals": planned_levels,
        "pegs": pegs,
        "dependent_pegs": dependent,
        "materials": len(inputs.master.materials),
        "boms": len(inputs.master.boms),
        "bom_lines": lines,
        "demands": len(inputs.demands),
        "open_orders": len(inputs.open_supply),
        "inputs_built_s": round(built, 1),
    }


def _level_of(code: str) -> int:
    """The designed level of a material, from its code (`L<level>-<n>`)."""
    return int(code[1 : code.index("-")])


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    yield measure(quick)


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv, with_profile="--profile" in sys.argv)))
