"""Desktop pages besides the console: residents, a resident's page, statistics and the monthly report."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.scope import Scope
from alerts.store.checkins import CheckInStep, CheckInStore
from alerts.views import Account, AlertView, ResidentView, VisitView
from dashboards.api.deps import MONTH_PATTERN, ContextDep, CurrentUser, OfficersOnly, ScopeDep
from dashboards.api.routes.stats import build_report
from dashboards.away import HomeAway, away_sites, home_away
from dashboards.context import AppContext
from dashboards.device_report import device_report
from dashboards.listing import future_month, month_window
from dashboards.stats import ACK_TARGET_S, ON_SITE_TARGET_S, SLA_TARGET, MonthlyReport
from dashboards.web.people import area_names, full_address, name_labels
from dashboards.web.render import render, translator

router = APIRouter(tags=["pages"])


@router.get("/residents", response_class=HTMLResponse)
def residents_page(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """Residents in scope (ID numbers and phones masked)."""
    residents = ctx.backend.list_residents(scope)
    return render(request, "residents.html", user=user, residents=residents, away=away_sites(ctx, ctx.clock()))


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
async def resident_page(
    request: Request, resident_id: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """One resident: profile, contacts, devices, telemetry charts, alert and visit history (read audited)."""
    now = ctx.clock()
    found = await asyncio.to_thread(resident_records, ctx, scope, user, resident_id, now)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    resident, alerts, visits, checkins, away = found
    # The engine is not thread-safe: read what it learned on the loop (a few dict reads), never in a thread.
    learned = dict(ctx.learned(resident.site)) if ctx.learned is not None else None
    if learned is None and ctx.learned_saved is not None:  # a console of its own: what the backend saved
        learned = dict(await asyncio.to_thread(ctx.learned_saved, resident.site))
    # Device status from last-seen telemetry, as on the device page (alert-derived when InfluxDB is absent).
    devices = await device_report([resident], alerts, reader=ctx.telemetry, now_ms=now)
    visitors = await asyncio.to_thread(name_labels, ctx.backend, {v.worker_id for v in visits}, translator(request))
    nav_address = await asyncio.to_thread(full_address, ctx.backend, resident.place, resident.address)
    return render(
        request,
        "resident.html",
        user=user,
        resident=resident,
        devices=devices,
        alerts=alerts[:50],
        visits=visits,
        visitors=visitors,
        checkins=checkins,
        learned=learned,
        resident_id=resident.id,
        away=away,
        nav_address=nav_address,
    )


def resident_records(
    ctx: AppContext, scope: Scope, user: Account, resident_id: str, now: int, *, channel: str = "console"
) -> tuple[ResidentView, list[AlertView], list[VisitView], list[CheckInStep], HomeAway] | None:
    """The resident (read audited), their home's alerts newest first, visits of the past year, check-ins, away.

    None outside ``scope`` (a 404 like a missing resident, nothing audited). The desktop page and the phone page
    (``channel="phone"``) both read through here, so they are scoped and audited alike.
    """
    resident = ctx.backend.get_resident(scope, resident_id)
    if resident is None:
        return None
    ctx.backend.audit(
        actor=user.id, channel=channel, action="resident.read", entity="resident", entity_id=resident_id, detail={}
    )
    alerts = sorted(ctx.backend.list_alerts(scope, active=None, site=resident.site), key=lambda a: -a.raised_ms)
    visits = [
        v
        for v in ctx.backend.list_visits(scope, since_ms=now - 365 * 86_400_000, until_ms=now + 1)
        if v.resident_id == resident_id
    ]
    checkins = CheckInStore(ctx.backend.store).for_site(resident.site, limit=30)
    return resident, alerts, sorted(visits, key=lambda v: -v.time_ms), checkins, home_away(ctx, resident.site)


_MONTH = re.compile(MONTH_PATTERN)


def _asked_month(request: Request, month: str | None, now_ms: int) -> tuple[str | None, str]:
    """``(month, notice)``: a malformed or future month is dropped; the page says why, shows this month, answers 422.

    A future month would only show zeros as if they were real; the picker stays, to choose again.
    """
    if month is None or month == "":
        return None, ""
    t = translator(request)
    if not _MONTH.fullmatch(month):
        return None, t("stats.bad_month")
    if future_month(month, now_ms):
        return None, t("stats.future_month", month=month)
    return month, ""


def _report_values(ctx: AppContext, scope: Scope, user: Account, month: str) -> dict[str, Any]:
    names = area_names(ctx.backend, scope)
    _, start, end = month_window(month, ctx.clock())
    return {
        "names": names,
        "area": names.get(user.scope, user.scope) if user.scope else "",
        "period_start": start,
        "period_end": end - 1,
        "sla_target": SLA_TARGET,
        "ack_targets": {s.value: v for s, v in ACK_TARGET_S.items()},
        "on_site_target": ON_SITE_TARGET_S,
    }


async def _render_stats(
    request: Request,
    ctx: AppContext,
    scope: Scope,
    user: Account,
    report: MonthlyReport,
    *,
    notice: str,
    printable: bool,
) -> Response:
    """The statistics page of ``report``, on screen or printable; 422 with ``notice`` for a month not to show."""
    return render(
        request,
        "stats.html",
        user=user,
        report=report,
        printable=printable,
        month_notice=notice,
        status_code=422 if notice else 200,
        **await asyncio.to_thread(_report_values, ctx, scope, user, report.month),
    )


@router.get("/stats", response_class=HTMLResponse, dependencies=[OfficersOnly])
async def stats_page(
    request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser, month: str | None = None
) -> Response:
    """Statistics (统计监测) of one month."""
    month, notice = _asked_month(request, month, ctx.clock())
    report = await build_report(ctx, scope, month)
    return await _render_stats(request, ctx, scope, user, report, notice=notice, printable=False)


@router.get("/stats/report", response_class=HTMLResponse, dependencies=[OfficersOnly])
async def report_page(
    request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser, month: str | None = None
) -> Response:
    """The printable monthly report (area name and period in its heading)."""
    month, notice = _asked_month(request, month, ctx.clock())
    report = await build_report(ctx, scope, month)
    name, _, _ = month_window(month, ctx.clock())
    await asyncio.to_thread(
        ctx.backend.audit, actor=user.id, channel="console", action="stats.report", entity="report",
        entity_id=name, detail={},
    )  # fmt: skip
    return await _render_stats(request, ctx, scope, user, report, notice=notice, printable=True)
