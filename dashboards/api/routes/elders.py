"""Residents (服务对象): masked lists, audited detail reads."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from dashboards.api.deps import BackendDep, CurrentUser, ScopeDep
from dashboards.schemas import AlertPublic, ElderDetail, ElderPublic

router = APIRouter(prefix="/api/elders", tags=["elders"])


@router.get("", response_model=list[ElderPublic])
def read_elders(backend: BackendDep, scope: ScopeDep) -> list[ElderPublic]:
    """Residents in the caller's scope; ID numbers and phones masked."""
    return [ElderPublic.of(r) for r in backend.list_residents(scope)]


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
def read_elder_alerts(resident_id: str, backend: BackendDep, scope: ScopeDep) -> list[AlertPublic]:
    """Alert history of one resident's home."""
    resident = backend.get_resident(scope, resident_id)
    if resident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "resident not found")
    alerts = [a for a in backend.list_alerts(scope, active=None) if a.site == resident.site]
    return [AlertPublic.of(a) for a in sorted(alerts, key=lambda a: -a.raised_ms)]
