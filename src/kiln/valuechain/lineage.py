"""A compact in-memory genealogy index: the same traces as `kiln.valuechain.genealogy`, fast
on millions of edges.

`genealogy.backward` and `forward` walk adjacency dicts of `GenealogyEdge` objects: exact and
simple, but three million edges held as pydantic models would take gigabytes (about 1.4 kB an
edge with its strings, measured), and a trace pays a Python step per edge. The value chain
engine is to keep this index instead, loaded once from the store (`load`) and appended to
(`LineageIndex.add`) as transactions record edges:

- Lot ids are interned to ints. Edge `k` is column `k` of parallel NumPy arrays (source,
  target, kind, time) and of interned ids (quantity text, transaction, order), so an edge costs
  about 40 bytes and a `GenealogyEdge` is built again only for the part a trace reached.
- Both directions are CSR arrays (`indptr` by lot, edge numbers sorted stably by lot, so a
  lot's edges stay in recorded order, the order the adjacency dicts of `genealogy` have).
  Edges added since the last fold sit in an append buffer, searched through a sorted copy of
  it made on the first trace after a change; the buffer is folded into the CSR arrays once it
  holds an eighth of the folded edges (or `MIN_FOLD`), so each fold costs O(E) but appends
  stay O(1) amortised and a trace never scans the whole buffer.
- A trace walks breadth first, one level at a time: the frontier's edges are gathered in one
  vectorised step, a visited mask drops lots already reached (so a cycle ends the walk), and
  the first occurrence of each new lot in the level's edge sequence gives its place, depth and
  `via` edge. That is exactly the order the queue of `genealogy._walk` visits lots in, so the
  result is the same `Trace`, node for node and edge for edge, truncation included (a test
  holds them equal on hand-built and random graphs).

`reach` is the lean form (lot ids and depths, no paths, no edge objects): building a full
`Trace` of many thousand lots costs more than walking to them, and an API showing a few
thousand nodes wants the full one while a recall's set of lots needs only the lean one.

Not thread-safe for writes: its keeper serialises `add` against traces (one writer, as
everywhere in Kiln); traces alone may run concurrently (each allocates its own mask).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, Table, select

from kiln.valuechain.genealogy import DEFAULT_MAX_NODES, Trace, TraceNode
from kiln.valuechain.lots import EdgeKind, GenealogyEdge
from kiln.valuechain.schema import VC_GENEALOGY_EDGES

if TYPE_CHECKING:
    from kiln.valuechain.store import ValuechainStore

__all__ = ["MIN_FOLD", "LineageIndex", "Reach", "load", "load_table"]

Direction = Literal["forward", "backward"]
IntArray = npt.NDArray[np.int64]

# The append buffer is folded into the CSR arrays when it holds this many edges, or an eighth of
# the folded ones if that is more: small graphs fold often (cheap), large ones rarely.
MIN_FOLD = 65_536
# Rows fetched from the database per round trip when loading.
LOAD_BATCH = 50_000

_KINDS: tuple[EdgeKind, ...] = tuple(EdgeKind)
# By value: an EdgeKind is a StrEnum, equal to (and hashed as) its value.
_KIND_CODE = {k.value: i for i, k in enumerate(_KINDS)}
_NO_ORDER = -1
_EDGE_FIELDS = frozenset(GenealogyEdge.model_fields)


@dataclass(frozen=True)
class Reach:
    """The lean result of a trace: the lots reached in breadth-first order (starts first) with
    their depths, and whether `max_nodes` cut the walk short. Same lots, order and depths as
    the full `Trace`."""

    direction: str
    lot_ids: tuple[str, ...]
    depths: npt.NDArray[np.int32]
    truncated: bool


class _Growable:
    """A NumPy array that grows by doubling: appends are amortised O(1)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self.data: npt.NDArray[Any] = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: Sequence[int]) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    @property
    def view(self) -> npt.NDArray[Any]:
        return self.data[: self.size]


