"""Devices of the homes in scope and their health."""

from __future__ import annotations

from fastapi import APIRouter

from dashboards.api.deps import BackendDep, ScopeDep
from dashboards.schemas import DevicePublic

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("", response_model=list[DevicePublic])
def read_devices(backend: BackendDep, scope: ScopeDep) -> list[DevicePublic]:
    """Every device of every home in the caller's scope (one entry per device)."""
    seen: dict[tuple[str, str], DevicePublic] = {}
    for r in backend.list_residents(scope):
        for d in r.devices:
            seen[(r.site, d.device)] = DevicePublic(
                site=r.site, device=d.device, kind=d.kind, room=d.room, online=d.online
            )
    return list(seen.values())
