"""Genealogy traces on a million lots (issue 16: `genealogy_backward_ms`,
`genealogy_forward_10k_ms`), against PostgreSQL's WITH RECURSIVE on the same edges.

The graph, drawn from one seeded RNG (`numpy.random.default_rng(16)`): 1,000,000 lots and
3,000,000 edges, recorded in the order a plant would record them, level by level:

- **150,000 supplier lots**: 60,000 raw-material lots, 30,000 bought parts and 60,000
  packaging lots, each consumed into at least one order (so every lot is in the genealogy).
- **Components**: 30,000 orders, each consuming 4 distinct raw-material lots and producing 4
  component lots (120,000): every input goes *consumed_into* every output, as
  `kiln.valuechain.lots` records a produce, so 16 edges an order (480,000). Each raw-material
  lot fills one of the 120,000 input slots; the other 60,000 are drawn with a long tail, the
  lot of rank r (ranks shuffled) with weight 1 / (r + 20), so a few bulk lots (a silo of resin,
  a coil) feed hundreds of orders and most feed one or two.
- **Assemblies**: 40,000 orders, each consuming 3 component lots (every component lot goes into
  exactly one assembly order) and one bought part (each at least once, the rest uniform),
  producing 3 assembly lots
  (120,000; 480,000 edges).
- **Finished goods**: 105,000 orders producing 2 finished lots each (210,000). 85,000 of them
  consume 6 assembly lots and 20,000 consume 5 (uniform: an assembly lot feeds about five
  finishing orders), each with 2 packaging lots (each at least once, the rest with weights
  1 / (r + 200)): 1,640,000 edges.
- **Splits**: 200,000 of the finished lots split into 2 parts (400,000 lots, *split_into*).

Edges carry a kind, a quantity, a transaction id (one per produce or split), the order id
(none for a split) and a time, like the store's rows.

Loading, timed once and reported: the edges are COPYed into a table of their own
(`vc_genealogy_edges` in the schema `kiln_bench_genealogy`, the same columns as the value chain
store's), then btree indexes on `source` and on `target` are built and the table ANALYZEd;
Kiln's `kiln.valuechain.lineage.load_table` then streams the same rows from PostgreSQL, in id
order, into its index (`load_s`, and the process's resident memory before and after,
`rss_mb`, beside the index's own estimate, `index_mb`). Building the index from the same rows
already in memory is timed too (`build_s`).

Timed, each side on the same starts in the same run, interleaved (which side goes first
alternates from one sample to the next), after an untimed warm-up of both:

- **`genealogy_backward_ms`**: backward traces from 300 random finished lots (finished lots and
  split parts, drawn uniformly), p95 (and p50). Target: p95 under 20 ms.
- **`genealogy_forward_10k_ms`**: forward traces from 24 raw-material lots whose forward trace
  reaches 9,000 to 11,000 lots (the ranks nearest the one reaching 10,000 first, each checked),
  each traced twice (48 samples), p95 (and median). Target: under 200 ms. The exact number of
  lots each start reaches is reported.

Kiln's figure is the lean trace, `LineageIndex.reach` (lot ids in breadth-first order and
their depths): what the baseline returns too. The full `Trace` (paths, `via` edges and every
edge seen among the reached lots, rebuilt as `GenealogyEdge`) is timed on the same samples and
reported beside it (`full_trace_*`). Once the index is loaded the heap is frozen
(`gc.freeze()`), as `kiln.api.app` does once the platform is up: without it the garbage
collector's full passes over the loaded data roughly double the full trace's time. The
baseline is one query over psycopg 3 (prepared after its first runs, like any repeated query),
returning the reached lot ids:

    WITH RECURSIVE reached(lot) AS (
        SELECT unnest(%s::varchar[]) UNION SELECT e.source FROM reached r
        JOIN vc_genealogy_edges e ON e.target = r.lot)
    SELECT lot FROM reached

(`UNION`, not `UNION ALL`, so a cycle ends; forward swaps source and target). The session runs
with `jit = off`: compiling these short queries would only slow the baseline. For every sample
the two sides must return the same set of lot ids, or the suite fails. Ratio: Kiln's p95 over
PostgreSQL's (target 1 or less).

`--quick`: a fiftieth of every size (20,000 lots, 60,000 edges), forward starts reaching about
400 lots, 50 backward and 10 forward samples. PostgreSQL: `KILN_BENCH_POSTGRES_URL`, default
the local server (user postgres, database test); the schema is dropped at the end.

    python -m benchmarks.bench_genealogy [--quick]
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import MetaData, Table

from kiln.db.engines import create_db_engine
from kiln.testing.postgres import libpq
from kiln.valuechain.lineage import LineageIndex, load_table
from kiln.valuechain.schema import VC_GENEALOGY_EDGES

PG_URL = os.environ.get("KILN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "kiln_bench_genealogy"
TABLE = f"{SCHEMA}.vc_genealogy_edges"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
TARGET_BACKWARD_MS = 20.0
TARGET_FORWARD_MS = 200.0
TARGET_RATIO = 1.0
QUANTITIES = ("1", "2.5", "12.000", "0.750", "40", "125.5")
KINDS = ("consumed_into", "split_into")
NULL = "\\N"  # COPY's text format for a NULL

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Sizes:
    raw: int
    bought: int
    packaging: int
    component_orders: int  # 4 raw in, 4 components out
    assembly_orders: int  # 3 components + 1 bought in, 3 assemblies out
    finished_orders: int  # 2 finished out
    finished_six: int  # of them, those taking 6 assemblies (the others 5)
    splits: int  # finished lots split in 2
    forward_reach: int
    backward_samples: int
    forward_starts: int
    forward_rounds: int

    @property
    def lots(self) -> int:
        return (
            self.raw
            + self.bought
            + self.packaging
            + 4 * self.component_orders
            + 3 * self.assembly_orders
            + 2 * self.finished_orders
            + 2 * self.splits
        )


FULL = Sizes(60_000, 30_000, 60_000, 30_000, 40_000, 105_000, 85_000, 200_000, 10_000, 300, 24, 2)
QUICK = Sizes(1_200, 600, 1_200, 600, 800, 2_100, 1_700, 4_000, 400, 50, 10, 1)


def _say(text: str) -> None:
    print(f"[genealogy] {text}", file=sys.stderr, flush=True)


def _ms(xs: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs), q)) * 1000, 2)


# -- the graph ---------------------------------------------------------------------------------


@dataclass
class Graph:
    names: list[str]  # lot number -> lot id
    source: IntArray
    target: IntArray
    kind: IntArray  # index into KINDS
    quantity: IntArray  # index into QUANTITIES
    transaction: IntArray
    order: IntArray  # -1: none
    time_us: IntArray
    raw: IntArray  # lot numbers of the raw-material lots, by rank of weight
    finished: IntArray  # finished lots and split parts

    def rows(self) -> Iterator[tuple[str, str, str, str, str, str | None, int]]:
        """The edges as the store's rows, in recorded order."""
        names = self.names
        for s, d, k, q, t, o, us in zip(
            self.source.tolist(),
            self.target.tolist(),
            self.kind.tolist(),
            self.quantity.tolist(),
            self.transaction.tolist(),
            self.order.tolist(),
            self.time_us.tolist(),
            strict=True,
        ):
            yield (
                names[s],
                names[d],
                KINDS[k],
                QUANTITIES[q],
                f"TX{t:08d}",
                None if o < 0 else f"WO{o:07d}",
                us,
            )


