from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from kiln.api.auth import Device
from kiln.api.deps import IngestDep, SettingsDep
from kiln.api.schemas import IngestIn, IngestOut, ItemErrorOut
from kiln.core.errors import NotDurableError

router = APIRouter(tags=["ingest"])


@router.post(
    "/ingest",
    response_model=IngestOut,
    responses={
        207: {
            "model": IngestOut,
            "description": "some items were rejected; the others are durable",
        },
        422: {"description": "no item was valid"},
        503: {"description": "not durable: retry the request (re-sending is harmless)"},
    },
)
async def ingest(
    body: IngestIn, ingest: IngestDep, settings: SettingsDep, response: Response, device: Device
) -> IngestOut:
    """Store a batch of values; answers only once every accepted value is committed.

    A path that is not yet a tag creates one (its type inferred from the value), except under
    a namespace subtree the configuration locks. Invalid items are rejected one by one with
    the reason and do not hold back valid ones.

    Needs a device credential (`Authorization: Bearer kiln_dev_...`); a device publishes only
    under its own namespace prefix.
    """
    if len(body.values) > settings.ingest.max_items:
        raise HTTPException(
            413, f"{len(body.values)} items; at most {settings.ingest.max_items} per request"
        )
    try:
        result = await ingest.ingest(
            body.values,
            may_publish=device.may_publish,
            denied=f"device {device.name} may publish only under {device.device_prefix}",
        )
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    if result.rejected:
        response.status_code = 207 if result.accepted else 422
    return IngestOut(
        accepted=result.accepted,
        rejected=[ItemErrorOut(index=e.index, path=e.path, error=e.error) for e in result.rejected],
        created_tags=result.created_tags,
    )
