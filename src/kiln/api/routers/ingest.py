from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from kiln.api.auth import Device, publish_scope
from kiln.api.deps import IngestDep, SettingsDep
from kiln.api.schemas import IngestIn, IngestOut, ItemErrorOut
from kiln.connectors.http.bulk import CONTENT_TYPES, BulkError, columns, read_table
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
            **publish_scope(device),
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
        415: {"description": "not an Arrow IPC stream or file, nor Parquet"},
        503: {"description": "not durable: retry the request (re-sending is harmless)"},
    },
)
async def ingest_bulk(
    request: Request, ingest: IngestDep, response: Response, device: Device
) -> BulkOut:
    """Store a table of points, for backfills and migrations; answers once they are durable.

    The body is an Arrow IPC stream (`application/vnd.apache.arrow.stream`), an Arrow file
    (`application/vnd.apache.arrow.file`) or Parquet (`application/vnd.apache.parquet`) with
    columns `path`, `ts` (timestamp, or integer epoch microseconds), `value` and optionally
    `quality`. Paths are checked once each; a refused path leaves out its rows only.
    Needs a device credential; a device publishes only under its own prefix.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in CONTENT_TYPES:
        raise HTTPException(
            415, f"send the table as one of {', '.join(CONTENT_TYPES)}, not {content_type!r}"
        )
    body = await request.body()
    try:
        cols = columns(read_table(body, content_type))
    except BulkError as err:
        raise HTTPException(400, str(err)) from None
    try:
        result = await ingest.ingest_columns(
            cols,
            **publish_scope(device),
        )
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    if result.rejected:
        response.status_code = 207 if result.accepted else 422
    return BulkOut(
        accepted=result.accepted,
        rejected=[BulkRejectedOut(path=p, error=e, points=n) for p, e, n in result.rejected],
        created_tags=result.created_tags,
    )
