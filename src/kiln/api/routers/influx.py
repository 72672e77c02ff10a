"""InfluxDB-compatible writes, so Telegraf and Influx clients feed Kiln unchanged.

`POST /write?db=acme/plant1&precision=s` (InfluxDB 1.x) and `POST /api/v2/write?bucket=acme/
plant1&precision=s` (2.x) take line protocol (see `kiln.connectors.http.line_protocol`): the
database or bucket is the namespace prefix the values go under. Each answers 204 once every
value is durable, as InfluxDB does; lines that cannot be read are refused with their numbers
(400, "partial write" when others were stored). They need a device credential, sent as
`Authorization: Token ...` (2.x), `Bearer ...`, or as the password (1.x), and the device may
write only under its own prefix. The body may be gzip-compressed (Telegraf's default).
"""

from __future__ import annotations

import zlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from kiln.api.auth import InfluxDevice, publish_scope
from kiln.api.deps import IngestDep, SettingsDep, get_platform
from kiln.connectors.http.codec import ItemError
from kiln.connectors.http.line_protocol import parse_lines
from kiln.core.errors import NotDurableError
from kiln.core.values import TagValue
from kiln.security.principal import Principal

router = APIRouter(tags=["influx"])

PrecisionQ = Annotated[
    Literal["ns", "n", "us", "u", "ms", "s"],
    Query(description="unit of the timestamps in the body (default nanoseconds)"),
]


async def _body(request: Request, limit: int) -> str:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error as err:
            raise HTTPException(400, f"the body is not valid gzip: {err}") from None
        if len(raw) > limit:
            raise HTTPException(413, f"the decompressed body exceeds {limit} bytes")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise HTTPException(400, "line protocol must be UTF-8") from None


async def _write(
    request: Request, ingest: IngestDep, settings: SettingsDep, device: Principal,
    prefix: str, precision: str, style: Literal["v1", "v2"],
) -> Response:  # fmt: skip
    if not prefix.strip("/"):
        which = "db" if style == "v1" else "bucket"
        raise HTTPException(
            400, f"give the namespace prefix as ?{which}=, e.g. {which}=acme/plant1"
        )
    body = await _body(request, settings.http.max_body_bytes * 8)
    receive_us = get_platform(request).clock.now_us()
    values, line_errors = parse_lines(
        body, prefix=prefix, precision=precision, receive_us=receive_us
    )
    if len(values) > settings.ingest.max_items:
        raise HTTPException(
            413, f"{len(values)} values; at most {settings.ingest.max_items} per request"
        )
    parsed: list[tuple[int, TagValue]] = list(enumerate(values))
    try:
        result = await ingest.ingest_values(parsed, [], **publish_scope(device))
    except NotDurableError as err:
        raise HTTPException(503, str(err)) from None
    problems = [f"line {e.line}: {e.error}" for e in line_errors]
    problems += [_value_problem(e, values) for e in result.rejected]
    if not problems:
        return Response(status_code=204)
    message = ("partial write: " if result.accepted else "") + "; ".join(problems[:20])
    if len(problems) > 20:
        message += f"; and {len(problems) - 20} more"
    content: dict[str, Any] = (
        {"error": message} if style == "v1" else {"code": "invalid", "message": message}
    )
    return JSONResponse(content, status_code=400)


def _value_problem(error: ItemError, values: list[TagValue]) -> str:
    return f"{values[error.index].path}: {error.error}"


@router.post(
    "/write",
    status_code=204,
    responses={400: {"description": "lines that could not be read or stored"}},
)
async def write_v1(
    request: Request,
    ingest: IngestDep,
    settings: SettingsDep,
    device: InfluxDevice,
    db: Annotated[str, Query(description="the namespace prefix, e.g. acme/plant1")] = "",
    precision: PrecisionQ = "ns",
) -> Response:
    """InfluxDB 1.x write: line protocol under the namespace prefix `db`."""
    return await _write(request, ingest, settings, device, db, precision, "v1")


@router.post(
    "/api/v2/write",
    status_code=204,
    responses={400: {"description": "lines that could not be read or stored"}},
)
async def write_v2(
    request: Request,
    ingest: IngestDep,
    settings: SettingsDep,
    device: InfluxDevice,
    bucket: Annotated[str, Query(description="the namespace prefix, e.g. acme/plant1")] = "",
    org: Annotated[
        str, Query(description="accepted and ignored (the tenant is the device's)")
    ] = "",
    precision: PrecisionQ = "ns",
) -> Response:
    """InfluxDB 2.x write: line protocol under the namespace prefix `bucket`."""
    return await _write(request, ingest, settings, device, bucket, precision, "v2")
