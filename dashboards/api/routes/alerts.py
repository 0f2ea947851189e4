"""Alerts: the queue, one alert, lifecycle actions, assignment and the live feed (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from alerts.lifecycle import Channel
from alerts.store.errors import AlertNotFound, InvalidTransition, RecordNotFound
from dashboards.api.deps import (
    CONFLICT,
    AlertId,
    BackendDep,
    ContextDep,
    CsrfHeader,
    CurrentUser,
    ScopeDep,
    read_alert_in_scope,
)
from dashboards.listing import queue_order
from dashboards.schemas import AlertAction, AlertAssign, AlertPublic

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertPublic])
def read_alerts(
    backend: BackendDep,
    scope: ScopeDep,
    which: Annotated[Literal["active", "closed", "all"], Query(alias="status")] = "active",
) -> list[AlertPublic]:
    """Alerts in the caller's scope (``status``: active, closed or all), most severe and oldest first."""
    active = {"active": True, "closed": False, "all": None}[which]
    return [AlertPublic.of(a) for a in queue_order(backend.list_alerts(scope, active=active))]


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events."}},
)
async def stream_alerts(request: Request, ctx: ContextDep, scope: ScopeDep) -> StreamingResponse:
    """Server-Sent Events: an ``alerts`` event with the caller's active queue whenever any alert changes."""

    async def events() -> AsyncIterator[str]:
        seen: int | None = None
        yield "retry: 1000\n\n"
        async with ctx.feed.listen():
            while not await request.is_disconnected():
                version = await ctx.feed.next_version(seen, timeout_s=15.0)
                if version is None or version == seen:
                    yield ": keep-alive\n\n"
                    continue
                seen = version
                # Store calls are blocking (SQLite/PostgreSQL): keep them off the event loop.
                alerts = await asyncio.to_thread(ctx.backend.list_alerts, scope)
                queue = [AlertPublic.of(a).model_dump() for a in queue_order(alerts)]
                yield f"event: alerts\ndata: {json.dumps({'version': version, 'alerts': queue})}\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/{alert_id}", response_model=AlertPublic)
def read_alert(alert_id: AlertId, backend: BackendDep, scope: ScopeDep, user: CurrentUser) -> AlertPublic:
    """One alert; 404 if it does not exist or is outside the caller's scope."""
    alert = read_alert_in_scope(backend, scope, user, alert_id, channel="api", not_found="alert not found")
    return AlertPublic.of(alert)


@router.post("/{alert_id}/actions", response_model=AlertPublic, dependencies=[CsrfHeader], responses=CONFLICT)
def act_on_alert(
    alert_id: AlertId, body: AlertAction, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> AlertPublic:
    """Acknowledge, dispatch (en route), mark on site, resolve (with an outcome) or annotate an alert."""
    if ctx.backend.get_alert(scope, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "alert not found")
    try:
        alert = ctx.backend.act(
            alert_id,
            body.action,
            actor=user.id,
            channel=Channel.API,
            now_ms=ctx.clock(),
            outcome=body.outcome,
            note=body.note,
        )
    except InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from None
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "alert not found") from None
    return AlertPublic.of(alert)


@router.post("/{alert_id}/assign", response_model=AlertPublic, dependencies=[CsrfHeader], responses=CONFLICT)
def assign_alert(
    alert_id: AlertId, body: AlertAssign, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> AlertPublic:
    """Make a worker of the caller's scope responsible for the alert."""
    if ctx.backend.get_alert(scope, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "alert not found")
    if body.worker_id not in {w.id for w in ctx.backend.accounts(scope)}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "worker not found")
    try:
        alert = ctx.backend.assign(alert_id, body.worker_id, actor=user.id, now_ms=ctx.clock())
    except InvalidTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from None
    except (AlertNotFound, RecordNotFound):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found") from None
    return AlertPublic.of(alert)