def _draw(
    rng: np.random.Generator,
    pool: IntArray,
    shape: tuple[int, int],
    c: float | None,
    *,
    every: bool = True,
) -> IntArray:
    """Lots of `pool` for `shape` (orders x inputs): if `every`, every lot of the pool at least
    once (each supplier lot received is used), the rest drawn with weight 1 / (rank + c), rank
    being the position in `pool` (uniformly if `c` is None); no lot twice in one row (an order
    books a lot once)."""
    total = shape[0] * shape[1]
    if every and total < len(pool):
        raise ValueError("fewer inputs than lots to use")
    p = None
    if c is not None:
        weights = 1.0 / (np.arange(len(pool)) + c)
        p = weights / weights.sum()
    flat = pool[rng.choice(len(pool), size=total, p=p)]
    fixed = np.zeros(total, dtype=bool)
    if every:
        at = rng.choice(total, size=len(pool), replace=False)
        flat[at] = rng.permutation(pool)
        fixed[at] = True
    drawn, kept = flat.reshape(shape), fixed.reshape(shape)
    while True:
        # The pool's first uses are distinct lots: only the other draws can collide.
        ordered = np.sort(drawn, axis=1)
        bad = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        again = bad[:, None] & ~kept
        if not again.any():
            return drawn
        drawn[again] = pool[rng.choice(len(pool), size=int(again.sum()), p=p)]


