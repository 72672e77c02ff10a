from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from kiln.api.auth import ValuesReader
from kiln.api.deps import SettingsDep, service
from kiln.api.responses import json_of
from kiln.api.routers.history import _known
from kiln.api.schemas import LatestOut, ValueOut
from kiln.api.settings import QueryLimits
from kiln.historian.service import Historian
from kiln.model.service import AssetModel
from kiln.security.permissions import Permission

HistorianDep = Annotated[Historian, Depends(service(Historian))]
ModelDep = Annotated[AssetModel, Depends(service(AssetModel))]

router = APIRouter(tags=["values"])


@router.get("/values/latest", response_model=LatestOut)
async def latest(
    historian: HistorianDep,
    model: ModelDep,
    settings: SettingsDep,
    who: ValuesReader,
    prefix: Annotated[str | None, Query(description="namespace subtree")] = None,
    tag: Annotated[
        list[str] | None,
        Query(description="exact tag paths (repeatable); 404 if one is unknown or not yours"),
    ] = None,
    limit: Annotated[int, Query(ge=1)] = 10_000,
) -> Response:
    """The current value of each tag (the historian's snapshot), with quality and timestamps.

    A `prefix` lists what the caller may see below it. Each exact `tag` must exist and be in
    the caller's scope, else 404, with the same answer for both so scope cannot be probed.
    """
    bound = settings.section(QueryLimits).latest_max
    if limit > bound:
        raise HTTPException(400, f"limit {limit} exceeds {bound}: narrow the prefix instead")
    if tag:
        if len(tag) > bound:
            raise HTTPException(400, f"{len(tag)} tags requested; at most {bound} per request")
        for path in dict.fromkeys(tag):
            _known(path, model, historian, who)
        values = await historian.latest(tag, limit=limit + 1)
    else:
        values = await historian.latest(prefix=prefix, limit=bound + 1)
    # Record-level check (OWASP API1): other tenants' and out-of-scope tags are simply absent.
    values = [v for v in values if who.sees(Permission.VALUES_READ, v.path)]
    return json_of(
        LatestOut(values=[ValueOut.of(v) for v in values[:limit]], truncated=len(values) > limit)
    )
