"""InfluxDB-compatible writes, so Telegraf and Influx clients feed Kiln unchanged.

`POST /write?db=acme/plant1&precision=s` (InfluxDB 1.x) and `POST /api/v2/write?bucket=acme/
plant1&precision=s` (2.x) take line protocol (see `kiln.connectors.http.line_protocol`): the
database or bucket is the namespace prefix the values go under. Each answers 204 once every
value is durable, as InfluxDB does; lines that cannot be read are refused with their numbers
(400, "partial write" when others were stored). They need a device credential, sent as
`Authorization: Token ...` (2.x), `Bearer ...`, or as the password (1.x), and the device may
write only under its own prefix. The body may be gzip-compressed (Telegraf's default).

The body is inflated and parsed off the event loop (`HttpIngest.parse_line_protocol`), within
the body, inflated-size and value limits.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from kiln.api.auth import InfluxDevice, publish_scope
from kiln.api.deps import service
from kiln.connectors.http.codec import BodyError
from kiln.connectors.http.ingest import HttpIngest
from kiln.core.errors import NotDurableError
from kiln.security.principal import Principal

IngestDep = Annotated[HttpIngest, Depends(service(HttpIngest))]

router = APIRouter(tags=["influx"])
_SHOWN = 20  # problems named in an answer; the rest are counted

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "lines that could not be read or stored, or a body that is not gzip"},
    413: {
        "description": "over a limit: the body (http.max_body_bytes), its inflated size "
        "(ingest.max_inflated_bytes) or its values (ingest.max_items)"
    },
    415: {"description": "a Content-Encoding other than gzip"},
    503: {"description": "busy or not durable: retry the request (re-sending is harmless)"},
}

PrecisionQ = Annotated[
    Literal["ns", "n", "us", "u", "ms", "s"],
    Query(description="unit of the timestamps in the body (default nanoseconds)"),
]


async def _write(
    request: Request, ingest: IngestDep, device: Principal,
    prefix: str, precision: str, style: Literal["v1", "v2"],
) -> Response:  # fmt: skip
    if not prefix.strip("/"):
        which = "db" if style == "v1" else "bucket"
        raise HTTPException(
            400, f"give the namespace prefix as ?{which}=, e.g. {which}=acme/plant1"
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise HTTPException(415, f"Content-Encoding {encoding!r}: send gzip or no encoding")
    raw = await request.body()  # bounded by http.max_body_bytes (BodyLimit)
    try:
        values, line_errors = await ingest.parse_line_protocol(
            raw, gzipped=encoding == "gzip", prefix=prefix, precision=precision
        )
    except BodyError as err:
        raise HTTPException(err.status, str(err)) from None
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    try:
        result = await ingest.ingest_values(values, [], **publish_scope(device))
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    count = len(line_errors) + len(result.rejected)
    if not count:
        return Response(status_code=204)
    problems = [f"line {e.line}: {e.error}" for e in line_errors[:_SHOWN]]
    problems += [f"{e.path}: {e.error}" for e in result.rejected[: _SHOWN - len(problems)]]
    message = ("partial write: " if result.accepted else "") + "; ".join(problems)
    if count > _SHOWN:
        message += f"; and {count - _SHOWN} more"
    content: dict[str, Any] = (
        {"error": message} if style == "v1" else {"code": "invalid", "message": message}
    )
    return JSONResponse(content, status_code=400)


@router.post(
    "/write",
    status_code=204,
    responses=_RESPONSES,
)
async def write_v1(
    request: Request,
    ingest: IngestDep,
    device: InfluxDevice,
    db: Annotated[str, Query(description="the namespace prefix, e.g. acme/plant1")] = "",
    precision: PrecisionQ = "ns",
) -> Response:
    """InfluxDB 1.x write: line protocol under the namespace prefix `db`."""
    return await _write(request, ingest, device, db, precision, "v1")


@router.post(
    "/api/v2/write",
    status_code=204,
    responses=_RESPONSES,
)
async def write_v2(
    request: Request,
    ingest: IngestDep,
    device: InfluxDevice,
    bucket: Annotated[str, Query(description="the namespace prefix, e.g. acme/plant1")] = "",
    org: Annotated[
        str, Query(description="accepted and ignored (the tenant is the device's)")
    ] = "",
    precision: PrecisionQ = "ns",
) -> Response:
    """InfluxDB 2.x write: line protocol under the namespace prefix `bucket`."""
    return await _write(request, ingest, device, bucket, precision, "v2")
