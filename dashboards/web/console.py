"""The duty officers' live alert console: queue, resident card, explanation and actions."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.escalation import DEVICE_TYPES
from alerts.lifecycle import Action, Channel, Outcome, State, outcomes_for
from alerts.scope import Scope
from alerts.store.errors import AlertNotFound, InvalidTransition, RecordNotFound
from alerts.views import Account, AlertView
from dashboards.api.deps import AlertId, ContextDep, CsrfForm, CurrentUser, ScopeDep, read_alert_in_scope
from dashboards.away import away_sites
from dashboards.device_report import device_report
from dashboards.handover import visible_scopes
from dashboards.listing import queue_order
from dashboards.web.gaps import escalation_gap, operations_notices
from dashboards.web.people import assign_choices, person_labels
from dashboards.web.render import render, translator
from detection.models import AlertType

router = APIRouter(prefix="/console", tags=["console"])

CONSOLE_ACTIONS = (Action.ACKNOWLEDGE, Action.EN_ROUTE, Action.ON_SITE, Action.RESOLVE)
ACTIONS_BY_STATE: dict[State, tuple[Action, ...]] = {
    State.OPEN: (Action.ACKNOWLEDGE, Action.EN_ROUTE, Action.ON_SITE),
    State.ACKNOWLEDGED: (Action.EN_ROUTE, Action.ON_SITE),
    State.EN_ROUTE: (Action.ON_SITE,),
    State.ON_SITE: (),
}
"""Buttons offered in each state besides resolve (with its outcome and note) and assign, offered while active."""
ACK_TARGET_MS = 60_000
"""The duty officer acknowledges a new alert within 60 s; the queue flags those waiting longer."""


def _queue_values(ctx: ContextDep, scope: Scope) -> dict[str, Any]:
    alerts = queue_order(ctx.backend.list_alerts(scope))
    tree = ctx.backend.hierarchy(scope)
    names = {n.id: n.name for level in (tree.communities, tree.grids) for n in level}
    return {
        "alerts": alerts,
        "names": names,
        "unacked": sum(a.state is State.OPEN for a in alerts),
        "ack_target_ms": ACK_TARGET_MS,
        "device_health": {t.value for t in DEVICE_TYPES},
        "bulk_ackable": sum(a.state is State.OPEN and a.type in DEVICE_TYPES for a in alerts),
        "away": away_sites(ctx, ctx.clock()),
    }


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
        workers=assign_choices(ctx.backend, scope, translator(request)),
        people=person_labels(ctx.backend, alert, translator(request)),
        outcomes=outcomes_for(alert.type),
        actions=ACTIONS_BY_STATE.get(alert.state, ()),
        message=message,
    )


@router.get("", response_class=HTMLResponse)
def console_page(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The console: live queue on the left, the top alert (or the selected one) on the right."""
    values = _queue_values(ctx, scope)
    tree = ctx.backend.hierarchy(scope)
    return render(
        request,
        "console.html",
        user=user,
        communities=[c for c in tree.communities if c.id in visible_scopes(user.scope, tree) or user.scope == ""],
        alert_types=[t.value for t in AlertType],
        gap=escalation_gap(ctx, scope),
        ops=operations_notices(ctx, user.role),
        **values,
    )


@router.get("/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The queue alone (refreshed by the live feed)."""
    return render(request, "_queue.html", user=user, **_queue_values(ctx, scope))


@router.post("/bulk-acknowledge", response_class=HTMLResponse, dependencies=[CsrfForm])
def bulk_acknowledge(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """Acknowledge every open device-health alert in scope at once (never a life-safety or behavioural one)."""
    t = translator(request)
    done = 0
    for a in ctx.backend.list_alerts(scope):
        if a.state is State.OPEN and a.type in DEVICE_TYPES:
            try:
                ctx.backend.act(a.id, Action.ACKNOWLEDGE, actor=user.id, channel=Channel.CONSOLE, now_ms=ctx.clock())
                done += 1
            except (InvalidTransition, AlertNotFound):
                continue  # somebody else got there first
    return HTMLResponse(f'<span class="flash" role="status" id="bulk-done">{t("console.bulk_done", n=done)}</span>')


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_fragment(
    request: Request, alert_id: AlertId, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """One alert with the resident's card; 404 outside the scope."""
    not_found = translator(request)("error.not_found")
    alert = read_alert_in_scope(ctx.backend, scope, user, alert_id, channel="console", not_found=not_found)
    return _detail(request, ctx, scope, user, alert)


@router.post("/alerts/{alert_id}/act", response_class=HTMLResponse, dependencies=[CsrfForm])
def act_on_alert(
    request: Request,
    alert_id: AlertId,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    action: Annotated[Action, Form()],
    outcome: Annotated[Outcome | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Acknowledge / dispatch / on site / resolve from the console; answers with the refreshed detail."""
    t = translator(request)
    current = ctx.backend.get_alert(scope, alert_id)
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    if action is Action.RESOLVE and outcome is None:
        return _detail(request, ctx, scope, user, current, t("action.choose_outcome"))
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
    alert_id: AlertId,
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
