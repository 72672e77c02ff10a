"""The audit trail for auditors (audit:read): query, export, verify.

An auditor of the platform's own tenant reads every record; an auditor of another tenant
reads only its tenant's. Queries are bounded and page by sequence number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from kiln.api.audit_trail import audit
from kiln.api.auth import AuditReader
from kiln.api.deps import PlatformDep
from kiln.core.timespec import parse_time_us
from kiln.security.audit import AuditLog, Category, Result
from kiln.security.audit.export import export_csv, export_jsonl
from kiln.security.audit.record import AuditRecord
from kiln.security.audit.store import MAX_QUERY_LIMIT
from kiln.security.principal import Principal
from kiln.security.service import DEFAULT_TENANT

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditRecordOut(BaseModel):
    seq: int
    time: datetime
    actor: str
    source: str
    category: str
    action: str
    target: str
    result: str
    tenant: str | None
    detail: dict[str, Any]
    mac: str

    @classmethod
    def of(cls, r: AuditRecord) -> AuditRecordOut:
        return cls(
            seq=r.seq,
            time=r.time,
            actor=r.actor,
            source=r.source,
            category=r.category.value,
            action=r.action,
            target=r.target,
            result=r.result.value,
            tenant=r.tenant,
            detail=dict(r.detail),
            mac=r.mac,
        )


class AuditPageOut(BaseModel):
    records: list[AuditRecordOut]
    next_after_seq: int | None = None


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    archived: int
    newest: int
    problems: list[str]


class _Filters:
    """The query parameters every audit route shares."""

    def __init__(
        self,
        platform: PlatformDep,
        start: Annotated[str | None, Query(description="ISO 8601 or relative (-1d)")] = None,
        end: Annotated[str | None, Query()] = None,
        actor: Annotated[str | None, Query(max_length=256)] = None,
        category: Annotated[Category | None, Query()] = None,
        action: Annotated[str | None, Query(max_length=64)] = None,
        result: Annotated[Result | None, Query()] = None,
        after_seq: Annotated[int | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_QUERY_LIMIT)] = 1000,
    ) -> None:
        now = platform.clock.now_us()
        try:
            self.start_us = None if start is None else parse_time_us(start, now)
            self.end_us = None if end is None else parse_time_us(end, now)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        self.actor, self.category, self.action, self.result = actor, category, action, result
        self.after_seq, self.limit = after_seq, limit

    async def run(self, log: AuditLog, who: Principal) -> list[AuditRecord]:
        return await log.query(
            start_us=self.start_us,
            end_us=self.end_us,
            actor=self.actor,
            category=self.category,
            action=self.action,
            result=self.result,
            tenant=None if who.tenant == DEFAULT_TENANT else who.tenant,
            after_seq=self.after_seq,
            limit=self.limit,
        )


Filters = Annotated[_Filters, Depends()]


def _log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.platform.service(AuditLog)
    return log


@router.get("", response_model=AuditPageOut)
async def query(request: Request, who: AuditReader, filters: Filters) -> AuditPageOut:
    """Audit records, oldest first; page on with `after_seq=next_after_seq`."""
    records = await filters.run(_log(request), who)
    more = len(records) == filters.limit
    return AuditPageOut(
        records=[AuditRecordOut.of(r) for r in records],
        next_after_seq=records[-1].seq if more and records else None,
    )


@router.get("/export", response_class=StreamingResponse)
async def export(
    request: Request,
    who: AuditReader,
    filters: Filters,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
) -> StreamingResponse:
    """The same records as a file: JSON lines (exact, with the chain MACs) or CSV."""
    records = await filters.run(_log(request), who)
    await audit(
        request, category=Category.AUDIT, action="audit.export", target=format,
        detail={"records": len(records)},
    )  # fmt: skip
    if format == "csv":
        body, media = export_csv(records), "text/csv; charset=utf-8"
    else:
        body, media = export_jsonl(records), "application/x-ndjson"
    name = f"kiln-audit.{format}"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/verify", response_model=VerifyOut)
async def verify(request: Request, who: AuditReader) -> VerifyOut:
    """Check the whole chain (archive included); `problems` name the records concerned."""
    result = await _log(request).verify()
    await audit(
        request, category=Category.AUDIT, action="audit.verify",
        result=Result.SUCCESS if result.ok else Result.FAILURE,
        detail={"checked": result.checked, "problems": len(result.problems)},
    )  # fmt: skip
    return VerifyOut(
        ok=result.ok,
        checked=result.checked,
        archived=result.archived,
        newest=result.newest,
        problems=result.problems[:100],
    )
