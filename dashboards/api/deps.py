"""Typed dependencies (``Annotated`` aliases) shared by every route."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, Form, Header, HTTPException, Path, Query, Request, status
from pydantic import BaseModel

from alerts.queries import StoreBackend
from alerts.scope import Scope, scope_of
from alerts.views import Account, AlertView, Role
from dashboards.context import AppContext
from dashboards.i18n import Lang, Translator, pick_language
from dashboards.security import LANG_COOKIE, SESSION_COOKIE, csrf_ok
from dashboards.sessions import Session

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
    """The server-side session of the request's cookie, or :class:`LoginRequired`."""
    session = ctx.sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired
    return session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(session: SessionDep, ctx: ContextDep) -> Account:
    """The logged-in account, re-read every request: deactivated, or changed password, role or area, ends it."""
    user = ctx.backend.account(session.user_id)
    if user is None:
        ctx.sessions.revoke(session.token)
        raise LoginRequired
    if not ctx.sessions.matches(session, user):
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


def is_officer(user: Account) -> bool:
    """Whether ``user`` may open the officers' pages (statistics, registry, worker management, 大屏, CSV exports).

    The one rule behind :func:`require_officer`, the worker pages' check and the nav's links.
    """
    return user.role is not Role.GRID_WORKER


def require_officer(user: CurrentUser, translator: TranslatorDep) -> None:
    """Statistics, the registry, the 大屏 and CSV exports are for officers: a grid worker gets 403."""
    if not is_officer(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, translator("error.officers_only"))


OfficersOnly = Depends(require_officer)

MAX_ID: Final = 2**63 - 1
AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="Alert id (a positive 64-bit integer).")]
"""An alert id path parameter: anything that does not fit the database's BIGINT is a 422, never a 500."""
MONTH_PATTERN: Final = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
"""A calendar month ``YYYY-MM``, 1970-2999: what the API accepts and the pages check."""

MonthQuery = Annotated[
    str | None,
    Query(
        pattern=MONTH_PATTERN,
        description="Calendar month YYYY-MM, 1970-2999 (default: this month).",
    ),
]
"""A ``month=YYYY-MM`` query parameter, validated before any date arithmetic."""


class ErrorPublic(BaseModel):
    """The body of every error answer of the API."""

    detail: Any


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


COMMON_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _error("Malformed request body (e.g. JSON that does not parse)."),
    401: _error("Not logged in (no, expired or revoked session)."),
    403: _error("Not allowed for this role, or the CSRF token / origin check failed."),
    404: _error("No such record inside the caller's part of the hierarchy."),
    422: {"description": "Invalid parameters or body."},
}
"""Status codes every operation may answer (documented in the OpenAPI, checked by schemathesis)."""
CONFLICT: Final[dict[int | str, dict[str, Any]]] = {409: _error("The alert's state does not allow this action.")}
"""Added to the write operations that can meet a conflicting state."""
