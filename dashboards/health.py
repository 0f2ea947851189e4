"""Operational endpoints: ``/healthz`` (the process answers), ``/readyz`` (its servers answer), ``/metrics``.

``/readyz`` runs every readiness check concurrently (each a coroutine that raises when its server is not
reachable: broker, InfluxDB, database) and answers 200 when all pass, 503 otherwise, with one line per check and
whatever the backend's ``status()`` reports (e.g. ``{"catching_up": true}`` while it replays a backlog; that
alone does not make it unready). ``/metrics`` is the Prometheus text format; it answers loopback peers only,
or anyone presenting ``Authorization: Bearer <ELDERCARE_METRICS_TOKEN>`` when a token is configured.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


class NotReady(Exception):  # noqa: N818 - a state reported to operators, not a failure of the code
    """Raised by a readiness check with a message safe to show in ``/readyz`` (e.g. "broker: not authorized")."""


ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises (any exception) when the server it checks is not reachable."""
CHECK_TIMEOUT_S: Final = 3.0
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class Health:
    """What the operational endpoints report; built by the composition root."""

    checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    metrics: Callable[[], bytes] | None = None
    metrics_token: str = ""
    status: Callable[[], Mapping[str, Any]] | None = None


async def _run(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return "error: timeout"
    except NotReady as exc:
        return f"error: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; only its type is shown
        return f"error: {type(exc).__name__}"
    return "ok"


def health_router(health: Health) -> APIRouter:
    """The three endpoints over ``health``."""
    router = APIRouter(tags=["operations"], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @router.get("/readyz")
    async def readyz() -> Response:
        names = list(health.checks)
        results = await asyncio.gather(*(_run(health.checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        ready = all(r == "ok" for r in results)
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if health.status is not None:
            body.update(health.status())
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        if health.metrics is None:
            return PlainTextResponse("no metrics here", status_code=404)
        if health.metrics_token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), health.metrics_token.encode()):
                return PlainTextResponse("metrics token required", status_code=401)
        elif (request.client.host if request.client else "") not in _LOOPBACK:
            return PlainTextResponse("metrics are served to loopback only", status_code=403)
        body = await asyncio.to_thread(health.metrics)
        return Response(body, media_type=METRICS_CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return router


def health_app(health: Health) -> FastAPI:
    """A bare application with only the operational endpoints (``eldercare serve --role backend``)."""
    app = FastAPI(title="Eldercare backend", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(health))
    return app
