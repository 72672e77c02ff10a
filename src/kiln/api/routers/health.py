from __future__ import annotations

from fastapi import APIRouter, Response

from kiln import __version__
from kiln.api.deps import PlatformDep
from kiln.api.schemas import HealthOut, SubsystemOut
from kiln.core.platform import Status

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health(platform: PlatformDep, response: Response) -> HealthOut:
    """Status of every subsystem. Answers 503 when one has failed, so load balancers notice."""
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
    return HealthOut(
        status=overall.value,
        version=__version__,
        subsystems={
            name: SubsystemOut(status=h.status.value, detail=h.detail) for name, h in report.items()
        },
    )
