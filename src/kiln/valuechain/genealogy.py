"""Genealogy traces over lots' edges, and the recall built on them.

`backward` answers "what went into this lot" (down to the suppliers' lots), `forward` "where did
this lot go" (to the lots, shipments and orders it reached). Both are a breadth-first walk with
an explicit queue, not recursion, so a deep chain cannot overflow the stack (JD Edwards warns
that its recursive trace can), and with a visited set, so a cycle in bad data ends the walk
instead of looping. Each is bounded by `max_nodes`: a walk that stops short says so in
`truncated`, because a recall computed from a partial trace misses customers.

Breadth-first gives each lot its smallest depth and one shortest path from the start.

`recall` turns a forward trace into what to do: customers and shipments to notify, open orders
to stop, stock to quarantine, and, if asked, the hold transactions that quarantine it (the
caller applies them to its ledger, so a hold that a concurrent change refused is visible).

Pure: no I/O; edges come in as adjacency mappings (`children_of`, `parents_of` build them).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kiln.valuechain.lots import GenealogyEdge, Hold, Ledger, Lot, LotState

# Edges by lot: for a forward walk the edges leaving each lot, for a backward walk the edges
# arriving at it.
Adjacency = Mapping[str, Sequence[GenealogyEdge]]

DEFAULT_MAX_NODES = 100_000


def children_of(edges: Iterable[GenealogyEdge]) -> dict[str, list[GenealogyEdge]]:
    """source lot -> the edges leaving it: the adjacency a forward trace walks."""
    out: dict[str, list[GenealogyEdge]] = {}
    for e in edges:
        out.setdefault(e.source, []).append(e)
    return out


def parents_of(edges: Iterable[GenealogyEdge]) -> dict[str, list[GenealogyEdge]]:
    """target lot -> the edges arriving at it: the adjacency a backward trace walks."""
    out: dict[str, list[GenealogyEdge]] = {}
    for e in edges:
        out.setdefault(e.target, []).append(e)
    return out


@dataclass(frozen=True)
class TraceNode:
    """A lot reached by a trace: `depth` edges from a start, along `path` (start first, this lot
    last); `via` is the edge the walk took to reach it (None for a start)."""

    lot_id: str
    depth: int
    path: tuple[str, ...]
    via: GenealogyEdge | None


@dataclass(frozen=True)
class Trace:
    """The lots a trace reached, in breadth-first order (starts first), and the edges it saw
    between reached lots. `truncated`: `max_nodes` stopped it before it reached everything."""

    direction: str
    starts: tuple[str, ...]
    nodes: tuple[TraceNode, ...]
    edges: tuple[GenealogyEdge, ...]
    truncated: bool

    @property
    def lot_ids(self) -> tuple[str, ...]:
        return tuple(n.lot_id for n in self.nodes)

    def node(self, lot_id: str) -> TraceNode | None:
        return next((n for n in self.nodes if n.lot_id == lot_id), None)


def _starts(start: str | Iterable[str]) -> tuple[str, ...]:
    return (start,) if isinstance(start, str) else tuple(dict.fromkeys(start))


def _walk(
    direction: str,
    start: str | Iterable[str],
    adjacency: Adjacency,
    max_nodes: int,
    max_depth: int | None,
) -> Trace:
    if max_nodes < 1:
        raise ValueError("max_nodes must be at least 1")
    forward = direction == "forward"
    starts = _starts(start)
    nodes: dict[str, TraceNode] = {}
    truncated = False
    for s in starts:
        if len(nodes) >= max_nodes:
            truncated = True
            break
        nodes[s] = TraceNode(s, 0, (s,), None)
    seen_edges: list[GenealogyEdge] = []
    queue = deque(nodes.values())
    while queue:
        here = queue.popleft()
        if max_depth is not None and here.depth >= max_depth:
            continue
        for edge in adjacency.get(here.lot_id, ()):
            other = edge.target if forward else edge.source
            if other in nodes:
                # Already reached (a diamond, or a cycle back): record the edge, walk no further.
                seen_edges.append(edge)
                continue
            if len(nodes) >= max_nodes:
                truncated = True
                queue.clear()
                break
            seen_edges.append(edge)
            node = TraceNode(other, here.depth + 1, (*here.path, other), edge)
            nodes[other] = node
            queue.append(node)
    return Trace(direction, starts, tuple(nodes.values()), tuple(seen_edges), truncated)


def backward(
    lot: str | Iterable[str],
    parents: Adjacency,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int | None = None,
) -> Trace:
    """The lots whose material went into `lot` (one id or several), through any number of
    steps. `parents` maps a lot to the edges arriving at it (`parents_of`)."""
    return _walk("backward", lot, parents, max_nodes, max_depth)


def forward(
    lot: str | Iterable[str],
    children: Adjacency,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int | None = None,
) -> Trace:
    """The lots that material of `lot` (one id or several) went into, through any number of
    steps. `children` maps a lot to the edges leaving it (`children_of`)."""
    return _walk("forward", lot, children, max_nodes, max_depth)


@dataclass(frozen=True)
class OrderLots:
    """A production order as a recall sees it: whether it is still open (not completed or
    cancelled), and the lots it consumed and produced."""

    order_id: str
    open: bool
    consumes: frozenset[str] = frozenset()
    produces: frozenset[str] = frozenset()


def orders_from_ledger(ledger: Ledger, open_orders: Collection[str]) -> list[OrderLots]:
    """The orders a ledger knows of, open if their id is in `open_orders` (the production
    store knows which orders are open; the ledger does not)."""
    return [
        OrderLots(
            order_id=o,
            open=o in open_orders,
            consumes=frozenset(ledger.consumption(o)),
            produces=frozenset(ledger.produced(o)),
        )
        for o in ledger.order_ids()
    ]


@dataclass(frozen=True)
class Shipment:
    """A shipment to notify: who received it and which affected lots it carried."""

    shipment_id: str
    customer: str
    lot_ids: tuple[str, ...]


@dataclass(frozen=True)
class Recall:
    """What a recall of `starts` reaches. `quarantine`: available lots to hold; `held`: lots
    already held; `unknown`: lots the edges name but `lots` does not hold. If `truncated`, the
    trace stopped at max_nodes and every list may be short: raise the bound and run it again."""

    starts: tuple[str, ...]
    trace: Trace
    customers: tuple[str, ...]
    shipments: tuple[Shipment, ...]
    orders_to_stop: tuple[str, ...]
    quarantine: tuple[str, ...]
    held: tuple[str, ...]
    unknown: tuple[str, ...]
    holds: tuple[Hold, ...]
    truncated: bool


def recall(
    lot_ids: str | Iterable[str],
    *,
    lots: Mapping[str, Lot],
    children: Adjacency,
    orders: Iterable[OrderLots] = (),
    max_nodes: int = DEFAULT_MAX_NODES,
    hold_reason: str | None = None,
    time_us: int | None = None,
    hold_id_prefix: str = "recall",
    user: str = "",
    trace: Trace | None = None,
) -> Recall:
    """Everything reached forward from `lot_ids` (themselves included): the customers and
    shipments to notify, the open orders that consume or produce an affected lot (to stop), the
    available lots to quarantine, and, if `hold_reason` is given, one Hold per such lot at
    `time_us`, with ids `<hold_id_prefix>-<lot id>`, for the caller to apply. `trace`, if
    given, is the forward trace of `lot_ids` already walked (by an index); `children` is then
    not walked again."""
    if trace is None:
        trace = forward(lot_ids, children, max_nodes=max_nodes)
    affected = set(trace.lot_ids)
    by_shipment: dict[tuple[str, str], list[str]] = {}
    quarantine: list[str] = []
    held: list[str] = []
    unknown: list[str] = []
    for lot_id in trace.lot_ids:
        lot = lots.get(lot_id)
        if lot is None:
            unknown.append(lot_id)
        elif lot.state is LotState.SHIPPED:
            key = (lot.shipment_id or "", lot.customer or "")
            by_shipment.setdefault(key, []).append(lot_id)
        elif lot.state is LotState.AVAILABLE:
            quarantine.append(lot_id)
        elif lot.state is LotState.HELD:
            held.append(lot_id)
    shipments = tuple(
        Shipment(shipment_id=s, customer=c, lot_ids=tuple(sorted(ids)))
        for (s, c), ids in sorted(by_shipment.items())
    )
    stop = sorted({o.order_id for o in orders if o.open and (o.consumes | o.produces) & affected})
    holds: tuple[Hold, ...] = ()
    if hold_reason is not None:
        if time_us is None:
            raise ValueError("placing holds needs time_us")
        holds = tuple(
            Hold(
                id=_hold_id(hold_id_prefix, lot_id),
                time_us=time_us,
                user=user,
                lot_id=lot_id,
                reason=hold_reason,
            )
            for lot_id in sorted(quarantine)
        )
    return Recall(
        starts=trace.starts,
        trace=trace,
        customers=tuple(sorted({s.customer for s in shipments})),
        shipments=shipments,
        orders_to_stop=tuple(stop),
        quarantine=tuple(sorted(quarantine)),
        held=tuple(sorted(held)),
        unknown=tuple(sorted(unknown)),
        holds=holds,
        truncated=trace.truncated,
    )


def _hold_id(prefix: str, lot_id: str) -> str:
    """`<prefix>-<lot id>`, or with a long lot id its first characters and a digest of it:
    an id stays within the 64 characters transactions allow, and stays unique per lot."""
    whole = f"{prefix}-{lot_id}"
    if len(whole) <= 64:
        return whole
    digest = hashlib.sha256(lot_id.encode()).hexdigest()[:16]
    return f"{whole[: 64 - 17]}-{digest}"
