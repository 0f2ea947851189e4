"""The large-screen overview (监测大屏): live counts for a wall display, refreshed every few seconds."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from dashboards.api.deps import ContextDep, CurrentUser, OfficersOnly, ScopeDep
from dashboards.device_report import Presence, device_report
from dashboards.listing import TZ, month_window
from dashboards.stats import format_duration, percentile, visit_coverage
from dashboards.web.render import render, translator

router = APIRouter(prefix="/bigscreen", tags=["bigscreen"], dependencies=[OfficersOnly])
ACTIVE_STATES = ("open", "acknowledged", "en_route", "on_site")


@router.get("", response_class=HTMLResponse)
def bigscreen_page(request: Request, user: CurrentUser) -> Response:
    """The page; its numbers come from ``/bigscreen/data`` (ECharts, served locally)."""
    return render(request, "bigscreen.html", user=user, states=ACTIVE_STATES)


@router.get("/data")
async def bigscreen_data(request: Request, ctx: ContextDep, scope: ScopeDep) -> dict[str, Any]:
    """Counts by state and community, today's alerts and response times, visit coverage, devices online."""
    t = translator(request)
    now = ctx.clock()
    local = dt.datetime.fromtimestamp(now / 1000, tz=TZ)
    day_start = int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    _, month_start, month_end = month_window(None, now)
    active, today, residents, visits, tree = await asyncio.gather(
        asyncio.to_thread(ctx.backend.list_alerts, scope),
        asyncio.to_thread(lambda: ctx.backend.list_alerts(scope, active=None, since_ms=day_start)),
        asyncio.to_thread(ctx.backend.list_residents, scope),
        asyncio.to_thread(lambda: ctx.backend.list_visits(scope, since_ms=month_start, until_ms=month_end)),
        asyncio.to_thread(ctx.backend.hierarchy, scope),
    )
    names = {c.id: c.name for c in tree.communities}
    devices = await device_report(residents, active, reader=ctx.telemetry, now_ms=now)
    counts = devices.counts()
    registered = sum(counts.values())  # a device that never reported is not online: it stays in the denominator
    reachable = counts[Presence.ONLINE] + counts[Presence.LATE]
    by_state = Counter(a.state.value for a in active)
    by_community = Counter(names.get(a.place.community, a.place.community) for a in active)
    ack = [(a.acked_ms - a.raised_ms) / 1000 for a in today if a.acked_ms is not None]
    on_site = [(a.on_site_ms - a.raised_ms) / 1000 for a in today if a.on_site_ms is not None]
    hours = Counter(dt.datetime.fromtimestamp(a.raised_ms / 1000, tz=TZ).hour for a in today)
    coverage = visit_coverage(residents, visits, lambda r: "*")
    covered = coverage[0] if coverage else None
    return {
        "now_ms": now,
        "updated": local.strftime("%H:%M:%S"),
        "active": len(active),
        "unacknowledged": by_state.get("open", 0),
        "by_state": [{"state": s, "name": t.state(s), "value": by_state.get(s, 0)} for s in ACTIVE_STATES],
        "by_community": [{"name": n, "value": v} for n, v in sorted(by_community.items(), key=lambda kv: -kv[1])],
        "today": len(today),
        "today_life_safety": sum(a.life_safety for a in today),
        "today_by_hour": [hours.get(h, 0) for h in range(24)],
        "ack_p50_s": percentile(ack, 50),
        "on_site_p50_s": percentile(on_site, 50),
        "ack_p50": format_duration(percentile(ack, 50), t),  # the statistics page's formatter, so both read alike
        "on_site_p50": format_duration(percentile(on_site, 50), t),
        "visits_done": covered.visited if covered else 0,
        "visits_total": covered.residents if covered else 0,
        "devices": {p.value: counts[p] for p in Presence},
        "devices_reachable": reachable,
        "devices_registered": registered,
        "device_online_rate": reachable / registered if registered else None,
        "device_source": devices.source,
    }
