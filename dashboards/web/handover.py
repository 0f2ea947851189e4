"""Shift handover notes on the console: the last 24 h of notes for the officer's area, and a form to add one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from alerts.scope import Scope
from alerts.views import Account, Role
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, ScopeDep
from dashboards.handover import visible_scopes
from dashboards.web.render import render, translator

router = APIRouter(prefix="/console/handover", tags=["console"])
_DAY_MS = 86_400_000


def _fragment(
    request: Request, ctx: ContextDep, scope: Scope, user: Account, message: str = "", *, name: str = "_handover.html"
) -> Response:
    scopes = None if user.role is Role.ADMIN else visible_scopes(user.scope, ctx.backend.hierarchy(scope))
    notes = ctx.handover.recent(scopes, since_ms=ctx.clock() - _DAY_MS, limit=10)
    return render(request, name, user=user, notes=notes, message=message)


@router.get("", response_class=HTMLResponse)
def read_handover(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The handover notes the next officer reads when the shift starts."""
    return _fragment(request, ctx, scope, user)


@router.get("/notes", response_class=HTMLResponse)
def read_handover_notes(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The notes alone, refreshed every minute (the form, and a half-written note, stay untouched)."""
    return _fragment(request, ctx, scope, user, name="_handover_notes.html")


@router.post("", response_class=HTMLResponse, dependencies=[CsrfForm])
def add_handover(
    request: Request,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    text: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    """Save a handover note for the officer's area."""
    ctx.handover.add(author_id=user.id, author_name=user.name, scope=user.scope, text=text.strip(), now_ms=ctx.clock())
    return _fragment(request, ctx, scope, user, translator(request)("handover.saved"))
