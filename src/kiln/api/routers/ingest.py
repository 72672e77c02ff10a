from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from kiln.api.auth import Device, publish_scope
from kiln.api.deps import SettingsDep, service
from kiln.api.schemas import IngestIn, IngestOut, ItemErrorOut
from kiln.connectors.http.bulk import CONTENT_TYPES, BulkError, BulkLimits, BulkTooLarge
from kiln.connectors.http.codec import BodyError
from kiln.connectors.http.ingest import HttpIngest
from kiln.connectors.http.settings import IngestSettings
from kiln.core.errors import NotDurableError

IngestDep = Annotated[HttpIngest, Depends(service(HttpIngest))]

router = APIRouter(tags=["ingest"])


_INGEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": IngestIn.model_json_schema()}},
}


@router.post(
    "/ingest",
    response_model=IngestOut,
    responses={
        207: {
            "model": IngestOut,
            "description": "some items were rejected; the others are durable",
        },
        400: {
            "description": "the body is not UTF-8 JSON or is nested too deeply (the detail says where)"
        },
        413: {
            "description": "over a limit: the body (http.max_body_bytes) or its items (ingest.max_items)"
        },
        422: {"description": 'no item was valid, or the body is not {"values": [...]}'},
        503: {"description": "busy or not durable: retry the request (re-sending is harmless)"},
    },
    # The body is read raw and parsed off the event loop, not by FastAPI: declared here so the
    # OpenAPI document still shows it.
    openapi_extra={"requestBody": _INGEST_BODY},
)
async def ingest(
    request: Request, ingest: IngestDep, response: Response, device: Device
) -> IngestOut:
    """Store a batch of values; answers only once every accepted value is committed.

    A path that is not yet a tag creates one (its type inferred from the value), except under
    a namespace subtree the configuration locks. Invalid items are rejected one by one with
    the reason and do not hold back valid ones.

    Needs a device credential (`Authorization: Bearer kiln_dev_...`); a device publishes only
    under its own namespace prefix.
    """
    raw = await request.body()  # bounded by http.max_body_bytes (BodyLimit)
    try:
        result = await ingest.ingest_body(raw, **publish_scope(device))
    except BodyError as err:
        raise HTTPException(err.status, str(err)) from None
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    if result.rejected:
        response.status_code = 207 if result.accepted else 422
    return IngestOut(
        accepted=result.accepted,
        rejected=[ItemErrorOut(index=e.index, path=e.path, error=e.error) for e in result.rejected],
        created_tags=result.created_tags,
    )


class BulkRejectedOut(BaseModel):
    path: str
    error: str
    points: int = Field(description="rows of this path left out")


class BulkOut(BaseModel):
    accepted: int
    rejected: list[BulkRejectedOut]
    created_tags: list[str]


@router.post(
    "/ingest/bulk",
    response_model=BulkOut,
    responses={
        207: {"model": BulkOut, "description": "some paths were refused; the rest is durable"},
        400: {"description": "the body is not a table of points (the detail says why)"},
        401: {"description": "no valid device credential"},
        403: {"description": "the credential may not ingest"},
        413: {
            "description": "over ingest.bulk_max_bytes, ingest.bulk_max_rows or the inflated "
            "size (the larger of ingest.max_inflated_bytes and ingest.bulk_max_bytes), found "
            "before the table is read"
        },
        415: {"description": "not an Arrow IPC stream or file, nor Parquet"},
        422: {
            "model": BulkOut,
            "description": "no path was accepted: each refused path with its first bad row",
        },
        503: {
            "description": "not durable in time, or every ingest worker busy (Retry-After): "
            "retry the request (re-sending is harmless)"
        },
    },
)
async def ingest_bulk(
    request: Request, ingest: IngestDep, settings: SettingsDep, response: Response, device: Device
) -> BulkOut:
    """Store a table of points, for backfills and migrations; answers once they are durable.

    The body is an Arrow IPC stream (`application/vnd.apache.arrow.stream`), an Arrow file
    (`application/vnd.apache.arrow.file`) or Parquet (`application/vnd.apache.parquet`) with
    columns `path`, `ts` (timestamp of any unit, floored to microseconds, or integer epoch
    microseconds), `value` and optionally `quality`. Paths are checked once each; a refused
    path (outside the device's prefix, of the wrong type, or with a row whose timestamp is
    outside the acceptance window or whose value is NaN or infinite without a Bad quality)
    leaves out its rows only. Needs a device credential; a device publishes only under its own
    prefix.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in CONTENT_TYPES:
        raise HTTPException(
            415, f"send the table as one of {', '.join(CONTENT_TYPES)}, not {content_type!r}"
        )
    ingest_settings = settings.section(IngestSettings)
    # A compressed table may take the memory an uncompressed upload of the largest accepted
    # size takes, and no more.
    limits = BulkLimits(
        max_rows=ingest_settings.bulk_max_rows,
        max_inflated_bytes=max(ingest_settings.max_inflated_bytes, ingest_settings.bulk_max_bytes),
    )
    # The chunks as received (bounded by ingest.bulk_max_bytes, BodyLimit): the worker joins
    # them, since copying up to 512 MiB here would hold up the event loop.
    chunks = [chunk async for chunk in request.stream()]
    try:
        result = await ingest.ingest_columns(chunks, content_type, limits, **publish_scope(device))
    except BulkTooLarge as err:
        raise HTTPException(413, str(err)) from None
    except BulkError as err:
        raise HTTPException(400, str(err)) from None
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    if result.rejected:
        response.status_code = 207 if result.accepted else 422
    return BulkOut(
        accepted=result.accepted,
        rejected=[BulkRejectedOut(path=p, error=e, points=n) for p, e, n in result.rejected],
        created_tags=result.created_tags,
    )