def generate(sizes: Sizes) -> Graph:
    rng = np.random.default_rng(16)
    next_lot = 0
    names: list[str] = []

    def lots(prefix: str, count: int) -> IntArray:
        nonlocal next_lot
        names.extend(f"{prefix}{i:07d}" for i in range(count))
        out = np.arange(next_lot, next_lot + count, dtype=np.int64)
        next_lot += count
        return out

    raw = rng.permutation(lots("RM", sizes.raw))  # shuffled: rank is not the lot number
    bought = lots("BP", sizes.bought)
    packaging = rng.permutation(lots("PK", sizes.packaging))
    parts: dict[str, list[IntArray]] = {k: [] for k in ("s", "t", "k", "tx", "o")}
    counters = {"tx": 0, "order": 0}

    def produce(inputs: IntArray, outputs: IntArray) -> None:
        """Each order (row) produces its outputs one transaction each; every input goes into
        every output, inputs in booking order."""
        orders, m = outputs.shape
        k = inputs.shape[1]
        parts["s"].append(np.repeat(inputs[:, None, :], m, axis=1).reshape(-1))
        parts["t"].append(np.repeat(outputs[:, :, None], k, axis=2).reshape(-1))
        parts["k"].append(np.zeros(orders * m * k, dtype=np.int64))
        tx = counters["tx"] + np.arange(orders * m, dtype=np.int64)
        parts["tx"].append(np.repeat(tx, k))
        order = counters["order"] + np.arange(orders, dtype=np.int64)
        parts["o"].append(np.repeat(order, m * k))
        counters["tx"] += orders * m
        counters["order"] += orders

    components = lots("CO", 4 * sizes.component_orders)
    produce(_draw(rng, raw, (sizes.component_orders, 4), 20.0), components.reshape(-1, 4))
    assemblies = lots("AS", 3 * sizes.assembly_orders)
    taken = rng.permutation(components)[: 3 * sizes.assembly_orders].reshape(-1, 3)
    produce(
        np.hstack([taken, _draw(rng, bought, (sizes.assembly_orders, 1), None)]),
        assemblies.reshape(-1, 3),
    )
    finished = lots("FG", 2 * sizes.finished_orders)
    by_order = finished.reshape(-1, 2)
    packs = _draw(rng, packaging, (sizes.finished_orders, 2), 200.0)
    six = sizes.finished_six
    for made, pack, count in ((by_order[:six], packs[:six], 6), (by_order[six:], packs[six:], 5)):
        inputs = _draw(rng, assemblies, (len(made), count), None, every=False)
        produce(np.hstack([inputs, pack]), made)
    split = rng.choice(finished, size=sizes.splits, replace=False)
    split_parts = lots("FP", 2 * sizes.splits)
    parts["s"].append(np.repeat(split, 2))
    parts["t"].append(split_parts)
    parts["k"].append(np.ones(2 * sizes.splits, dtype=np.int64))
    parts["tx"].append(counters["tx"] + np.repeat(np.arange(sizes.splits, dtype=np.int64), 2))
    parts["o"].append(np.full(2 * sizes.splits, -1, dtype=np.int64))

    source = np.concatenate(parts["s"])
    transaction = np.concatenate(parts["tx"])
    return Graph(
        names=names,
        source=source,
        target=np.concatenate(parts["t"]),
        kind=np.concatenate(parts["k"]),
        quantity=rng.integers(0, len(QUANTITIES), size=len(source)),
        transaction=transaction,
        order=np.concatenate(parts["o"]),
        time_us=T0 + transaction * 1_000_000,
        raw=raw,
        finished=np.concatenate([finished, split_parts]),
    )


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_load(conn: psycopg.Connection[Any], graph: Graph) -> dict[str, float]:
    """The edges COPYed into a table of the store's shape, then indexed and analysed."""
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(
        f"""CREATE TABLE {TABLE} (
            id BIGSERIAL PRIMARY KEY,
            source VARCHAR(64) NOT NULL,
            target VARCHAR(64) NOT NULL,
            kind VARCHAR(32) NOT NULL,
            quantity TEXT NOT NULL,
            transaction_id VARCHAR(64) NOT NULL,
            order_id TEXT,
            time_us BIGINT NOT NULL)"""
    )
    t0 = time.perf_counter()
    columns = "source, target, kind, quantity, transaction_id, order_id, time_us"
    with conn.cursor() as cur, cur.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
        lines: list[str] = []
        for s, d, k, q, t, o, us in graph.rows():
            order = NULL if o is None else o
            lines.append(f"{s}\t{d}\t{k}\t{q}\t{t}\t{order}\t{us}\n")
            if len(lines) == 100_000:
                copy.write("".join(lines))
                lines.clear()
        if lines:
            copy.write("".join(lines))
    t1 = time.perf_counter()
    conn.execute(f"CREATE INDEX ix_bench_genealogy_source ON {TABLE} (source)")
    conn.execute(f"CREATE INDEX ix_bench_genealogy_target ON {TABLE} (target)")
    conn.execute(f"ANALYZE {TABLE}")
    t2 = time.perf_counter()
    return {"copy_s": round(t1 - t0, 1), "index_analyze_s": round(t2 - t1, 1)}


