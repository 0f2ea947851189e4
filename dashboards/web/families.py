"""The read-only status page a consenting guardian opens from a life-safety notification (``/family/{token}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.guardians import GuardianLinkError
from alerts.scope import Scope
from alerts.views import Account
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, ScopeDep
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


# -- the guardian register on the resident page (officers and grid workers of the resident's area) -------------

register = APIRouter(prefix="/residents/{resident_id}/guardians", tags=["families"])


def _register(
    request: Request, ctx: ContextDep, scope: Scope, user: Account, resident_id: str, message: str = ""
) -> Response:
    t = translator(request)
    if ctx.guardians is None or ctx.backend.get_resident(scope, resident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    guardians = ctx.guardians.guardians.for_resident(resident_id)
    ctx.backend.audit(
        actor=user.id, channel="console", action="guardian.read", entity="resident", entity_id=resident_id, detail={}
    )
    return render(request, "_guardians.html", user=user, resident_id=resident_id, guardians=guardians, message=message)


@register.get("", response_class=HTMLResponse)
def read_guardians(request: Request, resident_id: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """The resident's guardians (phones masked, channel type only) and whether they consented."""
    return _register(request, ctx, scope, user, resident_id)


@register.post("", response_class=HTMLResponse, dependencies=[CsrfForm])
def add_guardian(
    request: Request,
    resident_id: str,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    relation: Annotated[str, Form(min_length=1, max_length=32)],
    phone: Annotated[str, Form(max_length=32)] = "",
    channel: Annotated[str, Form(max_length=500)] = "",
    consent: Annotated[bool, Form()] = False,
) -> Response:
    """Register a guardian; notifications go out only once consent is recorded."""
    if ctx.guardians is None or ctx.backend.get_resident(scope, resident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))
    channels = [channel.strip()] if channel.strip() else []
    ctx.guardians.guardians.add(
        resident_id=resident_id, name=name.strip(), relation=relation.strip(), phone=phone.strip(),
        channels=channels, consent=consent, actor=user.id, now_ms=ctx.clock(),
    )  # fmt: skip
    return _register(request, ctx, scope, user, resident_id, translator(request)("guardian.saved"))


@register.post("/{guardian_id}/consent", response_class=HTMLResponse, dependencies=[CsrfForm])
def set_guardian_consent(
    request: Request,
    resident_id: str,
    guardian_id: int,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    consent: Annotated[bool, Form()] = False,
) -> Response:
    """Record or withdraw a guardian's consent."""
    t = translator(request)
    if ctx.guardians is None or ctx.backend.get_resident(scope, resident_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    g = ctx.guardians.guardians.get(guardian_id)
    if g is None or g.resident_id != resident_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))
    ctx.guardians.guardians.set_consent(guardian_id, consent, actor=user.id, now_ms=ctx.clock())
    return _register(request, ctx, scope, user, resident_id, t("guardian.saved"))
