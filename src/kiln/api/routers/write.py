"""Writing a value to a device through its connector (write-back), permissioned and audited.

The write is the bus command `write` to target `connectors` (`kiln.connectors.commands`), so it
reaches the connector wherever it runs; the route never calls a connector itself. Nobody serving
that target means different things by deployment: in one process (the in-process bus) there are
no connectors, so no tag is writable (404); on a broker bus the connectors run in another process
that is not there now (stopped, or cut off from the broker), so the write is refused for now
(503 with Retry-After), never reported as a tag that does not exist.

The route reads its own body instead of letting FastAPI parse it: a write is one path and one
value, so the body is capped far below `http.max_body_bytes` before anything is parsed, and
each way a body can be wrong (content type, UTF-8, JSON syntax, nesting) gets its own message.
The value rules are the ingest rules (`kiln.core.admission`, `connectors/http/codec.py`): a
device is never sent what the historian would refuse to store.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, WithJsonSchema, field_validator

from kiln.api.audit_trail import audit
from kiln.api.auth import DeviceWriter
from kiln.api.deps import PlatformDep, service
from kiln.api.schemas import JsonScalar
from kiln.connectors.commands import CONNECTORS, WRITE
from kiln.core import admission
from kiln.core.bus import (
    Command,
    CommandError,
    CommandFailure,
    CommandTimeoutError,
    InProcessBus,
    NoResponderError,
)
from kiln.core.quality import Quality
from kiln.core.values import validate_path
from kiln.historian.service import Historian
from kiln.security.audit import Category, Result
from kiln.security.permissions import Permission

HistorianDep = Annotated[Historian, Depends(service(Historian))]

router = APIRouter(tags=["write"])

# One path (at most 1024 characters, each up to 4 bytes of UTF-8 or a 6-byte JSON escape), one
# string value of at most 4096 characters, and room for whitespace: 64 KiB is generous.
MAX_WRITE_BYTES = 64 * 1024
MAX_STRING = admission.MAX_TEXT
_INT64 = (admission.INT64_MIN, admission.INT64_MAX)
RETRY_AFTER_S = 5
# How long a write may take, end to end: longer than any connector's own I/O timeout, so a
# device that does not answer is reported by its connector (503) rather than by the deadline.
WRITE_DEADLINE_S = 10.0
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}  # fmt: skip


WriteValue = Annotated[
    bool | int | float | str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "minimum": _INT64[0], "maximum": _INT64[1]},
                {"type": "number"},
                {"type": "string", "maxLength": MAX_STRING},
            ],
            "description": "in the tag's engineering units: a finite number, an integer that "
            f"fits in 64 bits, a boolean or a string of at most {MAX_STRING} characters",
        }
    ),
]


class WriteIn(BaseModel):
    path: str = Field(max_length=1024, description="the device tag to write")
    value: WriteValue

    @field_validator("value")
    @classmethod
    def _short_enough(cls, value: bool | int | float | str) -> bool | int | float | str:
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise ValueError(f"string values are limited to {MAX_STRING} characters")
        return value


def value_problem(value: bool | int | float | str) -> str | None:
    """Why a device must not be sent `value`: the ingest rules the schema cannot state (Python's
    JSON reader takes NaN, Infinity and 1e999, which overflows to inf), so a device is never
    sent a value the historian would refuse to store."""
    return admission.value_problem(value, int(Quality.GOOD))


class WriteOut(BaseModel):
    path: str
    connector: str
    old_value: JsonScalar = Field(description="the latest value before the write, if known")
    value: JsonScalar


@router.post(
    "/write",
    response_model=WriteOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WriteIn.model_json_schema()}},
        }
    },
    responses={
        400: {"description": "an invalid path, a body that is not UTF-8 or not JSON, a number "
              "that is not finite or not 64-bit, or a value the tag cannot take (type, range, "
              "scale, read-only; the device's refusal)"},
        404: {"description": "no such tag, or no connector that can write it"},
        413: {"description": f"a body over {MAX_WRITE_BYTES} bytes"},
        415: {"description": "a body that is not application/json"},
        422: {"description": "a body that is not an object, a missing field, a value of "
              "another type, or a string over the schema's length"},
        502: {"description": "the device failed the write in a way a retry does not cure"},
        503: {"description": "the device is not connected, or (several processes on a broker "
              "bus) no process runs the connectors now; retry after Retry-After seconds"},
        504: {"description": f"no answer from the connectors within {WRITE_DEADLINE_S:g} s: the "
              "write may still have reached the device; read the tag before trying again"},
    },
)  # fmt: skip
async def write(
    request: Request,
    who: DeviceWriter,
    platform: PlatformDep,
    historian: HistorianDep,
) -> WriteOut:
    """Write `value` to the device tag at `path`, through the connector that reads it.

    Needs devices:write over the tag's place in the namespace. Every attempt that reaches a
    connector is audited with the old and the new value, whether the device accepts it or not.
    """
    body = await _write_in(request)
    path = validate_path(body.path)
    problem = value_problem(body.value)
    if problem:
        raise HTTPException(400, f"{problem}: nothing was written")
    missing = HTTPException(404, f"no writable tag {path!r} for you: check the path and scope")
    if not who.sees(Permission.DEVICES_WRITE, path):
        raise missing
    latest = await historian.latest([path], limit=1)
    old = latest[0].value if latest else None
    detail = {"old": old, "new": body.value}
    command = Command(CONNECTORS, WRITE, {"path": path, "value": body.value})
    try:
        reply = await platform.bus.request(command, timeout_s=WRITE_DEADLINE_S)
    except NoResponderError:
        if isinstance(platform.bus, InProcessBus):
            raise missing from None  # one process, without connectors: nothing is writable
        raise _unavailable(
            "no process runs the connectors now (the sources process is stopped or cannot "
            "reach the broker): nothing was written; retry once it is back"
        ) from None
    except CommandTimeoutError:
        error = f"no answer from the connectors within {WRITE_DEADLINE_S:g} s"
        await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                    result=Result.FAILURE, detail={**detail, "error": error})  # fmt: skip
        raise HTTPException(
            504, f"{error}: the write may still have reached the device; read the tag back "
            "before writing again",
        ) from None  # fmt: skip
    except CommandError as err:
        if err.kind is CommandFailure.NOT_FOUND:
            raise missing from None
        await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                    result=Result.FAILURE, detail={**detail, "error": str(err)})  # fmt: skip
        raise _refused(err) from None
    connector = str(reply.get("connector", ""))
    await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                detail={**detail, "connector": connector})  # fmt: skip
    return WriteOut(path=path, connector=connector, old_value=old, value=body.value)


def _refused(err: CommandError) -> HTTPException:
    """The HTTP answer to a write the connectors refused, by the kind of refusal."""
    if err.kind is CommandFailure.UNAVAILABLE:
        return _unavailable(f"{err}: nothing was written; retry when it reconnects")
    if err.kind is CommandFailure.INVALID:
        return HTTPException(400, str(err))
    return HTTPException(502, f"the device did not take the write: {err}")


def _unavailable(detail: str) -> HTTPException:
    return HTTPException(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _write_in(request: Request) -> WriteIn:
    """The body as a WriteIn, or the 4xx that says what is wrong with it."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(
            415,
            f"send the body as application/json, not {media or 'without a content type'}: "
            '{"path": "...", "value": ...}',
        )
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_WRITE_BYTES:
            raise HTTPException(
                413, f"a write body is at most {MAX_WRITE_BYTES} bytes: one path and one value"
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(400, f"body is not UTF-8: invalid byte at offset {err.start}") from None
    try:
        doc: Any = json.loads(text)
    except RecursionError:
        raise HTTPException(
            400, 'body is nested too deeply: send {"path": "...", "value": ...}'
        ) from None
    except json.JSONDecodeError as err:
        raise HTTPException(
            400, f"body is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except ValueError as err:  # an integer literal over Python's 4300-digit limit
        raise HTTPException(400, f"body is not usable JSON: {err}") from None
    if not isinstance(doc, dict):
        kind = _JSON_KINDS.get(type(doc), "value")
        raise HTTPException(
            422, f'the body is a JSON {kind}: send an object {{"path": ..., "value": ...}}'
        )
    try:
        return WriteIn.model_validate(doc)
    except ValidationError as err:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
        raise RequestValidationError(errors, body=doc) from None
