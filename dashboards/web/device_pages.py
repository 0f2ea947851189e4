"""The device list (设备管理): every device of the homes in scope with its status, filterable; phone-friendly."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from dashboards.api.deps import ContextDep, CurrentUser, ScopeDep
from dashboards.api.routes.devices import filter_rows, scoped_device_report
from dashboards.device_report import Presence
from dashboards.web.render import render

router = APIRouter(prefix="/devices", tags=["devices"])

_FIRST: dict[Presence, int] = {Presence.OFFLINE: 0, Presence.UNSEEN: 1, Presence.LATE: 2, Presence.ONLINE: 3}
"""Problems first."""


@router.get("", response_class=HTMLResponse)
async def devices_page(
    request: Request,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    status: Presence | None = None,
    kind: str = "",
    community: str = "",
    site: str = "",
) -> Response:
    """Devices in scope: status from the last-seen time (or open offline alerts), battery, open device alerts."""
    report, tree = await asyncio.gather(
        scoped_device_report(ctx, scope), asyncio.to_thread(ctx.backend.hierarchy, scope)
    )
    rows = filter_rows(report.rows, status=status, kind=kind, community=community, site=site)
    return render(
        request,
        "devices.html",
        user=user,
        report=report,
        rows=sorted(rows, key=lambda r: (_FIRST[r.presence], r.site, r.kind != "gateway", r.device)),
        counts=report.counts(gateways=True),  # what the list lists: its total is their sum
        kinds=sorted({r.kind for r in report.rows}),
        communities=tree.communities,
        grids={g.id: g.name for g in tree.grids},
        community_names={c.id: c.name for c in tree.communities},
        presences=list(Presence),
        filters={"status": status.value if status else "", "kind": kind, "community": community, "site": site},
    )
