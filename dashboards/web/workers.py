"""Worker management (人员管理): list, add, deactivate/reactivate and reset passwords, within the caller's scope.

Admins and duty officers (district, street, community) manage the workers whose whole area lies inside their own
scope; grid workers cannot (403). A worker or an area outside the caller's scope is a 404, as everywhere else.
Every change is audited by the backend; a new or reset password generated here is shown once and never stored
in clear.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Final

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from alerts.scope import LEVEL_OF_ROLE, Level, Scope, area_inside
from alerts.store.errors import InvalidRecord, RecordConflict, RecordNotFound
from alerts.views import Account, Hierarchy, Node, Place, Role
from dashboards.api.deps import ContextDep, CsrfForm, CurrentUser, ScopeDep, is_officer
from dashboards.context import AppContext
from dashboards.security import hash_password
from dashboards.web.render import render, translator

router = APIRouter(prefix="/workers", tags=["workers"])

MIN_PASSWORD: Final = 10
"""Shortest password an officer may set by hand (generated ones are 16 characters)."""
_RANK: Final[dict[Level, int]] = {"all": 0, "district": 1, "street": 2, "community": 3, "grid": 4}


def nodes_in_scope(tree: Hierarchy, scope: Scope) -> dict[str, tuple[Level, Node]]:
    """Node id → (level, node) of every hierarchy node wholly inside ``scope`` (``tree`` is that scope's)."""
    streets = {s.id: s for s in tree.streets}
    communities = {c.id: c for c in tree.communities}
    places: list[Place] = []
    for g in tree.grids:
        c = communities.get(g.parent)
        st = streets.get(c.parent) if c else None
        if c is not None and st is not None:
            places.append(Place(st.parent, st.id, c.id, g.id))
    out: dict[str, tuple[Level, Node]] = {}
    levels: tuple[tuple[Level, tuple[Node, ...]], ...] = (
        ("district", tree.districts),
        ("street", tree.streets),
        ("community", tree.communities),
        ("grid", tree.grids),
    )
    for level, nodes in levels:
        if _RANK[level] < _RANK[scope.level]:
            continue  # an ancestor, present in the tree only for its name
        for n in nodes:
            if area_inside(scope, n.id, places, level=level):
                out[n.id] = (level, n)
    return out


def creatable_roles(user: Account) -> list[Role]:
    """Roles the user may give: their own level and below (only an admin adds admins)."""
    mine = _RANK[LEVEL_OF_ROLE[user.role]]
    return [r for r in LEVEL_OF_ROLE if _RANK[LEVEL_OF_ROLE[r]] >= mine and (r is not Role.ADMIN or mine == 0)]


def _require_manager(request: Request, user: Account) -> None:
    if not is_officer(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, translator(request)("worker.refused"))


def outranks(user: Account, target: Account) -> bool:
    """True if ``user`` holds a strictly higher rank than ``target`` (nobody manages an equal or a superior)."""
    return _RANK[LEVEL_OF_ROLE[user.role]] < _RANK[LEVEL_OF_ROLE[target.role]]


def _worker_in_scope(request: Request, ctx: AppContext, scope: Scope, worker_id: str) -> Account:
    """A worker (active or not) in the caller's area, or 404."""
    for active in (True, False):
        for w in ctx.backend.accounts(scope, active=active):
            if w.id == worker_id:
                return w
    raise HTTPException(status.HTTP_404_NOT_FOUND, translator(request)("error.not_found"))


def _managed_worker(request: Request, ctx: AppContext, scope: Scope, user: Account, worker_id: str) -> Account:
    """A worker the caller may manage: in their area (else 404) and of a lower rank (else 403)."""
    target = _worker_in_scope(request, ctx, scope, worker_id)
    if not outranks(user, target):
        raise HTTPException(status.HTTP_403_FORBIDDEN, translator(request)("worker.refused"))
    return target


def _page(
    request: Request,
    ctx: AppContext,
    scope: Scope,
    user: Account,
    *,
    message: str = "",
    error: str = "",
    one_time: tuple[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    tree = ctx.backend.hierarchy(scope)
    nodes = nodes_in_scope(tree, scope)
    active, inactive = ctx.backend.accounts(scope), ctx.backend.accounts(scope, active=False)
    response = render(
        request,
        "workers.html",
        user=user,
        active=active,
        inactive=inactive,
        manageable={w.id for w in (*active, *inactive) if outranks(user, w)},
        nodes=sorted(nodes.items(), key=lambda kv: (_RANK[kv[1][0]], kv[0])),
        names={n.id: n.name for n in (*tree.districts, *tree.streets, *tree.communities, *tree.grids)},
        roles=creatable_roles(user),
        message=message,
        error=error,
        one_time=one_time,
        form=form or {},
        min_password=MIN_PASSWORD,
        status_code=status_code,
    )
    if one_time is not None:
        response.headers["Cache-Control"] = "no-store"  # the one-time password must not linger in a cache
    return response


@router.get("", response_class=HTMLResponse)
async def workers_page(request: Request, ctx: ContextDep, scope: ScopeDep, user: CurrentUser) -> Response:
    """Workers in scope (phones masked), with the add form and per-worker actions."""
    _require_manager(request, user)
    return await asyncio.to_thread(_page, request, ctx, scope, user)


class _Invalid(Exception):
    """A form value the page reports back (400)."""


def _password(request: Request, given: str) -> tuple[str, bool]:
    """The password to set and whether it was generated here (to be shown once); 400 if too short."""
    if not given:
        return secrets.token_urlsafe(12), True
    if len(given) < MIN_PASSWORD:
        raise _Invalid(translator(request)("worker.weak"))
    return given, False


@router.post("", response_class=HTMLResponse, dependencies=[CsrfForm])
def create_worker(
    request: Request,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    worker_id: Annotated[str, Form(min_length=1, max_length=64)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Role, Form()],
    area: Annotated[str, Form(max_length=64)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Add a worker whose area lies inside the caller's scope; a generated password is shown once."""
    _require_manager(request, user)
    t = translator(request)
    form = {"worker_id": worker_id, "name": name, "role": role.value, "area": area, "phone": phone}
    if role not in creatable_roles(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, t("worker.refused"))
    if role is not Role.ADMIN:
        found = nodes_in_scope(ctx.backend.hierarchy(scope), scope).get(area)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found"))  # as a missing area: nothing leaks
        if found[0] != LEVEL_OF_ROLE[role]:
            return _page(request, ctx, scope, user, error=t("worker.bad_role"), form=form, status_code=400)
    else:
        area = ""
    try:
        secret, generated = _password(request, password)
        ctx.backend.create_worker(
            actor=user.id, worker_id=worker_id.strip(), name=name.strip(), role=role, scope=area,
            phone=phone.strip(), password_hash=hash_password(secret),
        )  # fmt: skip
    except _Invalid as exc:
        return _page(request, ctx, scope, user, error=str(exc), form=form, status_code=400)
    except RecordConflict as exc:
        error = t("worker.taken", field=t(f"worker.{'phone' if exc.field == 'phone' else 'id'}"), value=exc.value)
        return _page(request, ctx, scope, user, error=error, form=form, status_code=409)
    except InvalidRecord as exc:
        error = t("worker.invalid", field=exc.field, reason=exc.reason)
        return _page(request, ctx, scope, user, error=error, form=form, status_code=400)
    one_time = (worker_id.strip(), secret) if generated else None
    return _page(request, ctx, scope, user, message=t("worker.created", id=worker_id.strip()), one_time=one_time)


@router.post("/{worker_id}/active", response_class=HTMLResponse, dependencies=[CsrfForm])
def set_active(
    request: Request,
    worker_id: str,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    active: Annotated[bool, Form()],
) -> Response:
    """Deactivate (no more logins, sessions end at once) or reactivate a worker in scope."""
    _require_manager(request, user)
    t = translator(request)
    target = _worker_in_scope(request, ctx, scope, worker_id)
    if target.id == user.id and not active:
        return _page(request, ctx, scope, user, error=t("worker.self"), status_code=400)
    target = _managed_worker(request, ctx, scope, user, worker_id)
    try:
        ctx.backend.set_worker_active(target.id, active, actor=user.id)
    except RecordNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found")) from None
    ctx.sessions.revoke_user(target.id)  # deactivated: out now; reactivated: old cookies stay dead
    message = t("worker.reactivated" if active else "worker.deactivated", id=target.id)
    return _page(request, ctx, scope, user, message=message)


@router.post("/{worker_id}/password", response_class=HTMLResponse, dependencies=[CsrfForm])
def reset_password(
    request: Request,
    worker_id: str,
    ctx: ContextDep,
    scope: ScopeDep,
    user: CurrentUser,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Set a worker's password, or generate a one-time one (shown once)."""
    _require_manager(request, user)
    t = translator(request)
    target = _managed_worker(request, ctx, scope, user, worker_id)
    try:
        secret, generated = _password(request, password)
    except _Invalid as exc:
        return _page(request, ctx, scope, user, error=str(exc), status_code=400)
    try:
        ctx.backend.set_password_hash(target.id, hash_password(secret), actor=user.id)
    except RecordNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, t("error.not_found")) from None
    ctx.sessions.revoke_user(target.id)
    if generated:
        return _page(request, ctx, scope, user, one_time=(target.id, secret))
    return _page(request, ctx, scope, user, message=t("worker.password_set", id=target.id))
