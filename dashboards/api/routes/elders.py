"""Residents (服务对象): masked lists, audited detail reads."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, UploadFile, status
from fastapi.responses import Response

from alerts.views import Account
from dashboards.api.deps import BackendDep, ContextDep, CsrfHeader, CurrentUser, OfficersOnly, ScopeDep, is_officer
from dashboards.context import AppContext
from dashboards.csvio import ImportResult, residents_csv
from dashboards.registry_import import MAX_BYTES, import_residents
from dashboards.schemas import AlertPublic, ElderDetail, ElderPublic, ImportReportPublic, RowErrorPublic
from dashboards.telemetry import resident_charts
from dashboards.web.render import translator
from ingest.errors import IngestError

router = APIRouter(prefix="/api/elders", tags=["elders"])


def import_upload(ctx: AppContext, user: Account, file: UploadFile, *, dry_run: bool) -> ImportResult:
    """Check who may import and the upload's size, then validate (and unless ``dry_run`` import) the CSV."""
    if not is_officer(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "grid workers cannot import")
    raw = file.file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "file too large")
    return import_residents(ctx.backend, user, raw, dry_run=dry_run)


@router.get("", response_model=list[ElderPublic])
def read_elders(backend: BackendDep, scope: ScopeDep) -> list[ElderPublic]:
    """Residents in the caller's scope; ID numbers and phones masked."""
    return [ElderPublic.of(r) for r in backend.list_residents(scope)]


@router.get(
    "/export.csv",
    dependencies=[OfficersOnly],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Residents as CSV (masked)."}},
)
def export_elders(ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """Residents in scope as CSV (Chinese headers; ID numbers and phones masked); audited."""
    residents = ctx.backend.list_residents(scope)
    ctx.backend.audit(
        actor=user.id, channel="api", action="registry.csv_exported", entity="resident", entity_id="*",
        detail={"count": str(len(residents))},
    )  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="residents.csv"', "Cache-Control": "no-store"}
    return Response(residents_csv(residents), media_type="text/csv; charset=utf-8", headers=headers)


@router.post(
    "/import",
    response_model=ImportReportPublic,
    dependencies=[CsrfHeader, OfficersOnly],
    responses={413: {"description": "File larger than 5 MB."}},
)
def import_elders(
    ctx: ContextDep,
    user: CurrentUser,
    file: UploadFile,
    dry_run: bool = True,
) -> ImportReportPublic:
    """Import residents from CSV: every bad row is reported with its line and reason; good rows are kept."""
    result = import_upload(ctx, user, file, dry_run=dry_run)
    return ImportReportPublic(
        dry_run=dry_run,
        accepted=result.accepted,
        errors=[RowErrorPublic(line=e.line, field=e.field, reason=e.reason) for e in result.errors],
        notices=[RowErrorPublic(line=n.line, field=n.field, reason=n.reason) for n in result.notices],
    )


@router.get("/{resident_id}", response_model=ElderDetail)
def read_elder(resident_id: str, backend: BackendDep, scope: ScopeDep, user: CurrentUser) -> ElderDetail:
    """One resident's record; 404 outside the caller's scope; every read is audited."""
    resident = backend.get_resident(scope, resident_id)
    if resident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found")
    backend.audit(
        actor=user.id, channel="api", action="resident.read", entity="resident", entity_id=resident_id, detail={}
    )
    return ElderDetail.detail(resident)


@router.get("/{resident_id}/alerts", response_model=list[AlertPublic])
def read_elder_alerts(resident_id: str, backend: BackendDep, scope: ScopeDep, user: CurrentUser) -> list[AlertPublic]:
    """Alert history of one resident's home (audited as a read of the resident)."""
    resident = backend.get_resident(scope, resident_id)
    if resident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found")
    alerts = backend.list_alerts(scope, active=None, site=resident.site)
    backend.audit(
        actor=user.id, channel="api", action="resident.read", entity="resident", entity_id=resident_id,
        detail={"what": "alerts"},
    )  # fmt: skip
    return [AlertPublic.of(a) for a in sorted(alerts, key=lambda a: -a.raised_ms)]


@router.get(
    "/{resident_id}/telemetry",
    responses={502: {"description": "InfluxDB query failed."}, 503: {"description": "No telemetry store."}},
)
async def read_elder_telemetry(
    resident_id: str, request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser, range: str = "24h"
) -> dict[str, Any]:
    """Chart data (heart/breathing rate with the baseline band, bed occupancy, door and motion activity)."""
    resident = await asyncio.to_thread(ctx.backend.get_resident, scope, resident_id)
    if resident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found")
    if ctx.telemetry is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "telemetry store not configured")
    t = translator(request)
    labels = {
        "hr": t("chart.hr"), "rr": t("chart.rr"), "bed": t("chart.bed"), "door": t("chart.door"),
        "motion": t("chart.motion"),
    }  # fmt: skip
    try:
        charts = await resident_charts(
            ctx.telemetry,
            site=resident.site,
            range_key=range,
            now_ms=ctx.clock(),
            baseline=ctx.baselines(resident.site) if ctx.baselines else None,
            labels=labels,
        )
    except IngestError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"telemetry query failed: {type(exc).__name__}") from None
    await asyncio.to_thread(
        ctx.backend.audit, actor=user.id, channel="api", action="resident.read", entity="resident",
        entity_id=resident_id, detail={"what": "telemetry", "range": range},
    )  # fmt: skip
    return charts