def _pg_sql(direction: str) -> str:
    here, there = ("source", "target") if direction == "forward" else ("target", "source")
    return (
        f"WITH RECURSIVE reached(lot) AS ("
        f" SELECT unnest(%s::varchar[])"
        f" UNION SELECT e.{there} FROM reached r JOIN {TABLE} e ON e.{here} = r.lot)"
        f" SELECT lot FROM reached"
    )


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:  # not Linux: the index's own estimate stands alone
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- traces ------------------------------------------------------------------------------------


@dataclass
class Samples:
    lean: list[float]
    full: list[float]
    pg: list[float]
    reached: list[int]
    edges_seen: list[int]


def _measure(
    index: LineageIndex,
    conn: psycopg.Connection[Any],
    direction: str,
    starts: Sequence[str],
    warmup: int,
) -> Samples:
    sql = _pg_sql(direction)
    out = Samples([], [], [], [], [])
    for i, start in enumerate([*starts[:warmup], *starts]):
        timed = i >= warmup

        def kiln(start: str = start) -> tuple[float, float, set[str], int]:
            t0 = time.perf_counter()
            lean = index.reach(direction, start)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            full = getattr(index, direction)(start)
            t2 = time.perf_counter()
            if set(full.lot_ids) != set(lean.lot_ids) or lean.truncated or full.truncated:
                raise RuntimeError(f"lean and full traces from {start} differ")
            return t1 - t0, t2 - t1, set(lean.lot_ids), len(full.edges)

        def pg(start: str = start) -> tuple[float, set[str]]:
            t0 = time.perf_counter()
            rows = conn.execute(sql, ([start],)).fetchall()
            return time.perf_counter() - t0, {r[0] for r in rows}

        if i % 2:
            pg_s, theirs = pg()
            lean_s, full_s, ours, edges = kiln()
        else:
            lean_s, full_s, ours, edges = kiln()
            pg_s, theirs = pg()
        if ours != theirs:
            raise RuntimeError(
                f"{direction} trace from {start}: Kiln reached {len(ours)} lots, PostgreSQL "
                f"{len(theirs)}; {len(ours - theirs)} only in Kiln, {len(theirs - ours)} only "
                "in PostgreSQL"
            )
        if timed:
            out.lean.append(lean_s)
            out.full.append(full_s)
            out.pg.append(pg_s)
            out.reached.append(len(ours))
            out.edges_seen.append(edges)
    return out


