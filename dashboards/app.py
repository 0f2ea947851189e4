"""The FastAPI application factory: ``create_app(settings, backend=...)``; serve it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlparse

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.queries import StoreBackend
from alerts.store.handover import HandoverStore
from alerts.store.learned import LearnedStore
from alerts.views import Role
from dashboards.api.deps import COMMON_RESPONSES, CSRF_REFUSED, LoginRequired
from dashboards.api.routes import alerts, away, devices, elders, stats, visits
from dashboards.context import AppContext, OpsNotice, now_ms
from dashboards.families import GuardianBook
from dashboards.health import Health, health_router
from dashboards.i18n import CATALOGUES, ERROR_STATUSES, LANGS
from dashboards.security import LANG_COOKIE, AccountThrottle, LoginLimiter
from dashboards.sessions import MemorySessionStore, SessionManager, SessionStore
from dashboards.telemetry import BaselineLookup, ChartReader
from dashboards.web import auth, bigscreen, console, device_pages, families, mobile, pages, registry_pages, workers
from dashboards.web import away as away_pages
from dashboards.web import handover as handover_pages
from dashboards.web.gaps import warn_at_startup
from dashboards.web.render import page_user, render, translator
from dashboards.web.urls import RELOGIN_NOTICE, local_referer, page_path, with_param

_LOG = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


_MACHINE_PATHS = ("/openapi.json", "/healthz", "/readyz", "/metrics")


def _is_page(request: Request) -> bool:
    """Whether the request is for a page a person reads (errors as HTML) rather than the API (errors as JSON)."""
    path = request.url.path
    return not (path.startswith(("/api/", "/static/")) or path in _MACHINE_PATHS)


def error_page(
    request: Request, status_code: int, *, detail: object = None, headers: Mapping[str, str] | None = None
) -> Response:
    """An error as a page in the user's language, with the nav when logged in (the phone layout under ``/m``).

    Only a message from the catalogue is shown besides the status's own title and advice: never a raw detail
    (an English default, a pydantic error, an exception's text).
    """
    t = translator(request)
    catalogue = CATALOGUES[t.lang]
    message = t("error.csrf") if detail == CSRF_REFUSED else ""
    if isinstance(detail, str) and detail in catalogue.values() and detail != t("error.not_found"):
        message = detail  # a route's own translated reason ("this page is for duty officers only")
    known = status_code in ERROR_STATUSES
    path = request.url.path
    user = page_user(request)
    # A grid worker works from the phone pages: a wrong address there keeps the phone layout and its tabs.
    grid_worker = user is not None and user.role is Role.GRID_WORKER
    phone = path == "/m" or path.startswith("/m/") or request.query_params.get("m") == "1" or grid_worker
    response = render(
        request,
        "m/error.html" if phone else "error.html",
        user=user,
        status=status_code,
        heading=t(f"error.title.{status_code}") if known else t("title.error"),
        message=message,
        hint=t(f"error.hint.{status_code}") if known else t("error.hint.other"),
        back="/m" if phone else "/",
        status_code=status_code,
    )
    for name, value in (headers or {}).items():  # Allow (405), Retry-After
        response.headers[name] = value
    return response


class ConsoleSettings(Protocol):
    """What the console reads from :class:`eldercare.settings.Settings` (dashboards do not import eldercare)."""

    @property
    def public_url(self) -> str:
        """Public base URL; ``https`` makes the session cookie Secure."""
        ...


def create_app(
    settings: ConsoleSettings,
    *,
    backend: StoreBackend,
    telemetry: ChartReader | None = None,
    baselines: BaselineLookup | None = None,
    learned: Callable[[str], Mapping[str, object]] | None = None,
    clock: Callable[[], int] = now_ms,
    session_store: SessionStore | None = None,
    health: Health | None = None,
    poll_interval_s: float = 0.2,
    gateway_secret: str = "",
    provisioner: Callable[[str], None] | None = None,
    handover: HandoverStore | None = None,
    guardians: GuardianBook | None = None,
    operations: Callable[[], Sequence[OpsNotice]] | None = None,
) -> FastAPI:
    """Build the console application around the alert store's console queries (:class:`alerts.queries.StoreBackend`).

    ``health`` feeds ``/readyz`` and ``/metrics`` (``/healthz`` is always there). ``gateway_secret`` and
    ``provisioner`` enable gateway provisioning (per-gateway MQTT account and ACL).
    Sessions live server-side in ``session_store`` (production: :class:`alerts.store.sessions.SqlSessionStore`
    over the alert store's database; default: this process's memory, so they end on restart).
    ``handover`` keeps shift handover notes (default: the alert store's table); ``guardians`` enables the families'
    read-only status pages. ``operations`` lists what IT must act on (stale backup, certificate lapsing), shown to
    administrators on the console. ``learned`` (``Engine.learned`` of a backend in the same process) puts what the
    detection core learned about a home, and what is off and why, on the resident page; without it the page shows
    what the backend last saved of it (``alerts.store.learned``), with its time.
    """
    if session_store is None:
        _LOG.info("console sessions are kept in memory (they end when the process restarts)")
        session_store = MemorySessionStore()
    public = urlparse(settings.public_url)
    ctx = AppContext(
        backend=backend,
        sessions=SessionManager(session_store),
        limiter=AccountThrottle(free_failures=5, base_delay_s=2.0, max_delay_s=60.0),
        ip_limiter=LoginLimiter(max_failures=30, window_s=300),
        clock=clock,
        secure_cookies=public.scheme == "https",
        telemetry=telemetry,
        baselines=baselines,
        learned=learned,
        # A console of its own (no engine here): the profiles the backend saves in the store.
        learned_saved=LearnedStore(backend.store).load if learned is None else None,
        poll_interval_s=poll_interval_s,
        gateway_secret=gateway_secret,
        provisioner=provisioner,
        handover=handover or HandoverStore(backend.store),
        guardians=guardians,
        operations=operations,
    )
    app = FastAPI(
        title="Eldercare console API",
        description="Alert console, phone pages, registry and statistics of the safe-at-home elder-care backend.",
        version="1",
        # Swagger UI and ReDoc load their scripts from a CDN, which the console's CSP (and a district network)
        # refuses: the machine-readable /openapi.json is the documentation.
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
    )
    app.state.ctx = ctx
    app.include_router(health_router(health or Health()))
    warn_at_startup(ctx)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (alerts.router, elders.router, away.router, devices.router, visits.router, stats.router):
        app.include_router(router)
    web_routers = (auth.router, console.router, pages.router, registry_pages.router, mobile.router, device_pages.router)
    ux_routers = (handover_pages.router, away_pages.router, bigscreen.router, families.router, families.register)
    for router in (*web_routers, workers.router, *ux_routers):
        app.include_router(router, include_in_schema=False)  # HTML pages: the OpenAPI documents the JSON API

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Cross-site form posts are refused outright (defence in depth besides the CSRF token).
        if request.method in _UNSAFE:
            origin = request.headers.get("origin")
            if origin and origin != "null" and urlparse(origin).netloc != request.headers.get("host"):
                return JSONResponse({"detail": "cross-origin request refused"}, status_code=403)
        try:
            response = await call_next(request)
        except Exception:
            # Logged with its traceback here; the user sees a plain message, with the security headers.
            _LOG.exception("unhandled error on %s %s", request.method, request.url.path)
            response = PlainTextResponse("Internal Server Error / 服务器内部错误", status_code=500)
        lang = request.query_params.get("lang")
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
        if ctx.secure_cookies:
            # Served over https (public_url): browsers must not fall back to plain http for a year.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'",
        )
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        htmx = bool(request.headers.get("hx-request"))
        unsafe = request.method not in ("GET", "HEAD")
        if htmx:  # a fragment or a form inside a page: come back to that page
            came_from = local_referer(request, request.headers.get("hx-current-url"))
        elif unsafe:  # the page the form was on (browsers that send it), else the page behind the form's address
            came_from = local_referer(request, request.headers.get("referer"))
        else:
            came_from = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = came_from or (page_path(request) if unsafe else None)
        if target is not None and unsafe:
            # The tap or the form was not carried out: the page after the login says so, to tap again.
            target = with_param(target, "notice", RELOGIN_NOTICE)
        login_url = f"/login?next={quote(target, safe='/')}" if target else "/login"
        if htmx:
            return Response(status_code=401, headers={"HX-Redirect": login_url})
        return RedirectResponse(login_url, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_page(request) or exc.status_code < 400:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, detail=exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if not _is_page(request):  # API clients get FastAPI's own 422 with the list of errors
            return await request_validation_exception_handler(request, exc)
        # A path that does not name a record (/m/alerts/abc) is a page that does not exist; a bad form value a 422.
        in_path = any(tuple(e.get("loc", ()))[:1] == ("path",) for e in exc.errors())
        return error_page(request, 404 if in_path else 422)

    return app
