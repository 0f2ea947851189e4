"""Login, logout and language switching."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts.privacy import mask_phone
from alerts.views import Role
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, SessionDep
from dashboards.security import SESSION_COOKIE, verify_password
from dashboards.web.render import page_user, render, translator
from dashboards.web.urls import RELOGIN_NOTICE, safe_local_path

router = APIRouter(tags=["auth"])


def _safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    return safe_local_path(target) or default


def _expired(target: str) -> bool:
    """Whether the login was asked for by an action that met an expired session (``notice=relogin`` in next)."""
    return RELOGIN_NOTICE in parse_qs(urlsplit(target).query).get("notice", [])


def home_for(role: Role) -> str:
    """Where a role lands after login: grid workers on their phone pages, everyone else on the console."""
    return "/m" if role is Role.GRID_WORKER else "/console"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    target = _safe_next(next, "")
    return render(request, "login.html", next=target, expired=_expired(target), error="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password (argon2), rate-limited per account and per client address; audited either way."""
    t = translator(request)
    # The peer address as uvicorn reports it: X-Forwarded-For counts only from a configured trusted proxy.
    ip = request.client.host if request.client else "?"
    user = ctx.backend.account_by_login(username.strip())
    # One budget per account, whether it is typed as its id or its phone.
    user_key, ip_key = (f"user:{user.id}" if user else f"login:{username.strip().lower()}"), f"ip:{ip}"
    # The audit names the account; a typed phone number that matches none is recorded masked.
    who = user.id if user else (mask_phone(username) if any(c.isdigit() for c in username) else username)

    def audit(action: str) -> None:
        ctx.backend.audit(
            actor=who, channel="console", action=action, entity="worker", entity_id=who, detail={"ip": ip}
        )

    wait = max(ctx.limiter.retry_after(user_key), ctx.ip_limiter.retry_after(ip_key))
    if wait:
        audit("login.limited")
        return render(
            request,
            "login.html",
            next=next,
            expired=_expired(next),
            error=t("login.limited", seconds=wait),
            status_code=429,
        )
    if not verify_password(user.password_hash if user else None, password) or user is None:
        ctx.limiter.failed(user_key)
        ctx.ip_limiter.failed(ip_key)
        audit("login.failed")
        return render(
            request, "login.html", next=next, expired=_expired(next), error=t("login.failed"), status_code=401
        )
    ctx.limiter.succeeded(user_key)
    token, _ = ctx.sessions.issue(user)
    audit("login")
    response = RedirectResponse(_safe_next(next, home_for(user.role)), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.sessions.ttl_s,
        httponly=True,
        samesite="lax",
        secure=ctx.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout", dependencies=[CsrfForm])
def logout(ctx: ContextDep, user: CurrentUser, session: SessionDep) -> Response:
    """End the session (server-side: the cookie is worthless afterwards)."""
    ctx.sessions.revoke(session.token)
    ctx.backend.audit(actor=user.id, channel="console", action="logout", entity="worker", entity_id=user.id, detail={})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def index(request: Request, ctx: ContextDep) -> Response:
    """Send the visitor to their home page (or the login form)."""
    user = page_user(request)
    return RedirectResponse(home_for(user.role) if user else "/login", status_code=303)
