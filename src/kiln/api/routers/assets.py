from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from kiln.api.deps import ModelDep, SettingsDep
from kiln.api.schemas import AssetNodeOut, AssetsOut, TagOut, TagsOut
from kiln.model.info import AssetNode

router = APIRouter(tags=["model"])


def _node(n: AssetNode) -> AssetNodeOut:
    return AssetNodeOut(
        path=n.path,
        name=n.name,
        level=n.level.value,
        type=n.type,
        description=n.description,
        children=[_node(c) for c in n.children],
    )


@router.get("/assets", response_model=AssetsOut)
def assets(
    model: ModelDep,
    prefix: Annotated[str | None, Query(description="only this subtree")] = None,
) -> AssetsOut:
    """The ISA-95 asset hierarchy as a tree."""
    return AssetsOut(assets=[_node(n) for n in model.tree(prefix)])


@router.get("/tags", response_model=TagsOut)
def tags(
    model: ModelDep,
    settings: SettingsDep,
    prefix: Annotated[str | None, Query(description="namespace subtree, e.g. acme/plant1")] = None,
    limit: Annotated[int, Query(ge=1)] = 1000,
) -> TagsOut:
    """Tags with their metadata, sorted by path. `truncated` says there are more than `limit`."""
    if limit > settings.limits.list_max:
        raise HTTPException(
            400, f"limit {limit} exceeds {settings.limits.list_max}: narrow the prefix instead"
        )
    rows, truncated = model.tags(prefix, limit=limit)
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
