"""Grid workers' phone pages: my alerts with one-tap actions, my residents, monthly visits, one-tap links."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.lifecycle import Action, Channel, Outcome, State, outcomes_for
from alerts.links import LinkAction, LinkClaim
from alerts.scope import Scope, scope_of
from alerts.store.errors import AlertNotFound, InvalidTransition, LinkError
from alerts.views import AlertView
from dashboards.api.deps import AlertId, ContextDep, CsrfForm, CurrentUser, ScopeDep, read_alert_in_scope
from dashboards.away import away_sites
from dashboards.context import AppContext
from dashboards.listing import TZ, month_window, queue_order
from dashboards.risk import rank_for_visits
from dashboards.telemetry import activity_ratios
from dashboards.web.pages import resident_records
from dashboards.web.people import full_address, person_labels
from dashboards.web.render import render, translator
from ingest.errors import IngestError

router = APIRouter(prefix="/m", tags=["phone"])

NEXT_ACTIONS: dict[State, tuple[Action, ...]] = {
    State.OPEN: (Action.ACKNOWLEDGE, Action.EN_ROUTE, Action.ON_SITE),
    State.ACKNOWLEDGED: (Action.EN_ROUTE, Action.ON_SITE),
    State.EN_ROUTE: (Action.ON_SITE,),
    State.ON_SITE: (),
}
"""One-tap buttons offered in each state (resolve, with its outcome, is always offered while active)."""
LINK_OF: dict[Action, LinkAction] = {
    Action.ACKNOWLEDGE: "acknowledge",
    Action.EN_ROUTE: "en_route",
    Action.ON_SITE: "on_site",
    Action.RESOLVE: "resolve",
}
VISIT_OUTCOMES = ("well", "needs_help", "not_home", "referred")


@router.get("", response_class=HTMLResponse)
def my_alerts(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """My open alerts, most urgent first."""
    return render(request, "m/home.html", user=user, alerts=queue_order(ctx.backend.list_alerts(scope)))


@router.get("/list", response_class=HTMLResponse)
def my_alerts_fragment(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The list alone: ``/m`` refreshes it from the live feed."""
    return render(request, "m/_alerts.html", user=user, alerts=queue_order(ctx.backend.list_alerts(scope)))


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def my_alert(request: Request, alert_id: AlertId, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """One alert with big one-tap buttons; 404 outside the worker's grid."""
    not_found = translator(request)("error.not_found")
    alert = read_alert_in_scope(ctx.backend, scope, user, alert_id, channel="phone", not_found=not_found)
    resident = ctx.backend.get_resident(scope, alert.resident_id) if alert.resident_id else None
    if resident is not None:  # the page shows the elder's and the contacts' phone numbers
        ctx.backend.audit(
            actor=user.id, channel="phone", action="resident.read", entity="resident", entity_id=resident.id, detail={}
        )
    return render(
        request,
        "m/alert.html",
        user=user,
        alert=alert,
        resident=resident,
        nav_address=full_address(ctx.backend, alert.place, alert.address),
        people=person_labels(ctx.backend, alert, translator(request)),
        next_actions=NEXT_ACTIONS.get(alert.state, ()),
        outcomes=outcomes_for(alert.type),
        links=None,
        message=request.query_params.get("msg", ""),
    )


@router.post("/alerts/{alert_id}/act", dependencies=[CsrfForm])
def act_on_my_alert(
    request: Request,
    alert_id: AlertId,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    action: Annotated[Action, Form()],
    outcome: Annotated[Outcome | None, Form()] = None,
) -> Response:
    """Apply a one-tap action and come back to the alert page."""
    if ctx.backend.get_alert(scope, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    if action is Action.RESOLVE and outcome is None:
        return RedirectResponse(f"/m/alerts/{alert_id}?msg=choose", status_code=303)  # never a default outcome
    msg = "done"
    try:
        ctx.backend.act(alert_id, action, actor=user.id, channel=Channel.PHONE, now_ms=ctx.clock(), outcome=outcome)
    except InvalidTransition:
        msg = "invalid"
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found")) from None
    return RedirectResponse(f"/m/alerts/{alert_id}?msg={msg}", status_code=303)


@router.get("/residents", response_class=HTMLResponse)
def my_residents(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """My residents (masked list)."""
    residents = ctx.backend.list_residents(scope)
    return render(request, "m/residents.html", user=user, residents=residents, away=away_sites(ctx, ctx.clock()))


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
async def my_resident(
    request: Request, resident_id: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """One of my residents on the phone: call the elder and every contact, navigate to the address, recent alerts.

    Read through the desktop page's :func:`resident_records`: the same scope (404 outside it) and the same audited
    ``resident.read``, on the phone channel; phone numbers in full only here, as on the desktop detail page.
    """
    found = await asyncio.to_thread(resident_records, ctx, scope, user, resident_id, ctx.clock(), channel="phone")
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    resident, alerts, visits, _, away = found
    nav_address = await asyncio.to_thread(full_address, ctx.backend, resident.place, resident.address)
    return render(
        request,
        "m/resident.html",
        user=user,
        resident=resident,
        alerts=alerts[:10],
        visits=visits[:5],
        away=away,
        nav_address=nav_address,
    )


@router.get("/visits", response_class=HTMLResponse)
async def my_visits(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """This month's visits: who is due, ranked by risk (alerts, declining activity, time since the last visit)."""
    now = ctx.clock()
    month, start, end = month_window(None, now)
    residents = await asyncio.to_thread(ctx.backend.list_residents, scope)
    visits_90d = await asyncio.to_thread(
        lambda: ctx.backend.list_visits(scope, since_ms=now - 90 * 86_400_000, until_ms=end)
    )
    alerts = await asyncio.to_thread(
        lambda: ctx.backend.list_alerts(scope, active=None, since_ms=now - 30 * 86_400_000)
    )
    ratios: dict[str, float] = {}
    if ctx.telemetry is not None:
        try:
            ratios = await activity_ratios(ctx.telemetry, sorted({r.site for r in residents}), now_ms=now)
        except IngestError:
            ratios = {}  # the list still ranks on alerts and visits when InfluxDB is unreachable
    routine: dict[str, tuple[float, tuple[str, ...]]] = {}
    if ctx.baselines is not None:
        for site in {r.site for r in residents}:
            base = ctx.baselines(site)
            if base is not None and base.routine_score is not None:
                routine[site] = (base.routine_score, base.routine_drivers)
    ranked = rank_for_visits(
        residents,
        alerts=alerts,
        visits=visits_90d,
        month_start_ms=start,
        now_ms=now,
        activity_ratio=ratios,
        routine=routine,
    )
    done = sum(e.visited_this_month for e in ranked)
    return render(
        request,
        "m/visits.html",
        user=user,
        month=month,
        ranked=ranked,
        done=done,
        total=len(ranked),
        outcomes=VISIT_OUTCOMES,
        default_time=dt.datetime.fromtimestamp(now / 1000, tz=TZ).strftime("%Y-%m-%dT%H:%M"),
        message=request.query_params.get("msg", ""),
    )


VISIT_CLOCK_SLACK_MS = 10 * 60_000
"""A visit may be dated this far ahead of the server's clock (a phone's clock a little fast), no further."""


@router.post("/visits", dependencies=[CsrfForm])
def record_visit(
    request: Request,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    resident_id: Annotated[str, Form(max_length=64)],
    outcome: Annotated[str, Form(pattern="^(well|needs_help|not_home|referred)$")],
    time: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Record a visit (time, outcome, note) to one of my residents."""
    if ctx.backend.get_resident(scope, resident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    try:
        when = int(dt.datetime.fromisoformat(time).replace(tzinfo=TZ).timestamp() * 1000) if time else ctx.clock()
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, translator(request)("error.bad_time")) from None
    if when > ctx.clock() + VISIT_CLOCK_SLACK_MS:  # a slip of the year on the date picker would never count
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, translator(request)("error.visit_future"))
    ctx.backend.record_visit(resident_id=resident_id, worker_id=user.id, time_ms=when, outcome=outcome, note=note)
    return RedirectResponse("/m/visits?msg=saved", status_code=303)


# -- one-tap links (alerts.links): /m/{token}; declared last so the fixed paths above win --------------------


def _live_claim(ctx: AppContext, token: str, now: int) -> LinkClaim:
    """A link that is valid now: signed, unexpired, and its worker still active and responsible for the alert.

    Checked at every use, so deactivating a worker or moving them to another area revokes their links at once.
    """
    claim = ctx.backend.verify_link(token, now_ms=now)
    worker = ctx.backend.account(claim.worker_id)
    if worker is None:
        raise LinkError("revoked", "worker inactive")
    if ctx.backend.get_alert(scope_of(worker), claim.alert_id) is None:
        raise LinkError("revoked", "alert outside the worker's area")
    return claim


def _rejected(request: Request, ctx: AppContext, exc: LinkError) -> Response:
    """The refusal of a link, with a way on: the alert of an expired link (after a login), else my alerts."""
    ctx.backend.audit(
        actor="?", channel="link", action="link.rejected", entity="alert", entity_id="?", detail={"reason": exc.reason}
    )
    t = translator(request)
    if exc.reason == "expired" and exc.alert_id is not None:
        message, href, label = t("link.expired"), f"/m/alerts/{exc.alert_id}", t("link.open_alert")
    else:
        message, href, label = t("link.invalid"), "/m", t("link.open_mine")
    return render(request, "m/link_error.html", message=message, next_href=href, next_label=label, status_code=404)


def _step_gone(alert: AlertView, action: LinkAction) -> bool:
    """True if a single-purpose link's step can no longer be taken: the alert moved past it, or was closed."""
    if action == "view":
        return False
    if not alert.active:
        return True
    return action != "resolve" and action not in {LINK_OF[a] for a in NEXT_ACTIONS.get(alert.state, ())}


def _overtaken(alert: AlertView, claim: LinkClaim) -> LinkAction | None:
    """The link's action if someone else (or the system) got there first; None if it is open or was the worker's own.

    The worker's own earlier tap (the notification's 一键接单 opened again to get back to the alert) is no news.
    """
    if not _step_gone(alert, claim.action):
        return None
    mine = any(e.action == claim.action and e.actor == claim.worker_id for e in alert.events)
    return None if mine else claim.action


def _link_page(
    request: Request,
    ctx: ContextDep,
    alert: AlertView,
    worker_id: str,
    *,
    expires_ms: int,
    only: tuple[str, str] | None = None,
    message: str = "",
    overtaken: LinkAction | None = None,
    status_code: int = 200,
) -> Response:
    now = ctx.clock()
    # The worker holding the link calls the elder and the contacts from this page: the read is audited.
    resident = ctx.backend.get_resident(Scope("all"), alert.resident_id) if alert.resident_id else None
    if resident is not None:
        ctx.backend.audit(
            actor=worker_id, channel="link", action="resident.read", entity="resident", entity_id=resident.id, detail={}
        )
    links: dict[str, str] = {}
    if only is not None and alert.active:
        links[only[0]] = only[1]
    elif alert.active:
        wanted: list[LinkAction] = [LINK_OF[a] for a in NEXT_ACTIONS.get(alert.state, ())]
        wanted.append("resolve")
        for action in wanted:
            # Tokens minted from a link never outlive it: replaying a link cannot renew it.
            links[action] = ctx.backend.link_token(
                alert_id=alert.id, worker_id=worker_id, action=action, now_ms=now, expires_ms=expires_ms
            )
    return render(
        request,
        "m/alert.html",
        user=ctx.backend.account(worker_id),
        alert=alert,
        resident=resident,
        nav_address=full_address(ctx.backend, alert.place, alert.address),
        people=person_labels(ctx.backend, alert, translator(request)),
        next_actions=NEXT_ACTIONS.get(alert.state, ()),
        outcomes=outcomes_for(alert.type),
        links=links,
        message="overtaken" if overtaken else message,
        overtaken=overtaken,
        status_code=status_code,
    )


@router.get("/{token}", response_class=HTMLResponse)
def open_link(request: Request, token: str, ctx: ContextDep) -> Response:
    """A notification link: the alert and fresh single-purpose one-tap buttons (no login needed)."""
    t = translator(request)
    try:
        claim = _live_claim(ctx, token, ctx.clock())
    except LinkError as exc:
        return _rejected(request, ctx, exc)
    alert = ctx.backend.get_alert(Scope("all"), claim.alert_id)
    if alert is None:
        return render(request, "m/link_error.html", message=t("link.invalid"), status_code=404)
    ctx.backend.audit(
        actor=claim.worker_id, channel="link", action="alert.read", entity="alert", entity_id=str(alert.id), detail={}
    )
    # A single-purpose link opened directly offers just its own button; a view link offers fresh ones, and so does
    # a link whose step is already taken, by the worker or by someone else (who is named): its own button would be
    # a dead end, and the notification gave the same worker a view link with the same expiry anyway.
    only = None if claim.action == "view" or _step_gone(alert, claim.action) else (claim.action, token)
    return _link_page(
        request, ctx, alert, claim.worker_id, expires_ms=claim.expires_ms, only=only, overtaken=_overtaken(alert, claim)
    )


@router.post("/{token}")
def use_link(
    request: Request, token: str, ctx: ContextDep, outcome: Annotated[Outcome | None, Form()] = None
) -> Response:
    """Apply a one-tap link's action (the signed token is the capability), then show the alert again."""
    t = translator(request)
    now = ctx.clock()
    try:
        claim = _live_claim(ctx, token, now)
        alert = ctx.backend.get_alert(Scope("all"), claim.alert_id)
        if alert is None:
            raise LinkError("unknown alert")
        if overtaken := _overtaken(alert, claim):
            # Tapped on a page opened before someone else took the step: nothing to do; the alert as it is now,
            # who did it (the history) and the next steps, instead of a silent redirect or a bare refusal.
            return _link_page(
                request, ctx, alert, claim.worker_id, expires_ms=claim.expires_ms, overtaken=overtaken, status_code=409
            )
        if claim.action == "resolve" and outcome is None:
            return _link_page(
                request,
                ctx,
                alert,
                claim.worker_id,
                expires_ms=claim.expires_ms,
                only=("resolve", token),
                message="choose",
            )
        ctx.backend.use_link(token, now_ms=now, outcome=outcome)
    except LinkError as exc:
        return _rejected(request, ctx, exc)
    except InvalidTransition:  # someone else got there between the read above and the tap
        now_alert = ctx.backend.get_alert(Scope("all"), claim.alert_id)
        if now_alert is None:
            return render(request, "m/link_error.html", message=t("action.invalid"), status_code=409)
        return _link_page(
            request, ctx, now_alert, claim.worker_id, expires_ms=claim.expires_ms, overtaken=claim.action,
            status_code=409,
        )  # fmt: skip
    view = ctx.backend.link_token(
        alert_id=claim.alert_id, worker_id=claim.worker_id, action="view", now_ms=now, expires_ms=claim.expires_ms
    )
    return RedirectResponse(f"/m/{view}", status_code=303)
