from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from kiln import __version__
from kiln.api.auth import Public, Unauthorized, authenticate, reads_installation
from kiln.api.deps import PlatformDep
from kiln.api.schemas import HealthOut, SubsystemOut
from kiln.core.platform import Health, Status
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

router = APIRouter(tags=["health"])

# A failed task's name may carry a connector's name (`task:connector:<name>`), which belongs to
# one tenant: callers who see only their tenant get the failures under this one name.
_TASKS = "tasks"


@router.get("/health", response_model=HealthOut, dependencies=[Depends(Public())])
async def health(platform: PlatformDep, request: Request, response: Response) -> HealthOut:
    """Overall status for anyone (load balancers); each subsystem's status needs system:read,
    its detail (counts, connector and subscriber names of every tenant) system:read over the
    whole installation: the default tenant, unscoped.

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
    principal = await _caller(request)
    if principal is None or not any(
        Permission.SYSTEM_READ in g.permissions for g in principal.grants
    ):
        return HealthOut(status=overall.value, version=__version__, subsystems={})
    if reads_installation(principal):
        subsystems = {
            name: SubsystemOut(status=h.status.value, detail=h.detail) for name, h in report.items()
        }
    else:
        subsystems = _statuses_only(report)
    return HealthOut(status=overall.value, version=__version__, subsystems=subsystems)


async def _caller(request: Request) -> Principal | None:
    try:
        return await authenticate(request)
    except (Unauthorized, HTTPException):
        return None


def _statuses_only(report: dict[str, Health]) -> dict[str, SubsystemOut]:
    out: dict[str, SubsystemOut] = {}
    for name, h in report.items():
        if name.startswith("task:"):
            out[_TASKS] = SubsystemOut(status=Status.FAILED.value, detail={})
        else:
            out[name] = SubsystemOut(status=h.status.value, detail={})
    return out