class _Pool:
    """Strings interned to ints (first seen, first numbered)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def intern(self, value: str) -> int:
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.names)
            self.names.append(value)
        return i


@dataclass
class _Csr:
    """One direction's adjacency: edges of lot `n` are `edges[indptr[n]:indptr[n + 1]]`, in
    recorded order; `buffer` holds the unfolded edges sorted (stably) by lot: their lots, and
    their edge numbers. One tuple, replaced whole, so a trace never sees half of a new one."""

    indptr: IntArray
    edges: npt.NDArray[np.int32]
    buffer: tuple[npt.NDArray[np.int32], IntArray]


@dataclass
class _Walked:
    order: IntArray  # lot numbers in BFS order (unknown starts numbered past the known lots)
    depths: npt.NDArray[np.int32]
    via: IntArray  # edge number that reached each lot, -1 for a start
    parent: IntArray  # position in `order` of the lot `via` came from, -1 for a start
    edges: IntArray  # edges seen between reached lots, in the order the walk met them
    truncated: bool
    unknown: tuple[str, ...]  # names of the unknown starts, numbered from lot_count on


class LineageIndex:
    """Genealogy edges held compactly for fast traces. `add` appends in recorded order (the
    order of the store's edge ids); traces return what `genealogy.backward`/`forward` would
    over the same edges in that order."""

    def __init__(self, edges: Iterable[GenealogyEdge] = ()) -> None:
        self._lots = _Pool()
        self._texts = _Pool()  # transaction and order ids
        self._quantities = _Pool()  # quantity text, exponent and all
        self._source = _Growable(np.int32)
        self._target = _Growable(np.int32)
        self._kind = _Growable(np.uint8)
        self._quantity = _Growable(np.int32)
        self._transaction = _Growable(np.int32)
        self._order = _Growable(np.int32)
        self._time = _Growable(np.int64)
        self._folded = 0  # edges [0, _folded) are in the CSR arrays
        self._folded_lots = 0  # lots the CSR indptr covers
        self._csr: dict[Direction, _Csr] = {}
        self._buffer_sorted = True  # the buffers' sorted copies are up to date
        self.folds = 0
        self._fold()
        self.add(edges)

    # -- size -------------------------------------------------------------------------------

    @property
    def edge_count(self) -> int:
        return self._source.size

    @property
    def lot_count(self) -> int:
        return len(self._lots.names)

    def __contains__(self, lot_id: object) -> bool:
        return lot_id in self._lots.ids

    def array_bytes(self) -> int:
        """Bytes held in NumPy arrays (edge columns, CSR arrays), capacity included."""
        columns = (
            self._source,
            self._target,
            self._kind,
            self._quantity,
            self._transaction,
            self._order,
            self._time,
        )
        total = sum(c.data.nbytes for c in columns)
        for csr in self._csr.values():
            total += csr.indptr.nbytes + csr.edges.nbytes
            total += csr.buffer[0].nbytes + csr.buffer[1].nbytes
        return total

    def memory_bytes(self) -> int:
        """An estimate of all the index holds: its arrays, and the interned strings with the
        dicts and lists that intern them (the strings are most of it on a large graph)."""
        total = self.array_bytes()
        for pool in (self._lots, self._texts, self._quantities):
            total += sys.getsizeof(pool.ids) + sys.getsizeof(pool.names)
            total += sum(map(sys.getsizeof, pool.names))
        return total

    # -- appending --------------------------------------------------------------------------

    def add(self, edges: Iterable[GenealogyEdge]) -> None:
        """Append `edges` (in recorded order); folds the buffer when it has grown enough."""
        self.add_rows(
            (
                e.source,
                e.target,
                e.kind,
                str(e.quantity),
                e.transaction_id,
                e.order_id,
                e.time_us,
            )
            for e in edges
        )

    def add_rows(self, rows: Iterable[tuple[str, str, str, str, str, str | None, int]]) -> None:
        """Append edges given as rows (source, target, kind, quantity text, transaction id,
        order id or None, time_us), as the store's edge table holds them. The rows are trusted
        to be valid edges (the ledger checked them before they were recorded)."""
        lots, texts, quantities = self._lots, self._texts, self._quantities
        lot_ids, lot_names = lots.ids, lots.names
        src: list[int] = []
        dst: list[int] = []
        kind: list[int] = []
        qty: list[int] = []
        tx: list[int] = []
        order: list[int] = []
        time: list[int] = []
        for source, target, k, q, t, o, us in rows:
            # The lot interning inlined: it runs twice per edge on a load of millions.
            s = lot_ids.get(source)
            if s is None:
                s = lot_ids[source] = len(lot_names)
                lot_names.append(source)
            d = lot_ids.get(target)
            if d is None:
                d = lot_ids[target] = len(lot_names)
                lot_names.append(target)
            src.append(s)
            dst.append(d)
            kind.append(_KIND_CODE[k])
            qty.append(quantities.intern(q))
            tx.append(texts.intern(t))
            order.append(_NO_ORDER if o is None else texts.intern(o))
            time.append(us)
        if not src:
            return
        self._source.extend(src)
        self._target.extend(dst)
        self._kind.extend(kind)
        self._quantity.extend(qty)
        self._transaction.extend(tx)
        self._order.extend(order)
        self._time.extend(time)
        self._buffer_sorted = False
        if self.edge_count - self._folded >= max(MIN_FOLD, self._folded // 8):
            self._fold()

    def compact(self) -> None:
        """Fold the append buffer into the CSR arrays now (after a bulk load, say)."""
        if self.edge_count > self._folded or self.lot_count > self._folded_lots:
            self._fold()

    def _fold(self) -> None:
        n_lots, n_edges = self.lot_count, self.edge_count
        sides: tuple[tuple[Direction, _Growable], ...] = (
            ("forward", self._source),
            ("backward", self._target),
        )
        for direction, column in sides:
            keys = column.view
            # Stable, so each lot's edges keep their recorded order.
            order = np.argsort(keys, kind="stable").astype(np.int32)
            counts = np.bincount(keys, minlength=n_lots)
            indptr = np.zeros(n_lots + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            empty = (np.empty(0, np.int32), np.empty(0, np.int64))
            self._csr[direction] = _Csr(indptr, order, empty)
        self._folded, self._folded_lots = n_edges, n_lots
        self._buffer_sorted = True
        self.folds += 1

    def _sort_buffer(self) -> None:
        start = self._folded
        sides: tuple[tuple[Direction, _Growable], ...] = (
            ("forward", self._source),
            ("backward", self._target),
        )
        for direction, column in sides:
            keys = column.view[start:]
            order = np.argsort(keys, kind="stable")
            csr = self._csr[direction]
            csr.buffer = (keys[order], order.astype(np.int64) + start)
        self._buffer_sorted = True

    # -- traces -----------------------------------------------------------------------------

    def backward(
        self,
        lot: str | Iterable[str],
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        max_depth: int | None = None,
    ) -> Trace:
        """What `genealogy.backward(lot, parents_of(edges))` returns over the same edges."""
        return self._trace("backward", lot, max_nodes, max_depth)

    def forward(
        self,
        lot: str | Iterable[str],
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        max_depth: int | None = None,
    ) -> Trace:
        """What `genealogy.forward(lot, children_of(edges))` returns over the same edges."""
        return self._trace("forward", lot, max_nodes, max_depth)

    def reach(
        self,
        direction: Direction,
        lot: str | Iterable[str],
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        max_depth: int | None = None,
    ) -> Reach:
        """The lean trace: the same lots, order, depths and truncation as the full one,
        without paths or edge objects."""
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be forward or backward, not {direction!r}")
        walked = self._walk(direction, lot, max_nodes, max_depth, keep_edges=False)
        names = self._names(walked)
        return Reach(
            direction,
            tuple(names),
            walked.depths,
            walked.truncated,
        )

    def _trace(
        self, direction: Direction, lot: str | Iterable[str], max_nodes: int, max_depth: int | None
    ) -> Trace:
        walked = self._walk(direction, lot, max_nodes, max_depth, keep_edges=True)
        names = self._names(walked)
        via = walked.via
        # One edge object per edge number, shared by `via` and `edges` as in genealogy.
        wanted = np.unique(np.concatenate([via[via >= 0], walked.edges]))
        built = dict(zip(wanted.tolist(), self._edges(wanted), strict=True))
        nodes: list[TraceNode] = []
        paths: list[tuple[str, ...]] = []
        for name, k, parent, depth in zip(
            names, via.tolist(), walked.parent.tolist(), walked.depths.tolist(), strict=True
        ):
            if k < 0:
                path: tuple[str, ...] = (name,)
                edge = None
            else:
                path = (*paths[parent], name)
                edge = built[k]
            paths.append(path)
            nodes.append(TraceNode(name, depth, path, edge))
        seen = tuple(built[k] for k in walked.edges.tolist())
        return Trace(direction, _starts(lot), tuple(nodes), seen, walked.truncated)

    def _names(self, walked: _Walked) -> list[str]:
        names = self._lots.names
        known = len(names)
        return [names[i] if i < known else walked.unknown[i - known] for i in walked.order.tolist()]

    def _edges(self, numbers: IntArray) -> list[GenealogyEdge]:
        """Edges `numbers` as `GenealogyEdge` objects, their columns gathered in one step each.

        Built unchecked, through pydantic's pickling protocol (`__setstate__`): every row was a
        valid edge when it was added, and validating (or `model_construct`, which costs about as
        much) would be most of a large trace's time."""
        lots, texts, quantities = self._lots.names, self._texts.names, self._quantities.names
        decimals: dict[int, Decimal] = {}
        out: list[GenealogyEdge] = []
        new = GenealogyEdge.__new__
        for s, d, k, q, t, o, us in zip(
            self._source.data[numbers].tolist(),
            self._target.data[numbers].tolist(),
            self._kind.data[numbers].tolist(),
            self._quantity.data[numbers].tolist(),
            self._transaction.data[numbers].tolist(),
            self._order.data[numbers].tolist(),
            self._time.data[numbers].tolist(),
            strict=True,
        ):
            quantity = decimals.get(q)
            if quantity is None:
                quantity = decimals[q] = Decimal(quantities[q])
            edge = new(GenealogyEdge)
            edge.__setstate__(
                {
                    "__dict__": {
                        "source": lots[s],
                        "target": lots[d],
                        "kind": _KINDS[k],
                        "quantity": quantity,
                        "transaction_id": texts[t],
                        "order_id": None if o == _NO_ORDER else texts[o],
                        "time_us": us,
                    },
                    "__pydantic_fields_set__": set(_EDGE_FIELDS),
                    "__pydantic_extra__": None,
                    "__pydantic_private__": None,
                }
            )
            out.append(edge)
        return out

    def _walk(
        self,
        direction: Direction,
        lot: str | Iterable[str],
        max_nodes: int,
        max_depth: int | None,
        *,
        keep_edges: bool,
    ) -> _Walked:
        if max_nodes < 1:
            raise ValueError("max_nodes must be at least 1")
        if not self._buffer_sorted:
            self._sort_buffer()
        csr = self._csr[direction]
        other = (self._target if direction == "forward" else self._source).view
        known = self.lot_count
        unknown: list[str] = []
        start_ids: list[int] = []
        for s in _starts(lot):
            i = self._lots.ids.get(s)
            if i is None:
                # Named by no edge: reached only as a start, expanded to nothing.
                i = known + len(unknown)
                unknown.append(s)
            start_ids.append(i)
        truncated = len(start_ids) > max_nodes
        frontier = np.array(start_ids[:max_nodes], dtype=np.int64)
        visited = np.zeros(known + len(unknown), dtype=bool)
        visited[frontier] = True
        n = len(frontier)
        orders = [frontier]
        depths = [np.zeros(n, dtype=np.int32)]
        vias = [np.full(n, -1, dtype=np.int64)]
        parents = [np.full(n, -1, dtype=np.int64)]
        seen: list[IntArray] = []
        first_position = 0  # position in the BFS order of the frontier's first lot
        depth = 0
        while len(frontier) and (max_depth is None or depth < max_depth):
            edges, owner = self._gather(csr, frontier)
            if not len(edges):
                break
            ends = other[edges]
            fresh = np.flatnonzero(~visited[ends])
            new = np.empty(0, dtype=np.int64)
            if len(fresh):
                # The first edge reaching each new lot, in the order the queue would meet them.
                _, first = np.unique(ends[fresh], return_index=True)
                new = np.sort(fresh[first])
                room = max_nodes - n
                if len(new) > room:
                    truncated = True
                    edges = edges[: new[room]]  # the walk stops at the first lot with no room
                    new = new[:room]
            if keep_edges:
                seen.append(edges)
            if not len(new):
                break
            reached = ends[new].astype(np.int64)
            visited[reached] = True
            orders.append(reached)
            depths.append(np.full(len(new), depth + 1, dtype=np.int32))
            vias.append(edges[new])
            parents.append(first_position + owner[new])
            first_position = n
            n += len(new)
            frontier = reached
            depth += 1
            if truncated:
                break
        return _Walked(
            order=np.concatenate(orders),
            depths=np.concatenate(depths),
            via=np.concatenate(vias),
            parent=np.concatenate(parents),
            edges=np.concatenate(seen) if seen else np.empty(0, dtype=np.int64),
            truncated=truncated,
            unknown=tuple(unknown),
        )

    def _gather(self, csr: _Csr, frontier: IntArray) -> tuple[IntArray, IntArray]:
        """The edges of the frontier's lots, lot by lot in frontier order and each lot's in
        recorded order, with the frontier position of the lot each came from."""
        # Lots numbered since the last fold have no CSR row: clipped, they get an empty one.
        last = self._folded_lots
        begin = csr.indptr[np.minimum(frontier, last)]
        counts = csr.indptr[np.minimum(frontier + 1, last)] - begin
        owner = np.repeat(np.arange(len(frontier), dtype=np.int64), counts)
        total = int(counts.sum())
        offsets = np.arange(total, dtype=np.int64)
        offsets -= np.repeat(np.cumsum(counts) - counts, counts)
        edges = csr.edges[np.repeat(begin, counts) + offsets].astype(np.int64)
        keys, buffered = csr.buffer
        if len(keys):
            lo = np.searchsorted(keys, frontier, side="left")
            hi = np.searchsorted(keys, frontier, side="right")
            more = hi - lo
            if more.any():
                extra_owner = np.repeat(np.arange(len(frontier), dtype=np.int64), more)
                extra_at = np.arange(int(more.sum()), dtype=np.int64)
                extra_at -= np.repeat(np.cumsum(more) - more, more)
                extra = buffered[np.repeat(lo, more) + extra_at]
                # Folded edges are older than buffered ones: order by lot, then edge number.
                owner = np.concatenate([owner, extra_owner])
                edges = np.concatenate([edges, extra])
                by = np.lexsort((edges, owner))
                owner, edges = owner[by], edges[by]
        return edges, owner


def _starts(start: str | Iterable[str]) -> tuple[str, ...]:
    # As genealogy's: one id, or several with duplicates dropped and the order kept.
    return (start,) if isinstance(start, str) else tuple(dict.fromkeys(start))


def load_table(engine: Engine, table: Table = VC_GENEALOGY_EDGES) -> LineageIndex:
    """An index of every edge in `table` (shaped like `schema.VC_GENEALOGY_EDGES`), read in
    id order (the recorded order) as a stream of rows, with read-only SQL."""
    index = LineageIndex()
    c = table.c
    query = select(
        c.source, c.target, c.kind, c.quantity, c.transaction_id, c.order_id, c.time_us
    ).order_by(c.id)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=LOAD_BATCH).execute(query)
        for part in result.partitions():
            index.add_rows(tuple(row) for row in part)
    index.compact()
    return index


def load(store: ValuechainStore) -> LineageIndex:
    """An index of every genealogy edge in an open value chain store."""
    return load_table(store.engine)
