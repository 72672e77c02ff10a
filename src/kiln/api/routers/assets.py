from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from kiln.api.auth import ValuesReader
from kiln.api.deps import ModelDep, SettingsDep
from kiln.api.schemas import AssetNodeOut, AssetsOut, TagOut, TagsOut
from kiln.model.info import AssetNode
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

router = APIRouter(tags=["model"])


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
    """The ISA-95 asset hierarchy as a tree."""
    nodes = (_node(n, who) for n in model.tree(prefix))
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
    if limit > settings.limits.list_max:
        raise HTTPException(
            400, f"limit {limit} exceeds {settings.limits.list_max}: narrow the prefix instead"
        )
    rows, more = model.tags(prefix, limit=settings.limits.list_max)
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
            )
            for t in rows
        ],
        truncated=truncated,
    )
