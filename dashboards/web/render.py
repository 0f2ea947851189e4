"""Jinja2 rendering with the request's language, CSRF token and formatting helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from alerts.privacy import mask_id_number, mask_numbers_in_text, mask_phone
from alerts.views import Account
from alerts.wording import sentence_case
from dashboards.api.deps import is_officer
from dashboards.context import AppContext
from dashboards.i18n import CATALOGUES, Translator, pick_language
from dashboards.listing import clock_text, local_time, waited_ms
from dashboards.security import LANG_COOKIE, SESSION_COOKIE
from dashboards.stats import format_duration
from dashboards.web.explain import alert_device, device_name, explanation
from dashboards.web.urls import page_path, with_param

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def relation(t: Translator, value: str) -> str:
    """A contact's or guardian's relation (a Chinese registry word) in the page's language; unknown words as typed.

    >>> relation(Translator("en"), "邻居"), relation(Translator("en"), "表舅")
    ('neighbour', '表舅')
    """
    key = f"relation.{value}"
    return t(key) if key in CATALOGUES[t.lang] else value


TEMPLATES.env.filters["sentence"] = sentence_case
TEMPLATES.env.globals.update(
    mask_id=mask_id_number,
    mask_phone=mask_phone,
    mask_text=mask_numbers_in_text,  # free text in a list (an away notice's reason): numbers masked
    local_time=local_time,
    duration=format_duration,
    clock_text=clock_text,
    waited_ms=waited_ms,
    relation=relation,
    is_officer=is_officer,
    explanation=explanation,
    alert_device=alert_device,
    device_name=device_name,
)


def translator(request: Request) -> Translator:
    """The request's message catalogue."""
    return Translator(pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


def lang_switch_url(request: Request, lang: str) -> str:
    """This page in ``lang``: the same path and every other query parameter (``m=1``, ``month=``), only ``lang`` set.

    A page shown in answer to a form (a POST) switches on the page the form belongs to.
    """
    here = page_path(request) + (f"?{request.url.query}" if request.url.query else "")
    return with_param(here, "lang", lang)


def page_user(request: Request) -> Account | None:
    """The logged-in account of a request that did not ask for one (error pages, ``/``), or ``None``."""
    ctx: AppContext = request.app.state.ctx
    session = ctx.sessions.read(request.cookies.get(SESSION_COOKIE))
    user = ctx.backend.account(session.user_id) if session else None
    if session is None or user is None or not ctx.sessions.matches(session, user):
        return None
    return user


def render(
    request: Request,
    name: str,
    *,
    user: Account | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render a template; every page gets ``t``, ``lang``, ``user``, ``csrf`` and ``now_ms``."""
    ctx: AppContext = request.app.state.ctx
    t = translator(request)
    session = ctx.sessions.read(request.cookies.get(SESSION_COOKIE))
    context = {
        "t": t,
        "lang": t.lang,
        "user": user,
        "csrf": session.csrf if session else "",
        "now_ms": ctx.clock(),
        "lang_switch": lang_switch_url(request, "en" if t.lang == "zh" else "zh"),
        **values,
    }
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
