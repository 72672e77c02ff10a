"""The relational store of the asset model: synchronous SQLAlchemy Core over SQLite or PostgreSQL.

`apply` is declarative: after it, the database holds the union of every type and asset ever
applied (a later apply updates them, nothing is dropped), and every typed asset has exactly the
tags its type resolves to (stale declared tags are removed; tags created by their first value
are kept). It diffs against what is stored and writes only the difference, in bulk, in one
transaction, so running it twice writes nothing and a plant of 100,000 tags applies in seconds.

Callers on the event loop run these methods in a thread (see `kiln.model.service`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from kiln.core.errors import ConfigError, InvalidPathError
from kiln.core.values import MAX_PATH_LENGTH, validate_path
from kiln.db.engines import FOREIGN_KEYS, WAL, create_db_engine
from kiln.model import migrations
from kiln.model.definitions import (
    AssetDef,
    AssetTypeDef,
    DataType,
    Level,
    SpecLimits,
    TagDef,
    resolve_tags,
)
from kiln.model.info import ApplyResult, Snapshot, TagInfo
from kiln.model.schema import AssetRow, AssetTypeRow, TagRow

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")
_D = TypeVar("_D", AssetTypeDef, AssetDef)

# Rows per executemany and ids per IN list: large enough to amortise round trips, small enough
# to stay under SQLite's bound-parameter limit and keep each statement's memory modest.
_CHUNK = 5000
_IN_CHUNK = 500

# The model's rows reference each other (tags to assets, assets to types), and API threads
# read while an apply or an auto-create commits.
SQLITE_PRAGMAS = (FOREIGN_KEYS, WAL)

_LEVELS = tuple(Level)
_DATA_TYPES = {d.value: d for d in DataType}

_TYPES = cast(Table, AssetTypeRow.__table__)
_ASSETS = cast(Table, AssetRow.__table__)
# The columns both loading and applying read for each asset.
_ASSET_ROW = (
    _ASSETS.c.id,
    _ASSETS.c.path,
    _ASSETS.c.level,
    _ASSETS.c.type_name,
    _ASSETS.c.description,
)
_TAGS = cast(Table, TagRow.__table__)

# What a declared tag's row is compared on (with its asset and origin) to decide on an update.
_TAG_FIELDS = ("name", "data_type", "unit", "description", "low", "high", "states", "spec")


def level_for_depth(depth: int) -> Level:
    """The ISA-95 level of an implicit asset: enterprise/site/area/line/cell, then asset."""
    return _LEVELS[min(max(depth, 1), len(_LEVELS)) - 1]


def parent_path(path: str) -> str | None:
    head, sep, _ = path.rpartition("/")
    return head if sep else None


def owning_asset(path: str, assets: Mapping[str, object]) -> str | None:
    """The longest asset path that `path` lies below."""
    parent = parent_path(path)
    while parent is not None:
        if parent in assets:
            return parent
        parent = parent_path(parent)
    return None


class ModelStore:
    """Types, assets and tags in a relational database (SQLite or PostgreSQL, same code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url, sqlite_pragmas=SQLITE_PRAGMAS)

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision (a no-op when already there)."""
        with self.engine.begin() as conn:
            migrations.upgrade(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- declarative apply ----------------------------------------------------------------

    def apply(
        self,
        types: Sequence[AssetTypeDef],
        assets: Sequence[AssetDef],
        *,
        now: datetime | None = None,
    ) -> ApplyResult:
        """Create or update `types` and `assets` and the tags of every typed asset.

        Ancestors that `assets` imply but do not declare are created with the level their depth
        gives. Raises ConfigError, before writing anything, for conflicting definitions, unknown
        or cyclic types, a level above its parent's, or a path that would be both asset and tag.
        """
        types = _distinct("asset type", types, lambda t: t.name)
        assets = _distinct("asset", assets, lambda a: a.path)
        now = _utc(now)
        with self.engine.begin() as conn:
            type_plan = _TypePlan.build(conn, types)
            asset_plan = _AssetPlan.build(conn, assets, type_plan.merged)
            # Tags are planned before anything is written so that a bad definition leaves the
            # database untouched; new assets get their ids after insertion.
            tag_plan = _TagPlan.build(conn, asset_plan, type_plan.resolved)
            type_plan.write(conn)
            asset_ids = asset_plan.write(conn)
            tag_plan.write(conn, asset_ids, now)
        result = ApplyResult(
            types_created=len(type_plan.inserts),
            types_updated=len(type_plan.updates),
            assets_created=len(asset_plan.inserts),
            assets_updated=len(asset_plan.updates),
            tags_created=len(tag_plan.inserts),
            tags_updated=len(tag_plan.updates) + len(tag_plan.relinks),
            tags_removed=len(tag_plan.deletes),
        )
        if result.changed:
            _LOGGER.debug("Asset model applied: %s", result)
        return result

    # -- tags created by their first value ------------------------------------------------

    def create_tags(self, tags: Sequence[TagInfo], *, now: datetime | None = None) -> list[str]:
        """Insert `tags` that do not exist yet; returns the paths actually inserted.

        A path that exists (or that another process inserts concurrently) is left as it is.
        """
        now = _utc(now)
        unique = {t.path: t for t in tags}
        if not unique:
            return []
        with self.engine.begin() as conn:
            existing = _existing(conn, _TAGS, unique)
            todo = [t for path, t in unique.items() if path not in existing]
            if not todo:
                return []
            asset_ids = _existing(conn, _ASSETS, {t.asset_path for t in todo if t.asset_path})
            rows = [_tag_row(t, asset_ids, now) for t in todo]
            _execute_chunked(conn, _insert_ignoring_existing_path(conn), rows)
        return [t.path for t in todo]

    # -- tags described by the connectors that serve them -----------------------------------

    def add_described(
        self,
        assets: Sequence[AssetDef],
        tags: Sequence[TagInfo],
        updates: Sequence[TagInfo],
        *,
        now: datetime | None = None,
    ) -> None:
        """In one transaction: insert `assets` (the missing levels above described tags,
        parents first), insert `tags`, and set the description and source of `updates`.

        Rows another process inserted meanwhile are left as they are.
        """
        now = _utc(now)
        with self.engine.begin() as conn:
            by_depth: dict[int, list[AssetDef]] = {}
            for a in assets:
                by_depth.setdefault(a.path.count("/"), []).append(a)
            for depth in sorted(by_depth):
                level = by_depth[depth]
                existing = _existing(conn, _ASSETS, [a.path for a in level])
                parents = _existing(conn, _ASSETS, {p for a in level if (p := parent_path(a.path))})
                rows = [
                    {
                        "path": a.path,
                        "name": a.path.rpartition("/")[2],
                        "level": a.level.value,
                        "parent_id": parents.get(p) if (p := parent_path(a.path)) else None,
                        "type_name": a.type,
                        "description": a.description,
                    }
                    for a in level
                    if a.path not in existing
                ]
                _execute_chunked(conn, insert(_ASSETS), rows)
            if tags:
                owners = _existing(conn, _ASSETS, {t.asset_path for t in tags if t.asset_path})
                tag_rows = [_tag_row(t, owners, now) for t in tags]
                _execute_chunked(conn, _insert_ignoring_existing_path(conn), tag_rows)
            by_path = update(_TAGS).where(_TAGS.c.path == bindparam("b_path"))
            _execute_chunked(
                conn,
                by_path,
                [
                    {
                        "b_path": t.path,
                        "data_type": t.data_type.value,
                        "unit": t.unit,
                        "description": t.description,
                        "source": t.source,
                    }
                    for t in updates
                ],
            )

    # -- reading --------------------------------------------------------------------------

    def load(self) -> Snapshot:
        """Every type, asset and tag, each list sorted by name or path."""
        with self.engine.connect() as conn:
            types = [_type_def(row) for row in conn.execute(select(_TYPES)).mappings()]
            paths: dict[int, str] = {}
            assets: list[AssetDef] = []
            for row in conn.execute(select(*_ASSET_ROW)):
                paths[row.id] = row.path
                assets.append(
                    AssetDef(
                        path=row.path,
                        level=Level(row.level),
                        type=row.type_name,
                        description=row.description,
                    )
                )
            c = _TAGS.c
            columns = [c.path, c.asset_id, c.auto_created, c.name, c.data_type, c.unit]
            columns += [c.description, c.low, c.high, c.states, c.source, c.spec]
            rows = conn.execute(select(*columns))
            tags = [
                TagInfo(
                    path=path,
                    name=name,
                    asset_path=None if asset_id is None else paths.get(asset_id),
                    data_type=_DATA_TYPES[data_type],
                    unit=unit,
                    description=description,
                    low=low,
                    high=high,
                    states=_states_from_json(states),
                    auto_created=bool(auto_created),
                    source=source,
                    spec=None if spec is None else SpecLimits.model_validate(spec),
                )
                for (
                    path,
                    asset_id,
                    auto_created,
                    name,
                    data_type,
                    unit,
                    description,
                    low,
                    high,
                    states,
                    source,
                    spec,
                ) in rows
            ]
        # Sorted here, not with ORDER BY: database collations (e.g. PostgreSQL's en_US) do not
        # order '/' the way Python does, and the cache bisects on Python's order.
        types.sort(key=lambda t: t.name)
        assets.sort(key=lambda a: a.path)
        tags.sort(key=lambda t: t.path)
        return Snapshot(types, assets, tags)


# -- planning -------------------------------------------------------------------------------


@dataclass(slots=True)
class _TypePlan:
    merged: dict[str, AssetTypeDef]
    resolved: dict[str, list[TagDef]]
    inserts: list[dict[str, Any]]
    updates: list[dict[str, Any]]

    @classmethod
    def build(cls, conn: Connection, types: Sequence[AssetTypeDef]) -> _TypePlan:
        stored = {
            row["name"]: (row["id"], _type_def(row))
            for row in conn.execute(select(_TYPES)).mappings()
        }
        merged = {name: definition for name, (_, definition) in stored.items()}
        merged.update((t.name, t) for t in types)
        known = ", ".join(sorted(merged))
        for name in sorted(merged):
            parent = merged[name].parent
            if parent is not None and parent not in merged:
                raise ConfigError(
                    f"asset type {name!r} inherits from unknown type {parent!r} "
                    f"(known types: {known})"
                )
        resolved: dict[str, list[TagDef]] = {}
        for name in sorted(merged):
            try:
                resolved[name] = resolve_tags(name, merged)
            except ValueError as err:
                raise ConfigError(str(err)) from err
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for t in types:
            row = _type_row(t)
            if t.name not in stored:
                inserts.append(row)
            elif stored[t.name][1] != t:
                updates.append({"b_id": stored[t.name][0], **row})
        return cls(merged, resolved, inserts, updates)

    def write(self, conn: Connection) -> None:
        if self.inserts:
            conn.execute(insert(_TYPES), self.inserts)
        if self.updates:
            conn.execute(update(_TYPES).where(_TYPES.c.id == bindparam("b_id")), self.updates)


@dataclass(slots=True)
class _AssetState:
    level: Level
    type: str | None
    description: str


@dataclass(slots=True)
class _AssetPlan:
    final: dict[str, _AssetState]  # every asset after the apply, stored or new
    ids: dict[str, int]  # stored assets
    inserts: list[str]  # new paths
    updates: list[dict[str, Any]]

    @classmethod
    def build(
        cls, conn: Connection, assets: Sequence[AssetDef], types: dict[str, AssetTypeDef]
    ) -> _AssetPlan:
        known = ", ".join(sorted(types)) or "none defined"
        for a in assets:
            if a.type is not None and a.type not in types:
                raise ConfigError(
                    f"asset {a.path!r} has unknown type {a.type!r} (known types: {known})"
                )
            if "/" not in a.path:  # AssetDef checks only the length of a one-segment path
                _check_path(f"{a.path}/x", f"asset {a.path!r}")
        ids: dict[str, int] = {}
        final: dict[str, _AssetState] = {}
        for row in conn.execute(select(*_ASSET_ROW)):
            ids[row.path] = row.id
            final[row.path] = _AssetState(Level(row.level), row.type_name, row.description)
        updates: list[dict[str, Any]] = []
        for a in assets:
            want = _AssetState(a.level, a.type, a.description)
            have = final.get(a.path)
            if have is not None and have != want:
                updates.append(
                    {
                        "b_id": ids[a.path],
                        "level": a.level.value,
                        "type_name": a.type,
                        "description": a.description,
                    }
                )
            final[a.path] = want
        for a in assets:
            parent = parent_path(a.path)
            while parent is not None and parent not in final:
                final[parent] = _AssetState(level_for_depth(parent.count("/") + 1), None, "")
                parent = parent_path(parent)
        _check_levels(final)
        inserts = [p for p in final if p not in ids]
        return cls(final, ids, inserts, updates)

    def write(self, conn: Connection) -> dict[str, int]:
        """Write the plan; returns the id of every asset."""
        ids = dict(self.ids)
        if self.updates:
            conn.execute(update(_ASSETS).where(_ASSETS.c.id == bindparam("b_id")), self.updates)
        stmt = insert(_ASSETS).returning(_ASSETS.c.id, _ASSETS.c.path)
        # One depth at a time: a row's parent_id must be known when it is inserted.
        by_depth: dict[int, list[str]] = {}
        for path in self.inserts:
            by_depth.setdefault(path.count("/"), []).append(path)
        for depth in sorted(by_depth):
            rows = []
            for path in by_depth[depth]:
                state = self.final[path]
                parent = parent_path(path)
                rows.append(
                    {
                        "path": path,
                        "name": path.rpartition("/")[2],
                        "level": state.level.value,
                        "parent_id": None if parent is None else ids[parent],
                        "type_name": state.type,
                        "description": state.description,
                    }
                )
            for chunk in _chunks(rows, _CHUNK):
                for row in conn.execute(stmt, chunk):
                    ids[row.path] = row.id
        return ids


@dataclass(slots=True)
class _TagPlan:
    # Asset ids are resolved at write time (new assets have none while planning), so rows
    # carry their owning asset's path.
    inserts: list[tuple[str, dict[str, Any]]]  # (asset path, row)
    updates: list[tuple[str, int, dict[str, Any]]]  # (asset path, tag id, declared values)
    relinks: list[tuple[str | None, int]]  # auto-created tags now filed under another asset
    deletes: list[int]  # declared tags their type no longer has

    @classmethod
    def build(
        cls, conn: Connection, assets: _AssetPlan, resolved: dict[str, list[TagDef]]
    ) -> _TagPlan:
        final = assets.final
        # Column values per tag of each type, computed once and shared by all its instances.
        templates = {
            name: [(tag.name, _tag_values(tag)) for tag in tags] for name, tags in resolved.items()
        }
        desired: dict[str, tuple[str, dict[str, Any]]] = {}
        for asset_path, state in final.items():
            if state.type is None:
                continue
            for tag_name, values in templates[state.type]:
                path = f"{asset_path}/{tag_name}"
                if path in final:
                    raise ConfigError(
                        f"{path!r} would be both an asset and the tag {tag_name!r} of asset "
                        f"{asset_path!r} (type {state.type!r}); rename one of them"
                    )
                if len(path) > MAX_PATH_LENGTH:  # the segments are valid already
                    _check_path(path, f"tag {tag_name!r} of asset {asset_path!r}")
                desired[path] = (asset_path, values)
        inserts: list[tuple[str, dict[str, Any]]] = []
        updates: list[tuple[str, int, dict[str, Any]]] = []
        relinks: list[tuple[str | None, int]] = []
        deletes: list[int] = []
        stored_ids = assets.ids
        seen: set[str] = set()
        columns = [_TAGS.c[k] for k in _TAG_FIELDS]
        for tag_id, path, asset_id, auto_created, *compared in conn.execute(
            select(_TAGS.c.id, _TAGS.c.path, _TAGS.c.asset_id, _TAGS.c.auto_created, *columns)
        ):
            if path in final:
                raise ConfigError(
                    f"asset {path!r} is already a tag; declare the asset under another path"
                )
            want = desired.get(path)
            if want is None:
                if not auto_created:
                    deletes.append(tag_id)  # its type no longer declares it
                    continue
                owner = owning_asset(path, final)
                if owner is None:
                    moved = asset_id is not None
                else:
                    owner_id = stored_ids.get(owner)  # None: the owner is new in this apply
                    moved = owner_id is None or owner_id != asset_id
                if moved:
                    relinks.append((owner, tag_id))
                continue
            seen.add(path)
            owner, values = want
            owner_id = stored_ids.get(owner)
            if (
                auto_created
                or owner_id is None
                or asset_id != owner_id
                or any(have != values[k] for k, have in zip(_TAG_FIELDS, compared, strict=True))
            ):
                updates.append((owner, tag_id, values))
        for path, (owner, values) in desired.items():
            if path not in seen:
                inserts.append((owner, {"path": path, **values}))
        return cls(inserts, updates, relinks, deletes)

    def write(self, conn: Connection, asset_ids: dict[str, int], now: datetime) -> None:
        for ids in _chunks(self.deletes, _IN_CHUNK):
            conn.execute(delete(_TAGS).where(_TAGS.c.id.in_(ids)))
        by_id = update(_TAGS).where(_TAGS.c.id == bindparam("b_id"))
        _execute_chunked(
            conn,
            by_id,
            [
                {"b_id": tag_id, "asset_id": asset_ids[owner], "auto_created": False, **values}
                for owner, tag_id, values in self.updates
            ],
        )
        _execute_chunked(
            conn,
            by_id,
            [
                {"b_id": tag_id, "asset_id": None if owner is None else asset_ids[owner]}
                for owner, tag_id in self.relinks
            ],
        )
        _execute_chunked(
            conn,
            insert(_TAGS),
            [
                {"asset_id": asset_ids[owner], "auto_created": False, "created_at": now, **values}
                for owner, values in self.inserts
            ],
        )


# -- helpers --------------------------------------------------------------------------------


def _distinct(kind: str, items: Sequence[_D], key: Callable[[_D], str]) -> list[_D]:
    """`items` once each: sources may repeat a definition (config and the virtual factory both
    declaring the enterprise), but two different definitions under one key are an error."""
    by_key = {key(item): item for item in items}
    if len(by_key) == len(items):
        return list(items)
    conflicts = sorted({key(item) for item in items if by_key[key(item)] != item})
    if conflicts:
        raise ConfigError(
            f"{kind} defined more than once, differently: {', '.join(conflicts)}; "
            "keep one definition of each"
        )
    return list(by_key.values())


def _check_levels(final: dict[str, _AssetState]) -> None:
    """A node sits below its parent: its level is lower, except that assets may nest."""
    order = {level: i for i, level in enumerate(_LEVELS)}
    for path, state in final.items():
        parent = parent_path(path)
        if parent is None:
            continue
        above = final[parent].level
        if order[state.level] > order[above] or state.level is above is Level.ASSET:
            continue
        raise ConfigError(
            f"asset {path!r} is a {state.level.value} under {parent!r}, a {above.value}: "
            f"ISA-95 levels run {'/'.join(lv.value for lv in _LEVELS)} top down; give "
            f"{path!r} a lower level or declare {parent!r} with a higher one"
        )


def _check_path(path: str, what: str) -> None:
    try:
        validate_path(path)
    except InvalidPathError as err:
        raise ConfigError(f"{what}: {err}") from err


def _tag_values(tag: TagDef | TagInfo) -> dict[str, Any]:
    return {
        "name": tag.name,
        "data_type": tag.data_type.value,
        "unit": tag.unit,
        "description": tag.description,
        "low": tag.low,
        "high": tag.high,
        "states": _states_json(tag.states),
        "spec": None if tag.spec is None else tag.spec.model_dump(mode="json", exclude_none=True),
    }


def _states_json(states: dict[int, str] | None) -> dict[str, str] | None:
    return None if states is None else {str(code): name for code, name in states.items()}


def _states_from_json(states: dict[str, str] | None) -> dict[int, str] | None:
    return None if states is None else {int(code): name for code, name in states.items()}


def _type_row(t: AssetTypeDef) -> dict[str, Any]:
    return {
        "name": t.name,
        "parent": t.parent,
        "description": t.description,
        "tags": [tag.model_dump(mode="json", exclude_defaults=True) for tag in t.tags],
    }


def _type_def(row: Any) -> AssetTypeDef:
    return AssetTypeDef.model_validate(
        {
            "name": row["name"],
            "parent": row["parent"],
            "description": row["description"],
            "tags": row["tags"],
        }
    )


def _existing(conn: Connection, table: Table, paths: Iterable[str]) -> dict[str, int]:
    """Id by path of the rows of `table` whose path is in `paths`."""
    found: dict[str, int] = {}
    for chunk in _chunks(list(paths), _IN_CHUNK):
        for row in conn.execute(select(table.c.id, table.c.path).where(table.c.path.in_(chunk))):
            found[row.path] = row.id
    return found


def _insert_ignoring_existing_path(conn: Connection) -> Insert:
    # Another process sharing a PostgreSQL model may create the same tag at the same moment;
    # both dialects Kiln supports can skip the duplicate instead of failing the transaction.
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(_TAGS).on_conflict_do_nothing(index_elements=["path"])
    if dialect == "sqlite":
        return sqlite.insert(_TAGS).on_conflict_do_nothing(index_elements=["path"])
    return insert(_TAGS)


def _execute_chunked(conn: Connection, stmt: Executable, rows: Sequence[dict[str, Any]]) -> None:
    """Execute `stmt` once per row (executemany), a chunk of rows per round trip."""
    for chunk in _chunks(rows, _CHUNK):
        conn.execute(stmt, chunk)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"timestamp {now.isoformat()} has no time zone; pass a UTC instant")
    return now


def _tag_row(tag: TagInfo, asset_ids: Mapping[str, int], now: datetime) -> dict[str, Any]:
    """The row of a tag created from its first value or a connector's description."""
    return {
        "path": tag.path,
        "asset_id": asset_ids.get(tag.asset_path) if tag.asset_path else None,
        **_tag_values(tag),
        "auto_created": tag.auto_created,
        "source": tag.source,
        "created_at": now,
    }
