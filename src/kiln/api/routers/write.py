"""Writing a value to a device through its connector (write-back), permissioned and audited."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from kiln.api.audit_trail import audit
from kiln.api.auth import DeviceWriter
from kiln.api.deps import HistorianDep, PlatformDep
from kiln.api.schemas import JsonScalar
from kiln.connectors.service import Connectors, NotWritable
from kiln.core.values import validate_path
from kiln.security.audit import Category, Result
from kiln.security.permissions import Permission

router = APIRouter(tags=["write"])


class WriteIn(BaseModel):
    path: str = Field(max_length=1024, description="the device tag to write")
    value: bool | int | float | str = Field(description="in the tag's engineering units")


class WriteOut(BaseModel):
    path: str
    connector: str
    old_value: JsonScalar = Field(description="the latest value before the write, if known")
    value: JsonScalar


@router.post(
    "/write",
    response_model=WriteOut,
    responses={
        404: {"description": "no such tag, or no connector that can write it"},
        502: {"description": "the device refused the write or could not be reached"},
    },
)
async def write(
    body: WriteIn,
    request: Request,
    who: DeviceWriter,
    platform: PlatformDep,
    historian: HistorianDep,
) -> WriteOut:
    """Write `value` to the device tag at `path`, through the connector that reads it.

    Needs devices:write over the tag's place in the namespace. Every attempt is audited with
    the old and the new value, whether the device accepts it or not.
    """
    path = validate_path(body.path)
    missing = HTTPException(404, f"no writable tag {path!r} for you: check the path and scope")
    if not who.sees(Permission.DEVICES_WRITE, path) or not platform.has(Connectors):
        raise missing
    latest = await historian.latest([path], limit=1)
    old = latest[0].value if latest else None
    detail = {"old": old, "new": body.value}
    try:
        connector = await platform.service(Connectors).write(path, body.value)
    except NotWritable:
        raise missing from None
    except (ValueError, LookupError) as err:
        await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                    result=Result.FAILURE, detail={**detail, "error": str(err)})  # fmt: skip
        raise HTTPException(400, str(err)) from None
    except (ConnectionError, OSError, TimeoutError) as err:
        await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                    result=Result.FAILURE, detail={**detail, "error": str(err)})  # fmt: skip
        raise HTTPException(502, f"the device did not take the write: {err}") from None
    await audit(request, category=Category.DEVICE_WRITE, action="write", target=path,
                detail={**detail, "connector": connector})  # fmt: skip
    return WriteOut(path=path, connector=connector, old_value=old, value=body.value)
