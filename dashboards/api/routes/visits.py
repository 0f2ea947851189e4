"""Monthly care visits (探访关爱)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from alerts.store.errors import RecordNotFound
from dashboards.api.deps import ContextDep, CsrfHeader, CurrentUser, MonthQuery, ScopeDep
from dashboards.listing import month_window
from dashboards.schemas import VisitCreate, VisitPublic

router = APIRouter(prefix="/api/visits", tags=["visits"])


@router.get("", response_model=list[VisitPublic])
def read_visits(ctx: ContextDep, scope: ScopeDep, month: MonthQuery = None) -> list[VisitPublic]:
    """Visits of one local month (YYYY-MM, default: this month) in the caller's scope."""
    _, start, end = month_window(month, ctx.clock())
    return [VisitPublic.of(v) for v in ctx.backend.list_visits(scope, since_ms=start, until_ms=end)]


@router.post("", response_model=VisitPublic, status_code=status.HTTP_201_CREATED, dependencies=[CsrfHeader])
def create_visit(body: VisitCreate, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> VisitPublic:
    """Record a visit to a resident in the caller's scope."""
    if ctx.backend.get_resident(scope, body.resident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found")
    try:
        visit = ctx.backend.record_visit(
            resident_id=body.resident_id,
            worker_id=user.id,
            time_ms=body.time_ms or ctx.clock(),
            outcome=body.outcome,
            note=body.note,
        )
    except RecordNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found") from None
    return VisitPublic.of(visit)
