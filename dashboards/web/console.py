"""The duty officers' live alert console: queue, resident card, explanation and actions."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.lifecycle import Action, Channel, Outcome
from alerts.scope import Scope
from alerts.store.errors import AlertNotFound, InvalidTransition, RecordNotFound
from alerts.views import Account, AlertView
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, ScopeDep, read_alert_in_scope
from dashboards.device_report import device_report
from dashboards.listing import queue_order
from dashboards.web.render import render, translator

router = APIRouter(prefix="/console", tags=["console"])

CONSOLE_ACTIONS = (Action.ACKNOWLEDGE, Action.EN_ROUTE, Action.ON_SITE, Action.RESOLVE)


def _detail(
    request: Request, ctx: ContextDep, scope: Scope, user: Account, alert: AlertView, message: str = ""
) -> Response:
    resident = ctx.backend.get_resident(scope, alert.resident_id) if alert.resident_id else None
    if resident is not None:
        ctx.backend.audit(
            actor=user.id,
            channel="console",
            action="resident.read",
            entity="resident",
            entity_id=resident.id,
            detail={},
        )
    devices = None
    if resident is not None:
        # Judged from last-seen telemetry like the device page; this sync route runs in a worker thread, so the
        # InfluxDB query goes back to the event loop (its HTTP client belongs there).
        home_alerts = ctx.backend.list_alerts(scope, site=resident.site)
        devices = anyio.from_thread.run(
            partial(device_report, [resident], home_alerts, reader=ctx.telemetry, now_ms=ctx.clock())
        )
    return render(
        request,
        "_alert_detail.html",
        user=user,
        alert=alert,
        resident=resident,
        devices=devices,
        workers=ctx.backend.accounts(scope),
        outcomes=list(Outcome),
        actions=CONSOLE_ACTIONS,
        message=message,
    )


@router.get("", response_class=HTMLResponse)
def console_page(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The console: live queue on the left, the selected alert on the right."""
    return render(request, "console.html", user=user, alerts=queue_order(ctx.backend.list_alerts(scope)))


@router.get("/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The queue alone (refreshed by the live feed)."""
    return render(request, "_queue.html", user=user, alerts=queue_order(ctx.backend.list_alerts(scope)))


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_fragment(request: Request, alert_id: int, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """One alert with the resident's card; 404 outside the scope."""
    not_found = translator(request)("error.not_found")
    alert = read_alert_in_scope(ctx.backend, scope, user, alert_id, channel="console", not_found=not_found)
    return _detail(request, ctx, scope, user, alert)


@router.post("/alerts/{alert_id}/act", response_class=HTMLResponse, dependencies=[CsrfForm])
def act_on_alert(
    request: Request,
    alert_id: int,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    action: Annotated[Action, Form()],
    outcome: Annotated[Outcome | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Acknowledge / dispatch / on site / resolve from the console; answers with the refreshed detail."""
    t = translator(request)
    if ctx.backend.get_alert(scope, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    message = t("action.done")
    try:
        ctx.backend.act(
            alert_id, action, actor=user.id, channel=Channel.CONSOLE, now_ms=ctx.clock(), outcome=outcome, note=note
        )
    except InvalidTransition:
        message = t("action.invalid")
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found")) from None
    alert_now = ctx.backend.get_alert(scope, alert_id)
    if alert_now is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    return _detail(request, ctx, scope, user, alert_now, message)


@router.post("/alerts/{alert_id}/assign", response_class=HTMLResponse, dependencies=[CsrfForm])
def assign_alert(
    request: Request,
    alert_id: int,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    worker_id: Annotated[str, Form(max_length=64)],
) -> Response:
    """Assign the alert to a worker of the caller's scope."""
    t = translator(request)
    if ctx.backend.get_alert(scope, alert_id) is None or worker_id not in {w.id for w in ctx.backend.accounts(scope)}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    try:
        alert = ctx.backend.assign(alert_id, worker_id, actor=user.id, now_ms=ctx.clock())
    except InvalidTransition:
        current = ctx.backend.get_alert(scope, alert_id)
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found")) from None
        return _detail(request, ctx, scope, user, current, t("action.invalid"))
    except (AlertNotFound, RecordNotFound):
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found")) from None
    return _detail(request, ctx, scope, user, alert, t("action.done"))
