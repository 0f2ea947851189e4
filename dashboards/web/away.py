"""Away notices (外出报备) on a resident's page and the grid worker's phone: the notice in force, end, register."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.scope import Scope
from alerts.store.away import AwayNoticeError
from alerts.views import Account, ResidentView
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, ScopeDep
from dashboards.api.routes.away import NoticeId
from dashboards.away import away_store, home_away, refusal
from dashboards.context import AppContext
from dashboards.listing import TZ
from dashboards.web.render import render, translator

router = APIRouter(tags=["pages"])


def _resident(request: Request, ctx: AppContext, scope: Scope, resident_id: str) -> ResidentView:
    resident = ctx.backend.get_resident(scope, resident_id)
    if resident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    return resident


def _section(
    request: Request,
    ctx: AppContext,
    user: Account,
    resident: ResidentView,
    *,
    message: str = "",
    error: str = "",
    form: dict[str, str] | None = None,
) -> Response:
    away = home_away(ctx, resident.site)
    return render(
        request, "_away.html", user=user, resident_id=resident.id, away=away, message=message, error=error, form=form
    )


def _local_ms(value: str) -> int:
    """A ``datetime-local`` field (Beijing time) as UTC epoch ms; ValueError if malformed."""
    return int(dt.datetime.fromisoformat(value).replace(tzinfo=TZ).timestamp() * 1000)


@router.get("/residents/{resident_id}/away", response_class=HTMLResponse)
def read_away_section(
    request: Request, resident_id: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """The resident page's away section alone (refreshed after a write)."""
    return _section(request, ctx, user, _resident(request, ctx, scope, resident_id))


@router.post("/residents/{resident_id}/away", response_class=HTMLResponse, dependencies=[CsrfForm])
def register_away(
    request: Request,
    resident_id: str,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    ends: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    starts: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Register a notice from the form; a refusal comes back in the section, with what was typed kept."""
    t = translator(request)
    resident = _resident(request, ctx, scope, resident_id)
    form = {"ends": ends, "starts": starts, "reason": reason}
    now = ctx.clock()
    try:
        ends_ms = _local_ms(ends)
        starts_ms = _local_ms(starts) if starts.strip() else now
    except ValueError:
        return _section(request, ctx, user, resident, error=t("away.error.bad_time"), form=form)
    try:
        away_store(ctx).register(
            site=resident.site, starts_ms=starts_ms, ends_ms=ends_ms, reason=reason, by_id=user.id, by_name=user.name,
            now_ms=now,
        )  # fmt: skip
    except AwayNoticeError as exc:
        return _section(request, ctx, user, resident, error=refusal(t, exc), form=form)
    return _section(request, ctx, user, resident, message=t("away.saved"))


@router.post("/residents/{resident_id}/away/{notice_id}/end", response_class=HTMLResponse, dependencies=[CsrfForm])
def end_away(
    request: Request,
    resident_id: str,
    notice_id: NoticeId,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """End a notice now ("back home"), or cancel a planned one."""
    t = translator(request)
    resident = _resident(request, ctx, scope, resident_id)
    store = away_store(ctx)
    found = store.get(notice_id)
    if found is None or found.site != resident.site:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    ended = store.end(notice_id, by_id=user.id, by_name=user.name, reason=reason, now_ms=ctx.clock())
    if ended is None:
        return _section(request, ctx, user, resident, error=t("away.already_ended"))
    return _section(request, ctx, user, resident, message=t("away.ended"))


@router.get("/m/residents/{resident_id}/away", response_class=HTMLResponse)
def phone_away_page(
    request: Request, resident_id: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """The grid worker's phone page of one elder's away notice: one tap from "my residents" (audited)."""
    resident = _resident(request, ctx, scope, resident_id)
    ctx.backend.audit(
        actor=user.id, channel="phone", action="resident.read", entity="resident", entity_id=resident.id,
        detail={"what": "away"},
    )  # fmt: skip
    return render(
        request, "m/away.html", user=user, resident=resident, resident_id=resident.id,
        away=home_away(ctx, resident.site),
    )  # fmt: skip
