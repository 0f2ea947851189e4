"""The read-only status page a consenting guardian opens from a life-safety notification (``/family/{token}``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from alerts.guardians import GuardianLinkError
from dashboards.api.deps import ContextDep
from dashboards.scope import Scope
from dashboards.web.render import render, translator

router = APIRouter(prefix="/family", tags=["families"])
_WEEK_MS = 7 * 86_400_000


@router.get("/{token}", response_class=HTMLResponse)
def family_status(request: Request, token: str, ctx: ContextDep) -> Response:
    """The elder's current alerts and the last 7 days, without personal identifiers or actions; audited."""
    t = translator(request)
    book = ctx.guardians
    now = ctx.clock()

    def refuse(reason: str) -> Response:
        ctx.backend.audit(
            actor="?", channel="family", action="family.rejected", entity="resident", entity_id="?",
            detail={"reason": reason},
        )  # fmt: skip
        return render(request, "family.html", message=t("family.invalid"), resident=None, status_code=404)

    if book is None:
        return refuse("disabled")
    try:
        claim = book.links.verify(token, now_ms=now)
    except GuardianLinkError as exc:
        return refuse(exc.reason)
    guardian = book.guardians.get(claim.guardian_id)
    if guardian is None or not guardian.consent or not guardian.active or guardian.resident_id != claim.resident_id:
        return refuse("no consent")
    resident = ctx.backend.get_resident(Scope("all"), claim.resident_id)
    if resident is None:
        return refuse("unknown resident")
    ctx.backend.audit(
        actor=f"guardian:{guardian.id}", channel="family", action="family.viewed", entity="resident",
        entity_id=resident.id, detail={},
    )  # fmt: skip
    alerts = ctx.backend.list_alerts(Scope("all"), active=None, site=resident.site, since_ms=now - _WEEK_MS)
    alerts = sorted(alerts, key=lambda a: a.raised_ms, reverse=True)
    response = render(
        request,
        "family.html",
        message="",
        resident=resident,
        active=[a for a in alerts if a.active],
        recent=[a for a in alerts if not a.active][:20],
    )
    response.headers["Cache-Control"] = "no-store"
    return response
