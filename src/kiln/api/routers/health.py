from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from kiln import __version__
from kiln.api.auth import Public, Unauthorized, authenticate
from kiln.api.deps import PlatformDep
from kiln.api.schemas import HealthOut, SubsystemOut
from kiln.core.platform import Status
from kiln.security.permissions import Permission

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, dependencies=[Depends(Public())])
async def health(platform: PlatformDep, request: Request, response: Response) -> HealthOut:
    """Overall status for anyone (load balancers); each subsystem's detail needs system:read.

    Answers 503 when a subsystem has failed, so load balancers notice.
    """
    report = platform.health()
    statuses = {h.status for h in report.values()}
    overall = (
        Status.FAILED
        if Status.FAILED in statuses
        else Status.DEGRADED
        if statuses & {Status.DEGRADED, Status.STARTING, Status.STOPPED}
        else Status.OK
    )
    if overall is Status.FAILED:
        response.status_code = 503
    if not await _may_see_detail(request):
        return HealthOut(status=overall.value, version=__version__, subsystems={})
    return HealthOut(
        status=overall.value,
        version=__version__,
        subsystems={
            name: SubsystemOut(status=h.status.value, detail=h.detail) for name, h in report.items()
        },
    )


async def _may_see_detail(request: Request) -> bool:
    try:
        principal = await authenticate(request)
    except (Unauthorized, HTTPException):
        return False
    return any(Permission.SYSTEM_READ in g.permissions for g in principal.grants)
