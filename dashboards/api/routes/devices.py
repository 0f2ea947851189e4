"""Devices of the homes in scope, their health, and gateway provisioning (MQTT account and ACL)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, status

from alerts.scope import Scope
from alerts.views import Account, Role
from dashboards.api.deps import ContextDep, CsrfHeader, CurrentUser, ScopeDep
from dashboards.context import AppContext
from dashboards.device_report import DeviceReport, DeviceRow, Presence, device_report
from dashboards.schemas import DevicePublic, GatewayCredentials
from gateway.models import CONTRACT_PREFIX
from gateway.provisioning import gateway_password

router = APIRouter(prefix="/api/devices", tags=["devices"])


async def scoped_device_report(ctx: AppContext, scope: Scope) -> DeviceReport:
    """The devices of the homes in ``scope`` with their status (shared by the API, the page and the statistics)."""
    residents = await asyncio.to_thread(ctx.backend.list_residents, scope)
    alerts = await asyncio.to_thread(ctx.backend.list_alerts, scope)
    return await device_report(residents, alerts, reader=ctx.telemetry, now_ms=ctx.clock())


def filter_rows(
    rows: tuple[DeviceRow, ...],
    *,
    status: Presence | None = None,
    kind: str | None = None,
    community: str | None = None,
    site: str | None = None,
) -> list[DeviceRow]:
    """The rows matching every given filter."""
    return [
        r
        for r in rows
        if (status is None or r.presence is status)
        and (not kind or r.kind == kind)
        and (not community or r.place.community == community)
        and (not site or r.site == site)
    ]


@router.get("", response_model=list[DevicePublic])
async def read_devices(
    ctx: ContextDep,
    scope: ScopeDep,
    status: Presence | None = None,
    kind: str | None = None,
    community: str | None = None,
    site: str | None = None,
) -> list[DevicePublic]:
    """Every device of every home in the caller's scope (one entry per device), optionally filtered."""
    report = await scoped_device_report(ctx, scope)
    return [
        DevicePublic(
            site=r.site, device=r.device, kind=r.kind, room=r.room, online=r.presence.reachable,
            status=r.presence.value, last_seen_ms=r.last_seen_ms, battery_pct=r.battery_pct,
            open_alerts=r.open_alerts, gateway_status=r.gateway.value, community=r.place.community,
            grid=r.place.grid, resident_ids=[rid for rid, _ in r.residents], source=report.source,
        )
        for r in filter_rows(report.rows, status=status, kind=kind, community=community, site=site)
    ]  # fmt: skip


async def provision_site_gateway(ctx: AppContext, scope: Scope, user: Account, site: str) -> GatewayCredentials:
    """Shared by the API and the registry page; raises :class:`ProvisionRefused` with an HTTP status."""
    if user.role is Role.GRID_WORKER:
        raise ProvisionRefused(status.HTTP_403_FORBIDDEN, "grid workers cannot provision gateways")
    residents = await asyncio.to_thread(ctx.backend.list_residents, scope)
    if site not in {r.site for r in residents}:
        raise ProvisionRefused(status.HTTP_404_NOT_FOUND, "site not found")
    if not ctx.gateway_secret or ctx.provisioner is None:
        raise ProvisionRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "this console does not run the broker: provision gateways on the broker host with"
            " `eldercare broker provision` and `eldercare broker password SITE` (docs/operations.md)",
        )
    await asyncio.to_thread(ctx.provisioner, site)
    await asyncio.to_thread(
        ctx.backend.audit, actor=user.id, channel="console", action="gateway.provisioned", entity="site",
        entity_id=site, detail={},
    )  # fmt: skip
    return GatewayCredentials(
        username=site,
        password=gateway_password(ctx.gateway_secret, site),
        topic_prefix=f"{CONTRACT_PREFIX}/{site}/",
    )


class ProvisionRefused(Exception):
    """Why a provisioning request was refused (status code and reason)."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@router.post(
    "/gateways/{site}/provision",
    response_model=GatewayCredentials,
    dependencies=[CsrfHeader],
    responses={503: {"description": "Gateway provisioning is not configured."}},
)
async def provision_gateway(site: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> GatewayCredentials:
    """Create the home gateway's MQTT account and ACL on the broker; the password is shown to the installer once."""
    try:
        return await provision_site_gateway(ctx, scope, user, site)
    except ProvisionRefused as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