def _forward_starts(index: LineageIndex, graph: Graph, sizes: Sizes) -> list[tuple[str, int]]:
    """Raw-material lots whose forward trace reaches within 10 % of `forward_reach` lots: the
    heavier a lot's weight the more it reaches, so search the ranks for the one nearest the
    goal and take the ranks around it that land in the band."""
    goal = sizes.forward_reach
    cache: dict[int, int] = {}

    def reached(rank: int) -> int:
        if rank not in cache:
            lot = graph.names[int(graph.raw[rank])]
            cache[rank] = len(index.reach("forward", lot).lot_ids)
        return cache[rank]

    lo, hi = 0, len(graph.raw) - 1
    while lo < hi:  # reach falls (roughly) with rank
        mid = (lo + hi) // 2
        if reached(mid) > goal:
            lo = mid + 1
        else:
            hi = mid
    found: list[tuple[str, int]] = []
    for step in range(2 * len(graph.raw)):
        rank = lo + (step + 1) // 2 * (1 if step % 2 else -1)
        if not 0 <= rank < len(graph.raw):
            continue
        n = reached(rank)
        if abs(n - goal) <= goal // 10:
            found.append((graph.names[int(graph.raw[rank])], n))
            if len(found) == sizes.forward_starts:
                return found
        if step > 20_000:
            break
    raise RuntimeError(f"only {len(found)} raw lots reach {goal} lots +- 10 %")


