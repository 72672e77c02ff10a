"""The asset model service: the relational store behind an in-memory cache.

The database is the source of truth at start; afterwards every read (`tag`, `tags`, `tree`)
is answered from memory, because `tag()` and `ensure_tags()` sit on the ingest hot path. Writes
(`apply`, auto-created tags) go to the database first, in a worker thread, and only then into
the cache, one writer at a time.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kiln.core.clock import Clock, us_to_datetime
from kiln.core.errors import ConfigError, InvalidPathError, NamespaceLockedError
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import Scalar, path_has_prefix, validate_path
from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level
from kiln.model.info import (
    ApplyResult,
    AssetNode,
    DescribedTag,
    DescribeResult,
    EnsureResult,
    Snapshot,
    TagInfo,
)
from kiln.model.store import ModelStore, level_for_depth, owning_asset, parent_path

_LOGGER = logging.getLogger(__name__)

_LEVELS = tuple(Level)

# The character after '/': every path below prefix P sorts in [P + "/", P + "0").
_AFTER_SLASH = chr(ord("/") + 1)


class AssetModel:
    """ISA-95 hierarchy, asset types and tags; a platform service named "model".

    `locked_prefixes` are parts of the namespace that only configuration may extend: a value
    for an unknown tag below one of them is refused instead of creating the tag.
    """

    name = "model"

    def __init__(self, url: str, *, locked_prefixes: Sequence[str] = ()) -> None:
        self._url = url
        self._locked = tuple(_normalize_prefix(p) for p in locked_prefixes)
        self._store: ModelStore | None = None
        self._clock: Clock | None = None
        self._cache = _Cache.build(Snapshot([], [], []))
        # One writer at a time: an apply replaces the cache wholesale, and must not race an
        # auto-create that adds to it.
        self._write_lock = asyncio.Lock()
        self._status = Status.STARTING
        self._last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        """Migrate the database to the newest schema and load the cache."""
        store: ModelStore | None = None
        try:
            store = ModelStore(self._url)
            self._cache = await asyncio.to_thread(_open, store)
        except BaseException:
            if store is not None:
                store.dispose()
            self._status = Status.FAILED
            raise
        self._store = store
        self._clock = platform.clock
        self._status = Status.OK
        _LOGGER.debug(
            "Asset model loaded: %d types, %d assets, %d tags",
            len(self._cache.types),
            len(self._cache.assets),
            len(self._cache.tags),
        )

    async def stop(self) -> None:
        async with self._write_lock:  # let a write in flight finish before closing its engine
            store, self._store = self._store, None
            if store is not None:
                await asyncio.to_thread(store.dispose)
            self._status = Status.STOPPED

    def health(self) -> Health:
        detail: dict[str, Any] = {
            "types": len(self._cache.types),
            "assets": len(self._cache.assets),
            "tags": len(self._cache.tags),
            "locked_prefixes": list(self._locked),
        }
        if self._last_error is not None and self._status is Status.OK:
            detail["error"] = self._last_error
            return Health(Status.DEGRADED, detail)
        return Health(self._status, detail)

    # -- writing --------------------------------------------------------------------------

    async def apply(self, types: Sequence[AssetTypeDef], assets: Sequence[AssetDef]) -> ApplyResult:
        """Declare types and assets (see `ModelStore.apply`); the cache follows the database.

        Raises ConfigError for inconsistent definitions, leaving the model unchanged.
        """
        async with self._write_lock:
            store = self._require_store()  # checked under the lock: stop() may have run
            result, cache = await asyncio.to_thread(_apply, store, types, assets, self._now())
            if cache is not None:
                self._cache = cache
        return result

    async def ensure_tags(self, samples: Mapping[str, Scalar]) -> EnsureResult:
        """Make every path of `samples` a tag, creating the unknown ones from their value.

        A new tag gets the data type of its value and is filed under the longest asset path
        above it. Paths that are invalid, that name an asset, or that lie in a locked part of
        the namespace are not created: they come back in `rejected` with the reason.
        """
        known = self._cache.tags
        new = [path for path in samples if path not in known]
        if not new:  # the common case on the ingest path: one dict lookup per value
            return EnsureResult()
        result = EnsureResult()
        async with self._write_lock:
            store = self._require_store()
            cache = self._cache  # an apply may have replaced it while this call waited
            todo: list[TagInfo] = []
            for path in new:
                if path in cache.tags:
                    continue
                reason = self._refusal(path, cache)
                if reason is not None:
                    result.rejected[path] = reason
                    continue
                todo.append(
                    TagInfo(
                        path=path,
                        name=path.rpartition("/")[2],
                        asset_path=owning_asset(path, cache.assets),
                        data_type=DataType.infer(_plain(samples[path])),
                        auto_created=True,
                    )
                )
            if todo:
                try:
                    result.created = await asyncio.to_thread(
                        store.create_tags, todo, now=self._now()
                    )
                except Exception as err:
                    self._last_error = f"creating {len(todo)} tags failed: {err}"
                    raise
                self._last_error = None
                # Paths another process created meanwhile join the cache too, so that they do
                # not go back to the database with every value.
                cache.add_tags(todo)
                if result.created:
                    _LOGGER.info(
                        "Created %d tags from their first value, e.g. %s",
                        len(result.created),
                        result.created[0],
                    )
        return result

    async def describe_tags(self, source: str, described: Sequence[DescribedTag]) -> DescribeResult:
        """Make every described tag a tag of the model, served by `source` (a connector).

        A new tag is filed under its parent path, and the levels of the tree missing above it
        are created as assets (the level each depth gives, below its parent's). Declared tags
        (from configured types) keep their definition and only learn their source; tags made
        by their first value, or by an earlier description, take the new data type, unit and
        description unless `inferred`. Paths that are invalid, that name an asset, or that lie
        below a tag are refused with the reason.
        """
        result = DescribeResult()
        cache = self._cache
        if all(_unchanged(cache.tags.get(d.path), source, d) for d in described):
            return result  # a rebirth or reconnect describing the same tags again
        async with self._write_lock:
            store = self._require_store()
            cache = self._cache
            assets: dict[str, AssetDef] = {}
            new: list[TagInfo] = []
            changed: list[TagInfo] = []
            for d in {d.path: d for d in described}.values():
                have = cache.tags.get(d.path)
                if have is not None:
                    if not _unchanged(have, source, d):
                        changed.append(_described(have, source, d))
                    continue
                reason = _placement_refusal(d.path, cache, assets)
                if reason is not None:
                    result.rejected[d.path] = reason
                    continue
                _add_levels(d.path, cache.assets, assets)
                new.append(
                    TagInfo(
                        path=d.path,
                        name=d.path.rpartition("/")[2],
                        asset_path=parent_path(d.path),
                        data_type=d.data_type,
                        unit=d.unit,
                        description=d.description,
                        auto_created=True,
                        source=source,
                    )
                )
            if new or changed:
                ordered = sorted(assets.values(), key=lambda a: a.path)
                try:
                    await asyncio.to_thread(
                        store.add_described, ordered, new, changed, now=self._now()
                    )
                except Exception as err:
                    self._last_error = f"describing {len(new) + len(changed)} tags failed: {err}"
                    raise
                self._last_error = None
                cache.add_assets(ordered)
                cache.add_tags(new)
                for tag in changed:
                    cache.tags[tag.path] = tag
                result.created = [t.path for t in new]
                result.updated = [t.path for t in changed]
                result.assets_created = [a.path for a in ordered]
                _LOGGER.debug(  # quiet: every start of every connector describes its tags
                    "%s described %d new and %d changed tags (%d assets created)",
                    source,
                    len(new),
                    len(changed),
                    len(ordered),
                )
        return result

    # -- reading --------------------------------------------------------------------------

    def tags_of(self, source: str) -> list[TagInfo]:
        """The tags `source` served, as remembered from earlier runs too, sorted by path."""
        tags = self._cache.tags
        return [tags[p] for p in self._cache.paths if tags[p].source == source]

    def tag(self, path: str) -> TagInfo | None:
        return self._cache.tags.get(path)

    def tags(self, prefix: str | None = None, *, limit: int = 1000) -> tuple[list[TagInfo], bool]:
        """Tags at or below `prefix` (segment-wise), sorted by path: (at most `limit`, truncated)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        cache = self._cache
        paths = cache.paths
        prefix = (prefix or "").strip("/")
        if not prefix:
            return [cache.tags[p] for p in paths[:limit]], len(paths) > limit
        lo = bisect_left(paths, prefix + "/")
        hi = bisect_left(paths, prefix + _AFTER_SLASH, lo)
        rows: list[TagInfo] = []
        exact = cache.tags.get(prefix)
        if exact is not None:
            rows.append(exact)  # sorts before its descendants: "a/b" < "a/b/..."
        rows.extend(cache.tags[p] for p in paths[lo : min(hi, lo + limit - len(rows))])
        return rows, len(rows) < (hi - lo) + (exact is not None)

    def tree(self, prefix: str | None = None) -> list[AssetNode]:
        """The hierarchy with nested children: from the roots, or from the asset at `prefix`.

        An unknown `prefix` gives an empty list.
        """
        cache = self._cache
        prefix = (prefix or "").strip("/")
        if not prefix:
            roots = cache.children.get(None, [])
        elif prefix in cache.assets:
            roots = [prefix]
        else:  # every ancestor of an asset is an asset, so nothing lies below a non-asset
            roots = []
        return [cache.node(p) for p in roots]

    def asset_type(self, name: str) -> AssetTypeDef | None:
        return self._cache.types.get(name)

    def is_locked(self, path: str) -> bool:
        """True if `path` lies in a part of the namespace that only configuration may extend."""
        return self._lock_of(path) is not None

    @property
    def tag_count(self) -> int:
        return len(self._cache.tags)

    # -- internals ------------------------------------------------------------------------

    def _require_store(self) -> ModelStore:
        if self._store is None:
            raise RuntimeError("the asset model is not running: start the platform first")
        return self._store

    def _now(self) -> datetime:
        if self._clock is None:
            raise RuntimeError("the asset model is not running: start the platform first")
        return us_to_datetime(self._clock.now_us())

    def _lock_of(self, path: str) -> str | None:
        for prefix in self._locked:
            if path_has_prefix(path, prefix):
                return prefix
        return None

    def _refusal(self, path: str, cache: _Cache) -> str | None:
        """Why `path` may not become a tag by its first value, or None if it may."""
        try:
            validate_path(path)
        except InvalidPathError as err:
            return str(err)
        if path in cache.assets:
            return f"{path!r} is an asset, not a tag: send values to a tag below it"
        lock = self._lock_of(path)
        if lock is not None:
            return str(
                NamespaceLockedError(
                    f"{path!r} is not a tag and {lock!r} is a locked part of the namespace: "
                    "declare it under model.assets in the plant configuration or remove the lock"
                )
            )
        return None


@dataclass(slots=True)
class _Cache:
    types: dict[str, AssetTypeDef]
    assets: dict[str, AssetDef]
    children: dict[str | None, list[str]]  # parent path (None for roots) -> sorted child paths
    tags: dict[str, TagInfo]
    paths: list[str]  # sorted, for prefix queries

    @classmethod
    def build(cls, snapshot: Snapshot) -> _Cache:
        children: dict[str | None, list[str]] = {}
        for asset in snapshot.assets:  # sorted by path, so each child list comes out sorted
            children.setdefault(parent_path(asset.path), []).append(asset.path)
        return cls(
            types={t.name: t for t in snapshot.types},
            assets={a.path: a for a in snapshot.assets},
            children=children,
            tags={t.path: t for t in snapshot.tags},
            paths=[t.path for t in snapshot.tags],
        )

    def add_tags(self, tags: Sequence[TagInfo]) -> None:
        for tag in tags:
            self.tags[tag.path] = tag
        self.paths.extend(t.path for t in tags)
        self.paths.sort()  # timsort merges the appended run in linear time

    def add_assets(self, assets: Sequence[AssetDef]) -> None:
        """Add new assets, parents before children."""
        for asset in assets:
            self.assets[asset.path] = asset
            insort(self.children.setdefault(parent_path(asset.path), []), asset.path)

    def node(self, path: str) -> AssetNode:
        asset = self.assets[path]
        return AssetNode(
            path=path,
            name=path.rpartition("/")[2],
            level=asset.level,
            type=asset.type,
            description=asset.description,
            children=[self.node(child) for child in self.children.get(path, [])],
        )


def _open(store: ModelStore) -> _Cache:
    store.upgrade()
    return _Cache.build(store.load())


def _apply(
    store: ModelStore,
    types: Sequence[AssetTypeDef],
    assets: Sequence[AssetDef],
    now: datetime,
) -> tuple[ApplyResult, _Cache | None]:
    result = store.apply(types, assets, now=now)
    return result, (_Cache.build(store.load()) if result.changed else None)


def _unchanged(have: TagInfo | None, source: str, d: DescribedTag) -> bool:
    if have is None or have.source != source:
        return False
    if d.inferred or not have.auto_created:  # declared tags keep their definition
        return True
    return (have.data_type, have.unit, have.description) == (d.data_type, d.unit, d.description)


def _described(have: TagInfo, source: str, d: DescribedTag) -> TagInfo:
    if d.inferred or not have.auto_created:
        return replace(have, source=source)
    return replace(
        have, source=source, data_type=d.data_type, unit=d.unit, description=d.description
    )


def _placement_refusal(path: str, cache: _Cache, planned: Mapping[str, AssetDef]) -> str | None:
    """Why `path` cannot become a tag placed in the tree by its path, or None if it can."""
    try:
        validate_path(path)
    except InvalidPathError as err:
        return str(err)
    if path in cache.assets or path in planned:
        return f"{path!r} is an asset, not a tag"
    parent = parent_path(path)
    while parent is not None:
        if parent in cache.tags:
            return f"{path!r} lies below the tag {parent!r}; a tag has no children"
        parent = parent_path(parent)
    return None


def _add_levels(path: str, assets: Mapping[str, AssetDef], planned: dict[str, AssetDef]) -> None:
    """Plan the assets missing above `path`, each a level below its parent (ISA-95 order,
    assets may nest), at least the level its depth gives."""
    segments = path.split("/")[:-1]
    above: Level | None = None
    for depth in range(1, len(segments) + 1):
        here = "/".join(segments[:depth])
        known = assets.get(here) or planned.get(here)
        if known is not None:
            above = known.level
            continue
        level = level_for_depth(depth)
        if above is not None:
            below = _LEVELS[min(_LEVELS.index(above) + 1, len(_LEVELS) - 1)]
            level = max(level, below, key=_LEVELS.index)
        planned[here] = AssetDef(path=here, level=level)
        above = level


def _normalize_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    if not stripped:
        raise ConfigError(
            f"locked prefix {prefix!r} is empty: give the part of the namespace to lock, "
            "e.g. acme/plant1"
        )
    try:
        # A prefix is a path without its last segment; check it as one with a placeholder.
        validate_path(f"{stripped}/x")
    except InvalidPathError as err:
        raise ConfigError(f"locked prefix {prefix!r} is invalid: {err}") from err
    return stripped


def _plain(value: Scalar) -> Scalar:
    """NumPy scalars infer like the Python scalars they stand for (np.int64 is not an int)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
