"""The series registry: tag path <-> dense integer id, and each series' kind.

Ids are dense (0, 1, 2, ...) so that per-series state lives in arrays indexed by id. The writer
registers new paths as *pending*; they become committed with the transaction that inserts their
first points, and are forgotten if that transaction fails, so the registry never holds an id
the database does not.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from kiln.core.values import validate_path
from kiln.historian.maths.columns import KINDS, Int32Array

_SLICE = 1 << 16


class SeriesRegistry:
    """Path to id mapping. The writer thread mutates it; readers only look up."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._paths: list[str] = []
        self._kinds: list[str] = []
        self._committed = 0
        self._sorted: tuple[int, list[str]] = (0, [])

    def __len__(self) -> int:
        """Committed series."""
        return self._committed

    def load(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Fill from the store's (id, path, kind) rows; ids must be 0..n-1."""
        for expected, (sid, path, kind) in enumerate(sorted(rows)):
            if sid != expected:
                raise ValueError(f"series ids are not dense: expected {expected}, found {sid}")
            self._ids[path] = sid
            self._paths.append(path)
            self._kinds.append(kind)
        self._committed = len(self._paths)

    def id_of(self, path: str) -> int | None:
        """The id of a committed series, or None."""
        sid = self._ids.get(path)
        return sid if sid is not None and sid < self._committed else None

    def ids_of(self, paths: Sequence[str]) -> Int32Array:
        """Ids of the committed series among `paths`, in their order; unknown paths dropped."""
        ids = np.fromiter(
            map(self._ids.get, paths, itertools.repeat(-1)), dtype=np.int32, count=len(paths)
        )
        return ids[(ids >= 0) & (ids < self._committed)]

    def kinds_of(self, ids: Sequence[int]) -> list[str]:
        kinds = self._kinds
        return [kinds[i] for i in ids]

    def paths_of(self, ids: Sequence[int]) -> list[str]:
        paths = self._paths
        return [paths[i] for i in ids]

    def kind(self, sid: int) -> str:
        return self._kinds[sid]

    def path(self, sid: int) -> str:
        return self._paths[sid]

    def resolve(self, paths: Sequence[str], kind_at: Callable[[int], str]) -> Int32Array:
        """Ids of `paths`, registering unknown ones as pending with kind `kind_at(index)`.

        Raises InvalidPathError (before registering anything) if a new path is malformed.
        """
        try:
            return self._lookup(paths)
        except KeyError:
            pass
        new: dict[str, int] = {}
        for i, path in enumerate(paths):
            if path not in self._ids and path not in new:
                validate_path(path)
                new[path] = i
        for path, i in new.items():
            kind = kind_at(i)
            if kind not in KINDS:
                raise ValueError(f"unknown series kind {kind!r}")
            self._ids[path] = len(self._paths)
            self._paths.append(path)
            self._kinds.append(kind)
        return self._lookup(paths)

    def _lookup(self, paths: Sequence[str]) -> Int32Array:
        """Ids of known `paths`, a slice at a time: one C loop over a million paths would
        hold the GIL, and so the event loop, for a hundred milliseconds."""
        lookup = self._ids.__getitem__
        ids = np.empty(len(paths), dtype=np.int32)
        for start in range(0, len(paths), _SLICE):
            part = paths[start : start + _SLICE]
            ids[start : start + len(part)] = np.fromiter(map(lookup, part), np.int32, len(part))
        return ids

    def pending(self) -> list[tuple[int, str, str]]:
        """(id, path, kind) of series registered since the last commit."""
        return [
            (sid, self._paths[sid], self._kinds[sid])
            for sid in range(self._committed, len(self._paths))
        ]

    @property
    def size(self) -> int:
        """Committed plus pending series: the bound for arrays indexed by id."""
        return len(self._paths)

    def commit(self) -> None:
        self._committed = len(self._paths)

    def rollback(self, *, to: int | None = None) -> None:
        """Forget pending series (only those from id `to` on, if given)."""
        keep = self._committed if to is None else max(to, self._committed)
        for path in self._paths[keep:]:
            del self._ids[path]
        del self._paths[keep:]
        del self._kinds[keep:]

    def under(self, prefix: str | None) -> list[int]:
        """Ids of committed series at or below `prefix` (all if None), in path order."""
        n, paths = self._sorted
        if n != self._committed:
            paths = sorted(self._paths[: self._committed])
            n = len(paths)
            self._sorted = (n, paths)
        if prefix is None or not prefix.strip("/"):
            chosen = paths
        else:
            prefix = prefix.rstrip("/")
            lo = bisect.bisect_left(paths, prefix)
            hi = bisect.bisect_left(paths, prefix + "0")  # '0' sorts right after '/'
            chosen = [p for p in paths[lo:hi] if p == prefix or p.startswith(prefix + "/")]
        return [self._ids[p] for p in chosen]
