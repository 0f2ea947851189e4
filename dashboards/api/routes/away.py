"""Away notices (外出报备) of a home: register, list, end early. Scoped like every elder route; writes audited."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, status

from alerts.scope import Scope
from alerts.store.away import AwayNoticeError
from dashboards.api.deps import MAX_ID, ContextDep, CsrfHeader, CurrentUser, ScopeDep, TranslatorDep
from dashboards.away import away_store, refusal
from dashboards.context import AppContext
from dashboards.schemas import AwayCreate, AwayEnd, AwayPublic

router = APIRouter(prefix="/api/elders", tags=["elders"])

NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="Away notice id.")]
Site = Annotated[str, Path(min_length=1, max_length=64, description="The home (site id of the registry).")]
_REFUSED: Final[dict[int | str, dict[str, Any]]] = {
    422: {"description": "Refused (``detail.code``, ``detail.message`` in the caller's language); nothing stored."}
}
_ENDED: Final[dict[int | str, dict[str, Any]]] = {409: {"description": "Already ended or past its planned return."}}


def _home_in_scope(ctx: AppContext, scope: Scope, site: str) -> None:
    # Outside the caller's area is "not found", as for every record (alerts/scope.py): existence does not leak.
    if not ctx.backend.site_in_scope(scope, site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "home not found")


@router.get("/{site}/away", response_model=list[AwayPublic])
def read_away_notices(site: Site, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> list[AwayPublic]:
    """A home's away notices, newest first (the last 20); audited as a read of the home's residents."""
    _home_in_scope(ctx, scope, site)
    now = ctx.clock()
    for resident in ctx.backend.list_residents(scope, site=site):
        ctx.backend.audit(
            actor=user.id, channel="api", action="resident.read", entity="resident", entity_id=resident.id,
            detail={"what": "away"},
        )  # fmt: skip
    return [AwayPublic.of(n, now_ms=now) for n in away_store(ctx).of_site(site, limit=20)]


@router.post(
    "/{site}/away",
    response_model=AwayPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[CsrfHeader],
    responses=_REFUSED,
)
def register_away_notice(
    site: Site, body: AwayCreate, ctx: ContextDep, scope: ScopeDep, user: CurrentUser, t: TranslatorDep
) -> AwayPublic:
    """Record that the elder is away until ``ends_ms``: the home's behavioural alerts are held meanwhile."""
    _home_in_scope(ctx, scope, site)
    now = ctx.clock()
    try:
        notice = away_store(ctx).register(
            site=site, starts_ms=now if body.starts_ms is None else body.starts_ms, ends_ms=body.ends_ms,
            reason=body.reason, by_id=user.id, by_name=user.name, now_ms=now, channel="api",
        )  # fmt: skip
    except AwayNoticeError as exc:
        detail = {"code": exc.code, "message": refusal(t, exc), "other": exc.other}
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return AwayPublic.of(notice, now_ms=now)


@router.post("/{site}/away/{notice_id}/end", response_model=AwayPublic, dependencies=[CsrfHeader], responses=_ENDED)
def end_away_notice(
    site: Site, notice_id: NoticeId, body: AwayEnd, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> AwayPublic:
    """End a notice now (the elder is back, or the stay was called off)."""
    _home_in_scope(ctx, scope, site)
    store = away_store(ctx)
    found = store.get(notice_id)
    if found is None or found.site != site:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "away notice not found")
    now = ctx.clock()
    ended = store.end(notice_id, by_id=user.id, by_name=user.name, reason=body.reason, now_ms=now, channel="api")
    if ended is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "away notice already ended or past its planned return")
    return AwayPublic.of(ended, now_ms=now)
