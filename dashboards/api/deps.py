"""Typed dependencies (``Annotated`` aliases) shared by every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Header, HTTPException, Request, status

from alerts.queries import StoreBackend
from alerts.scope import Scope, scope_of
from alerts.views import Account, AlertView
from dashboards.context import AppContext
from dashboards.i18n import Lang, Translator, pick_language
from dashboards.security import LANG_COOKIE, SESSION_COOKIE, Session, csrf_ok

CSRF_REFUSED = "CSRF token missing or wrong"
"""The detail of the 403 a form or API write without the session's CSRF token gets (pages say "reload")."""


class LoginRequired(Exception):
    """Raised by the user dependency when nobody is logged in; pages redirect, the API answers 401."""


def get_context(request: Request) -> AppContext:
    """The application context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_backend(ctx: ContextDep) -> StoreBackend:
    """The store behind the console."""
    return ctx.backend


BackendDep = Annotated[StoreBackend, Depends(get_backend)]


def get_session(request: Request, ctx: ContextDep) -> Session:
    """The signed session of the request, or :class:`LoginRequired`."""
    session = ctx.sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired
    return session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(session: SessionDep, backend: BackendDep) -> Account:
    """The logged-in account (re-read every request, so a deactivated worker loses access at once)."""
    user = backend.account(session.user_id)
    if user is None:
        raise LoginRequired
    return user


CurrentUser = Annotated[Account, Depends(get_current_user)]


def get_scope(user: CurrentUser) -> Scope:
    """The part of the hierarchy the user may see."""
    return scope_of(user)


ScopeDep = Annotated[Scope, Depends(get_scope)]


def get_lang(request: Request) -> Lang:
    """Zh unless ``?lang=en`` or the ``lang`` cookie says otherwise."""
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


LangDep = Annotated[Lang, Depends(get_lang)]


def get_translator(lang: LangDep) -> Translator:
    """The message catalogue of the request's language."""
    return Translator(lang)


TranslatorDep = Annotated[Translator, Depends(get_translator)]


def check_csrf_form(session: SessionDep, csrf: Annotated[str, Form()] = "") -> None:
    """Reject a form POST whose hidden ``csrf`` field does not match the session."""
    if not csrf_ok(session, csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, CSRF_REFUSED)


def check_csrf_header(session: SessionDep, x_csrf_token: Annotated[str, Header()] = "") -> None:
    """Reject an API write without the ``X-CSRF-Token`` header of the session."""
    if not csrf_ok(session, x_csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, CSRF_REFUSED)


CsrfForm = Depends(check_csrf_form)
CsrfHeader = Depends(check_csrf_header)


def read_alert_in_scope(
    backend: StoreBackend, scope: Scope, user: Account, alert_id: int, *, channel: str, not_found: str
) -> AlertView:
    """One alert the caller may see, with the read audited; 404 (never 403) outside the scope, so nothing leaks."""
    alert = backend.get_alert(scope, alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, not_found)
    backend.audit(
        actor=user.id, channel=channel, action="alert.read", entity="alert", entity_id=str(alert_id), detail={}
    )
    return alert
