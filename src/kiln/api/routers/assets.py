from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from kiln.api.auth import ValuesReader
from kiln.api.deps import SettingsDep, service
from kiln.api.schemas import AssetNodeOut, AssetsOut, TagOut, TagsOut
from kiln.api.settings import QueryLimits
from kiln.model.definitions import Level
from kiln.model.info import AssetNode
from kiln.model.service import AssetModel
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

ModelDep = Annotated[AssetModel, Depends(service(AssetModel))]

router = APIRouter(tags=["model"])


_LEVELS = tuple(Level)


def with_tag_levels(
    roots: list[AssetNode], tag_paths: Iterable[str], prefix: str | None = None
) -> list[AssetNode]:
    """`roots` (the tree at `prefix`) plus a node for every level above a tag that is not an
    asset.

    A tag created by its first value (ingest, a connector) may sit below levels the model does
    not define, e.g. `acme/plant1/lab/bench1/ph` where only `acme/plant1` is an asset: without
    `lab` and `bench1` the tree would offer no place to find it. Such a node takes the ISA-95
    level of its depth (deeper than an asset stays `asset`) and has no type.
    """
    index: dict[str, AssetNode] = {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        index[node.path] = node
        stack.extend(node.children)
    added: set[str] = set()
    first = len(prefix.strip("/").split("/")) + 1 if prefix and prefix.strip("/") else 1
    for path in tag_paths:
        if path.rpartition("/")[0] in index:  # the common case: filed under its parent node
            continue
        segments = path.split("/")
        for depth in range(first, len(segments)):
            folder = "/".join(segments[:depth])
            if folder in index:
                continue
            node = AssetNode(
                path=folder,
                name=segments[depth - 1],
                level=_LEVELS[min(depth, len(_LEVELS)) - 1],
                type=None,
                description="not in the asset model: a level named by the tags below it",
            )
            index[folder] = node
            added.add(folder)
            parent = index.get("/".join(segments[: depth - 1])) if depth > 1 else None
            (parent.children if parent is not None else roots).append(node)
    for path in added:
        index[path].children.sort(key=lambda n: n.name)
    return roots


def _node(n: AssetNode, who: Principal) -> AssetNodeOut | None:
    """The node if the principal may see it; an ancestor of what it may see stays, to navigate."""
    children = [c for c in (_node(child, who) for child in n.children) if c is not None]
    if not children and not who.sees(Permission.VALUES_READ, n.path):
        return None
    return AssetNodeOut(
        path=n.path,
        name=n.name,
        level=n.level.value,
        type=n.type,
        description=n.description,
        children=children,
    )


@router.get("/assets", response_model=AssetsOut)
def assets(
    model: ModelDep,
    who: ValuesReader,
    prefix: Annotated[str | None, Query(description="only this subtree")] = None,
) -> AssetsOut:
    """The ISA-95 asset hierarchy as a tree, with a node for each level that only tags name."""
    roots = model.tree(prefix)
    if roots or not prefix:
        tags, _ = model.tags(prefix, limit=max(1, model.tag_count))
        roots = with_tag_levels(roots, (t.path for t in tags), prefix)
    nodes = (_node(n, who) for n in roots)
    return AssetsOut(assets=[n for n in nodes if n is not None])


@router.get("/tags", response_model=TagsOut)
def tags(
    model: ModelDep,
    settings: SettingsDep,
    who: ValuesReader,
    prefix: Annotated[str | None, Query(description="namespace subtree, e.g. acme/plant1")] = None,
    limit: Annotated[int, Query(ge=1)] = 1000,
) -> TagsOut:
    """Tags with their metadata, sorted by path. `truncated` says there are more than `limit`."""
    list_max = settings.section(QueryLimits).list_max
    if limit > list_max:
        raise HTTPException(400, f"limit {limit} exceeds {list_max}: narrow the prefix instead")
    rows, more = model.tags(prefix, limit=list_max)
    rows = [t for t in rows if who.sees(Permission.VALUES_READ, t.path)]
    truncated = more or len(rows) > limit
    rows = rows[:limit]
    return TagsOut(
        tags=[
            TagOut(
                path=t.path,
                name=t.name,
                asset_path=t.asset_path,
                data_type=t.data_type.value,
                unit=t.unit,
                description=t.description,
                low=t.low,
                high=t.high,
                states=t.states,
                auto_created=t.auto_created,
                source=t.source,
                spec=None if t.spec is None else t.spec.model_dump(exclude_none=True),
            )
            for t in rows
        ],
        truncated=truncated,
    )
