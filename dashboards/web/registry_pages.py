"""Registry pages (台账管理): the hierarchy and workers in scope, CSV import with a dry run, CSV export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from alerts.scope import Scope
from alerts.views import Account, Role
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, OfficersOnly, ScopeDep
from dashboards.api.routes.devices import ProvisionRefused, provision_site_gateway
from dashboards.api.routes.elders import import_upload
from dashboards.context import AppContext
from dashboards.csvio import COLUMNS
from dashboards.web.render import render

router = APIRouter(prefix="/registry", tags=["registry"], dependencies=[OfficersOnly])


@router.get("", response_class=HTMLResponse)
def registry_page(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """Hierarchy with resident counts, workers, and the import form."""
    return _registry_page(request, ctx, scope, user, result=None, can_import=user.role is not Role.GRID_WORKER)


def _registry_page(
    request: Request,
    ctx: AppContext,
    scope: Scope,
    user: Account,
    *,
    result: object,
    can_import: bool,
    dry_run: bool = False,
) -> Response:
    per_grid: dict[str, int] = {}
    for r in ctx.backend.list_residents(scope):
        per_grid[r.place.grid] = per_grid.get(r.place.grid, 0) + 1
    return render(
        request,
        "registry.html",
        user=user,
        tree=ctx.backend.hierarchy(scope),
        per_grid=per_grid,
        workers=ctx.backend.accounts(scope),
        columns=COLUMNS,
        result=result,
        can_import=can_import,
        dry_run=dry_run,
    )


@router.post("/import", response_class=HTMLResponse, dependencies=[CsrfForm])
def import_csv(
    request: Request,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    file: UploadFile,
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Validate (dry run) or import a residents CSV; shows every rejected line with its reason."""
    result = import_upload(ctx, user, file, dry_run=dry_run)
    return _registry_page(request, ctx, scope, user, result=result, can_import=True, dry_run=dry_run)


@router.post("/gateways/{site}", response_class=HTMLResponse, dependencies=[CsrfForm])
async def provision_gateway_page(
    request: Request, site: str, ctx: ContextDep, scope: ScopeDep, user: CurrentUser
) -> Response:
    """Provision a home's gateway from the resident page; shows the MQTT login once (htmx fragment)."""
    try:
        creds = await provision_site_gateway(ctx, scope, user, site)
    except ProvisionRefused as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
    return render(request, "_gateway.html", user=user, creds=creds)
