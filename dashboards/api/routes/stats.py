"""Statistics (统计监测): the monthly report as JSON and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from alerts.scope import Scope
from alerts.store.checkins import CheckInStore
from dashboards.api.deps import ContextDep, CurrentUser, LangDep, MonthQuery, OfficersOnly, ScopeDep
from dashboards.context import AppContext
from dashboards.csvio import safe_cell
from dashboards.device_report import Presence, device_report
from dashboards.listing import future_month, month_window
from dashboards.stats import SLA_TARGET, MonthlyReport, monthly_report, report_csv_rows

router = APIRouter(prefix="/api/stats", tags=["stats"], dependencies=[OfficersOnly])


async def build_report(ctx: AppContext, scope: Scope, month: str | None) -> MonthlyReport:
    """The monthly report of ``scope`` (shared with the statistics page).

    The device online rate is judged now, whatever the month (no history of device status is kept to judge a
    past month by), from last-seen times when telemetry is configured (else from open offline alerts); the report
    names its source and the time (``devices_as_of_ms``).
    """
    now = ctx.clock()
    name, start, end = month_window(month, now)
    alerts, residents, visits = await asyncio.gather(
        asyncio.to_thread(lambda: ctx.backend.list_alerts(scope, active=None, since_ms=start, until_ms=end)),
        asyncio.to_thread(ctx.backend.list_residents, scope),
        asyncio.to_thread(lambda: ctx.backend.list_visits(scope, since_ms=start, until_ms=end)),
    )
    devices = await device_report(residents, (), reader=ctx.telemetry, now_ms=now)
    sites = sorted({r.site for r in residents})
    checkins = await asyncio.to_thread(CheckInStore(ctx.backend.store).counts, sites, since_ms=start, until_ms=end)
    counts = devices.counts()
    return monthly_report(
        month=name,
        alerts=alerts,
        residents=residents,
        visits=visits,
        now_ms=min(now, end),
        devices=devices.online_rate(),
        device_source=devices.source,
        devices_unseen=counts[Presence.UNSEEN],
        devices_offline=counts[Presence.OFFLINE],
        devices_as_of_ms=now,
        checkins=checkins,
    )


def _refuse_future(ctx: AppContext, month: str | None) -> None:
    """422 for a month that has not begun (its report would be zeros that look real), shaped as a malformed one's."""
    if month and future_month(month, ctx.clock()):
        error = {"loc": ("query", "month"), "msg": f"month {month} has not come yet", "type": "value_error"}
        raise RequestValidationError([error])


@router.get("/monthly")
async def read_monthly(ctx: ContextDep, scope: ScopeDep, month: MonthQuery = None) -> dict[str, Any]:
    """Alerts by type/outcome/community, response times and SLA, device online rate, visit coverage, check-ins."""
    _refuse_future(ctx, month)
    report = await build_report(ctx, scope, month)
    out = asdict(report)
    out["device_online_rate"] = report.device_online_rate
    out["visit_coverage"] = report.coverage_total.rate
    out["checkin_answer_rate"] = report.checkin_answer_rate
    out["sla_rate"] = report.sla_rate
    out["sla_target"] = SLA_TARGET
    out["load_by_grid"] = [{**asdict(r), "over": r.over} for r in report.load_by_grid]
    return out


@router.get(
    "/monthly.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The monthly report as CSV."}},
)
async def export_monthly(
    ctx: ContextDep, scope: ScopeDep, user: CurrentUser, lang: LangDep, month: MonthQuery = None
) -> Response:
    """The monthly report as CSV (UTF-8 with BOM so spreadsheet software shows Chinese correctly)."""
    _refuse_future(ctx, month)
    report = await build_report(ctx, scope, month)
    buf = io.StringIO()
    csv.writer(buf).writerows([safe_cell(c) for c in row] for row in report_csv_rows(report, lang))
    await asyncio.to_thread(
        ctx.backend.audit, actor=user.id, channel="api", action="stats.exported", entity="report",
        entity_id=report.month, detail={},
    )  # fmt: skip
    headers = {"Content-Disposition": f'attachment; filename="report-{report.month}.csv"', "Cache-Control": "no-store"}
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