def _row(
    metric: str,
    unit: str,
    samples: Samples,
    target_ms: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    k95, p95 = _ms(samples.lean, 95), _ms(samples.pg, 95)
    k50, p50 = _ms(samples.lean, 50), _ms(samples.pg, 50)
    ratio = round(k95 / p95, 3) if p95 else None
    return {
        "metric": metric,
        "value": k95,
        "unit": unit,
        "path": "kiln.valuechain.lineage.LineageIndex.reach (lean: lot ids and depths), index "
        "loaded from PostgreSQL",
        "baseline": "PostgreSQL WITH RECURSIVE ... UNION over the same edge table, btree "
        "indexes on source and target, psycopg 3, jit off",
        "baseline_value": p95,
        "ratio": ratio,
        "ratio_of": "Kiln p95 / PostgreSQL p95, the same starts, interleaved",
        "target_ms": target_ms,
        "target_ratio": TARGET_RATIO,
        "met": k95 < target_ms and ratio is not None and ratio <= TARGET_RATIO,
        "p50_ms": k50,
        "p95_ms": k95,
        "max_ms": _ms(samples.lean, 100),
        "baseline_p50_ms": p50,
        "baseline_p95_ms": p95,
        "ratio_p50": round(k50 / p50, 3) if p50 else None,
        "full_trace_p50_ms": _ms(samples.full, 50),
        "full_trace_p95_ms": _ms(samples.full, 95),
        "full_trace_ratio": round(_ms(samples.full, 95) / p95, 3) if p95 else None,
        "samples": len(samples.lean),
        "reached_min": min(samples.reached),
        "reached_median": int(statistics.median(samples.reached)),
        "reached_max": max(samples.reached),
        "edges_seen_median": int(statistics.median(samples.edges_seen)),
        "sets_equal": len(samples.lean),
        **extra,
    }


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    sizes = QUICK if quick else FULL
    t0 = time.perf_counter()
    graph = generate(sizes)
    n_edges = len(graph.source)
    _say(f"{len(graph.names):,} lots, {n_edges:,} edges drawn in {time.perf_counter() - t0:.1f} s")
    if len(graph.names) != sizes.lots:
        raise RuntimeError(f"drew {len(graph.names)} lots, not {sizes.lots}")
    engine = create_db_engine(PG_URL)
    conn = psycopg.connect(libpq(PG_URL), autocommit=True)
    try:
        conn.execute("SET jit = off")
        loaded = _pg_load(conn, graph)
        _say(
            f"PostgreSQL: COPY {loaded['copy_s']} s, indexes and ANALYZE "
            f"{loaded['index_analyze_s']} s"
        )
        table = VC_GENEALOGY_EDGES.to_metadata(MetaData(), schema=SCHEMA)
        assert isinstance(table, Table)
        gc.collect()
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        index = load_table(engine, table)
        load_s = time.perf_counter() - t0
        if (index.lot_count, index.edge_count) != (sizes.lots, n_edges):
            raise RuntimeError(
                f"the index holds {index.lot_count} lots and {index.edge_count} edges, not "
                f"{sizes.lots} and {n_edges}"
            )
        gc.collect()
        rss1 = _rss_mb()
        index_mb = index.memory_bytes() / 2**20
        rss = None if rss0 is None or rss1 is None else round(rss1 - rss0)
        _say(
            f"Kiln index: load_table from PostgreSQL {load_s:.1f} s, {index.lot_count:,} lots, "
            f"{index.edge_count:,} edges, about {index_mb:.0f} MB (resident memory +{rss} MB)"
        )
        t0 = time.perf_counter()
        rebuilt = LineageIndex()
        rebuilt.add_rows(graph.rows())
        rebuilt.compact()
        build_s = time.perf_counter() - t0
        _say(f"Kiln index built from rows in memory in {build_s:.1f} s")
        del rebuilt
        gc.collect()
        # As the server does once its platform (and so the engine's index) is up
        # (kiln.api.app): what lives as long as the process stays out of full collections.
        gc.freeze()

        rng = np.random.default_rng(1616)
        picks = rng.choice(graph.finished, size=sizes.backward_samples, replace=False)
        back_starts = [graph.names[int(i)] for i in picks]
        t0 = time.perf_counter()
        forward = _forward_starts(index, graph, sizes)
        _say(
            f"{len(forward)} forward starts reaching {min(n for _, n in forward):,} to "
            f"{max(n for _, n in forward):,} lots (found in {time.perf_counter() - t0:.1f} s)"
        )
        back = _measure(index, conn, "backward", back_starts, warmup=min(50, len(back_starts)))
        _say(
            f"backward: Kiln p50 {_ms(back.lean, 50)} / p95 {_ms(back.lean, 95)} ms (full trace "
            f"p95 {_ms(back.full, 95)} ms), PostgreSQL p50 {_ms(back.pg, 50)} / p95 "
            f"{_ms(back.pg, 95)} ms; {statistics.median(back.reached)} lots (median)"
        )
        fwd_starts = [lot for lot, _ in forward] * sizes.forward_rounds
        fwd = _measure(index, conn, "forward", fwd_starts, warmup=min(3, len(forward)))
        _say(
            f"forward: Kiln p50 {_ms(fwd.lean, 50)} / p95 {_ms(fwd.lean, 95)} ms (full trace "
            f"p95 {_ms(fwd.full, 95)} ms), PostgreSQL p50 {_ms(fwd.pg, 50)} / p95 "
            f"{_ms(fwd.pg, 95)} ms; {statistics.median(fwd.reached)} lots (median)"
        )
    finally:
        gc.unfreeze()
        try:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        finally:
            conn.close()
            engine.dispose()
    common = {
        "lots": len(graph.names),
        "edges": n_edges,
        "index_load_s": round(load_s, 1),
        "index_build_s": round(build_s, 1),
        "index_mb": round(index_mb),
        "index_rss_mb": rss,
        "pg_copy_s": loaded["copy_s"],
        "pg_index_analyze_s": loaded["index_analyze_s"],
    }
    yield _row(
        "genealogy_backward_ms",
        "ms (p95), backward trace from a finished lot",
        back,
        TARGET_BACKWARD_MS,
        common,
    )
    yield _row(
        "genealogy_forward_10k_ms",
        f"ms (p95), forward trace from a raw-material lot reaching about {sizes.forward_reach:,} "
        "lots",
        fwd,
        TARGET_FORWARD_MS,
        common | {"forward_starts": [{"lot": lot, "reached": n} for lot, n in forward]},
    )


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
