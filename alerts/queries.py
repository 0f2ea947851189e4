"""The console's read models and writes over the alert store and alert service (its one backend).

Every read takes the caller's :class:`~alerts.scope.Scope` and returns only records inside it; a record outside is
``None`` (the routes answer 404). Writes raise the store's typed errors
(:class:`~alerts.store.errors.InvalidTransition`, :class:`~alerts.store.errors.AlertNotFound`,
:class:`~alerts.store.errors.LinkError`) which the routes translate.

Writes go through :class:`alerts.service.AlertService` (transitions, one-tap links: it also tells the home that
help is coming) and :class:`alerts.store.repository.AlertStore` (visits, registry import). Scoped reads join the
store's tables (``alerts.store.tables``) and filter with :func:`alerts.scope.scope_clause`, so the database
never returns a row outside the caller's part of the hierarchy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio.from_thread
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from alerts.lifecycle import ACTIVE_STATES, Action, Channel, Outcome, State
from alerts.links import LinkAction, LinkClaim
from alerts.scope import Scope, area_inside, scope_clause
from alerts.service import AlertService
from alerts.store.errors import AlertNotFound
from alerts.store.records import WorkerRecord
from alerts.store.repository import AlertStore
from alerts.store.tables import (
    AlertEvent,
    AlertRow,
    AuditRow,
    Community,
    Device,
    District,
    Grid,
    Resident,
    Site,
    Street,
    Visit,
    Worker,
)
from alerts.views import (
    Account,
    AlertEventView,
    AlertView,
    AuditRecord,
    Contact,
    DeviceView,
    Hierarchy,
    Node,
    Place,
    ResidentView,
    Role,
    VisitView,
    next_escalation,
)
from detection.models import AlertType, Severity

T = TypeVar("T")
_ACTIVE = tuple(s.value for s in ACTIVE_STATES)
_OFFLINE_TYPES = (AlertType.DEVICE_OFFLINE.value, AlertType.SITE_OFFLINE.value)


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine of the service from a sync route: on the server's loop when called from its worker thread."""
    try:
        return anyio.from_thread.run(factory)
    except RuntimeError:
        pass
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # Not in a worker thread of a running loop (CLI, tests): a private loop is fine for one call.
        return asyncio.run(factory())
    # Called from inside some other running loop's thread: run on a private loop in a helper thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _where(scope: Scope) -> ColumnElement[bool]:
    return scope_clause(scope, district=Street.district_id, street=Street.id, community=Community.id, grid=Grid.id)


def _placed(stmt: Any) -> Any:
    """Join sites to their grid, community and street (for the scope filter and the place)."""
    return (
        stmt.join(Grid, Grid.id == Site.grid_id)
        .join(Community, Community.id == Grid.community_id)
        .join(Street, Street.id == Community.street_id)
    )


class StoreBackend:
    """Scoped reads over the store's tables; writes through the alert service and store."""

    def __init__(
        self,
        *,
        store: AlertStore,
        service: AlertService,
        runner: Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any] = run_async,
    ) -> None:
        self.store = store
        self.service = service
        self._run = runner

    @contextmanager
    def _read(self) -> Iterator[Session]:
        # The store's read-only transaction: on SQLite a plain BEGIN, so the console's polling never
        # queues behind a writer's BEGIN IMMEDIATE.
        with self.store.read_session() as session:
            yield session

    def _now(self) -> int:
        return self.service.clock()

    # -- accounts ------------------------------------------------------------------------------------------
    @staticmethod
    def _account(w: Worker | WorkerRecord) -> Account:
        return Account(
            id=w.id,
            name=w.name,
            role=Role(w.role),
            scope=w.scope,
            phone=w.phone or "",
            password_hash=w.password_hash or "",
        )

    def account(self, user_id: str) -> Account | None:
        """An active worker by id."""
        with self._read() as s:
            w = s.get(Worker, user_id)
            return self._account(w) if w is not None and w.active else None

    def account_by_login(self, login: str) -> Account | None:
        """An active worker by id or phone."""
        with self._read() as s:
            w = s.get(Worker, login) or s.scalars(select(Worker).where(Worker.phone == login).limit(1)).first()
            return self._account(w) if w is not None and w.active else None

    def accounts(self, scope: Scope, *, active: bool = True) -> list[Account]:
        """Active (or, with ``active=False``, deactivated) workers whose whole area lies inside ``scope``."""
        with self._read() as s:
            workers = [
                self._account(w) for w in s.scalars(select(Worker).where(Worker.active.is_(active)).order_by(Worker.id))
            ]
            if scope.level == "all":
                return workers
            rows = s.execute(
                select(Grid.id, Community.id, Street.id, Street.district_id)
                .join(Community, Community.id == Grid.community_id)
                .join(Street, Street.id == Community.street_id)
            ).all()
        places = [Place(d, st, c, g) for g, c, st, d in rows]
        return [w for w in workers if area_inside(scope, w.scope, places)]

    def create_worker(
        self, *, actor: str, worker_id: str, name: str, role: Role, scope: str, phone: str, password_hash: str
    ) -> Account:
        """Add a worker through the store (checks, write and audit in one transaction)."""
        record = self.store.create_worker(
            worker_id=worker_id, name=name, role=role.value, scope=scope, phone=phone,
            password_hash=password_hash or None, actor=actor, channel=Channel.CONSOLE, now_ms=self._now(),
        )  # fmt: skip
        return self._account(record)

    def set_worker_active(self, worker_id: str, active: bool, *, actor: str) -> Account:
        """(De)activate a worker through the store (audited)."""
        record = self.store.set_worker_active(
            worker_id, active, actor=actor, channel=Channel.CONSOLE, now_ms=self._now()
        )
        return self._account(record)

    def set_password_hash(self, worker_id: str, password_hash: str, *, actor: str) -> None:
        """Give a worker a login password (argon2 hash) through the store (audited)."""
        self.store.set_password_hash(worker_id, password_hash, actor=actor, channel=Channel.CONSOLE, now_ms=self._now())

    # -- alerts --------------------------------------------------------------------------------------------
    def alerts_version(self) -> int:
        """Changes with every new alert, repeat and transition (max ids and last-seen time)."""
        with self._read() as s:
            row = s.execute(
                select(
                    select(func.max(AlertEvent.id)).scalar_subquery(),
                    select(func.max(AlertRow.id)).scalar_subquery(),
                    select(func.sum(AlertRow.count)).scalar_subquery(),
                )
            ).one()
        return hash(tuple(row)) & 0x7FFFFFFFFFFF

    def _alert_views(self, s: Session, stmt: Any, *, with_events: bool = False) -> list[AlertView]:
        rows: list[Any] = list(s.execute(stmt).all())
        if not rows:
            return []
        ids = [r[0].id for r in rows]
        residents = {
            r.id: r.name for r in s.scalars(select(Resident).where(Resident.id.in_({r[0].resident_id for r in rows})))
        }
        events: dict[int, list[AlertEventView]] = {}
        if with_events:
            ev = select(AlertEvent).where(AlertEvent.alert_id.in_(ids)).order_by(AlertEvent.id)
            for e in s.scalars(ev):
                action = "raised" if e.action == "raise" else e.action
                events.setdefault(e.alert_id, []).append(
                    AlertEventView(e.time_ms, e.actor, action, e.to_state, e.note or "", e.outcome)
                )
        out = []
        for row, address, grid, community, street, district in rows:
            escalate_due, escalate_to = next_escalation(row.escalate_due_ms, row.escalation_step, row.policy)
            out.append(
                AlertView(
                    id=row.id,
                    site=row.site,
                    place=Place(district, street, community, grid),
                    type=AlertType(row.type),
                    severity=Severity(row.severity),
                    state=State(row.state),
                    raised_ms=row.raised_ms,
                    explanation=row.explanation,
                    explanation_zh=row.explanation_zh,
                    resident_id=row.resident_id or "",
                    resident_name=residents.get(row.resident_id or "", ""),
                    address=address,
                    device=row.device,
                    assignee=row.owner_id or "",
                    acked_ms=row.ack_ms,
                    on_site_ms=row.on_site_ms,
                    resolved_ms=row.resolved_ms,
                    on_site_due_ms=row.on_site_due_ms,
                    outcome=row.outcome,
                    updated_ms=row.last_seen_ms,
                    events=tuple(events.get(row.id, ())) if with_events else (),
                    count=row.count,
                    escalate_due_ms=escalate_due,
                    escalate_to=escalate_to,
                )
            )
        return out

    @staticmethod
    def _alert_select(scope: Scope) -> Any:
        stmt = select(AlertRow, Site.address, Grid.id, Community.id, Street.id, Street.district_id).join(
            Site, Site.id == AlertRow.site
        )
        return _placed(stmt).where(_where(scope))

    def list_alerts(
        self,
        scope: Scope,
        *,
        active: bool | None = True,
        since_ms: int | None = None,
        until_ms: int | None = None,
        site: str | None = None,
    ) -> list[AlertView]:
        """Alerts inside ``scope``, newest first (an open-ended query of closed alerts returns the newest 5000)."""
        stmt = self._alert_select(scope).order_by(AlertRow.raised_ms.desc())
        if active is True:
            stmt = stmt.where(AlertRow.state.in_(_ACTIVE))
        elif active is False:
            stmt = stmt.where(AlertRow.state.not_in(_ACTIVE))
        if since_ms is not None:
            stmt = stmt.where(AlertRow.raised_ms >= since_ms)
        if until_ms is not None:
            stmt = stmt.where(AlertRow.raised_ms < until_ms)
        if site is not None:
            stmt = stmt.where(AlertRow.site == site)
        if active is not True and since_ms is None:
            stmt = stmt.limit(5000)
        with self._read() as s:
            return self._alert_views(s, stmt)

    def get_alert(self, scope: Scope, alert_id: int) -> AlertView | None:
        """One alert with its history, inside ``scope``."""
        with self._read() as s:
            views = self._alert_views(s, self._alert_select(scope).where(AlertRow.id == alert_id), with_events=True)
        return views[0] if views else None

    def _view_of(self, alert_id: int) -> AlertView:
        view = self.get_alert(Scope("all"), alert_id)
        if view is None:
            raise AlertNotFound(alert_id)
        return view

    def act(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        now_ms: int,
        outcome: Outcome | None = None,
        note: str = "",
    ) -> AlertView:
        """A lifecycle action through the alert service (which also tells the home help is coming)."""
        self._run(
            lambda: self.service.transition(
                alert_id, action, actor=actor, channel=channel, outcome=outcome, note=note or None, now_ms=now_ms
            )
        )
        return self._view_of(alert_id)

    def assign(self, alert_id: int, worker_id: str, *, actor: str, now_ms: int) -> AlertView:
        """Make ``worker_id`` the owner through the service (event, audit, notification to the assignee)."""
        self._run(lambda: self.service.assign(alert_id, worker_id, actor=actor, channel=Channel.CONSOLE, now_ms=now_ms))
        return self._view_of(alert_id)

    # -- links ---------------------------------------------------------------------------------------------
    def link_token(
        self, *, alert_id: int, worker_id: str, action: LinkAction, now_ms: int, expires_ms: int | None = None
    ) -> str:
        """A fresh signed token from the service's signer."""
        return self.service.links.token(
            alert_id=alert_id, worker_id=worker_id, action=action, now_ms=now_ms, expires_ms=expires_ms
        )

    def verify_link(self, token: str, *, now_ms: int) -> LinkClaim:
        """Signature and expiry check (no use)."""
        claim = self.service.links.verify(token, now_ms=now_ms)
        self._view_of(claim.alert_id)
        return claim

    def use_link(self, token: str, *, now_ms: int, outcome: Outcome | None = None) -> AlertView:
        """Consume a one-tap link through the service (idempotent; audited by the store)."""
        claim = self.verify_link(token, now_ms=now_ms)
        if claim.lifecycle_action is None:
            return self._view_of(claim.alert_id)
        self._run(lambda: self.service.consume_link(token, outcome=outcome))
        return self._view_of(claim.alert_id)

    # -- residents and visits ------------------------------------------------------------------------------
    def _residents(
        self, s: Session, scope: Scope, resident_id: str | None = None, site_id: str | None = None
    ) -> list[ResidentView]:
        stmt = _placed(
            select(Resident, Site, Grid.id, Community.id, Street.id, Street.district_id).join(
                Site, Site.id == Resident.site_id
            )
        ).where(_where(scope))
        if resident_id is not None:
            stmt = stmt.where(Resident.id == resident_id)
        if site_id is not None:
            stmt = stmt.where(Site.id == site_id)
        rows: list[Any] = list(s.execute(stmt.order_by(Resident.id)).all())
        if not rows:
            return []
        sites = {r[1].id for r in rows}
        grids = {r[2] for r in rows}
        devices: dict[str, list[Device]] = {}
        for d in s.scalars(select(Device).where(Device.site_id.in_(sites)).order_by(Device.device)):
            devices.setdefault(d.site_id, []).append(d)
        offline = {
            (a.site, a.type, a.device)
            for a in s.scalars(
                select(AlertRow).where(
                    AlertRow.site.in_(sites), AlertRow.type.in_(_OFFLINE_TYPES), AlertRow.state.in_(_ACTIVE)
                )
            )
        }
        workers = {
            w.scope: w
            for w in s.scalars(
                select(Worker).where(Worker.role == "grid_worker", Worker.scope.in_(grids), Worker.active)
            )
        }
        out = []
        for res, site, grid, community, street, district in rows:
            site_dark = any(o[0] == site.id and o[1] == AlertType.SITE_OFFLINE.value for o in offline)
            dev_views = tuple(
                DeviceView(
                    device=d.device,
                    kind=d.kind,
                    room=d.room,
                    online=not site_dark and (site.id, AlertType.DEVICE_OFFLINE.value, d.device) not in offline,
                )
                for d in devices.get(site.id, [])
            )
            worker = workers.get(grid)
            out.append(
                ResidentView(
                    id=res.id,
                    name=res.name,
                    gender=res.gender or "",
                    birth_year=res.birth_year or 0,
                    id_number=res.id_number or "",
                    phone=res.phone or "",
                    categories=tuple(res.categories or ()),
                    ability_level=res.ability_level or 0,
                    consent=res.consent,
                    site=site.id,
                    address=site.address,
                    place=Place(district, street, community, grid),
                    contacts=tuple(
                        Contact(str(c.get("name", "")), str(c.get("relation", "")), str(c.get("phone", "")))
                        for c in (res.emergency_contacts or [])
                    ),
                    grid_worker=worker.name if worker else "",
                    grid_worker_phone=(worker.phone or "") if worker else "",
                    devices=dev_views,
                )
            )
        return out

    def list_residents(self, scope: Scope, *, site: str | None = None) -> list[ResidentView]:
        """Residents inside ``scope`` (of one home, with ``site``)."""
        with self._read() as s:
            return self._residents(s, scope, site_id=site)

    def get_resident(self, scope: Scope, resident_id: str) -> ResidentView | None:
        """One resident inside ``scope`` (the caller audits the read)."""
        with self._read() as s:
            found = self._residents(s, scope, resident_id)
        return found[0] if found else None

    def list_visits(self, scope: Scope, *, since_ms: int, until_ms: int) -> list[VisitView]:
        """Visits in the window to residents inside ``scope``."""
        stmt = _placed(
            select(Visit).join(Resident, Resident.id == Visit.resident_id).join(Site, Site.id == Resident.site_id)
        ).where(_where(scope), Visit.time_ms >= since_ms, Visit.time_ms < until_ms)
        with self._read() as s:
            return [
                VisitView(v.id, v.resident_id, v.worker_id, v.time_ms, v.outcome, v.note or "")
                for v in s.scalars(stmt.order_by(Visit.time_ms))
            ]

    def record_visit(self, *, resident_id: str, worker_id: str, time_ms: int, outcome: str, note: str) -> VisitView:
        """Store a visit (audited by the store)."""
        visit_id = self.store.record_visit(
            resident_id=resident_id,
            worker_id=worker_id,
            time_ms=time_ms,
            outcome=outcome,
            note=note,
            now_ms=self._now(),
        )
        return VisitView(visit_id, resident_id, worker_id, time_ms, outcome, note)

    def hierarchy(self, scope: Scope) -> Hierarchy:
        """Grids inside ``scope`` and their ancestors."""
        stmt = (
            select(Grid, Community, Street, District)
            .join(Community, Community.id == Grid.community_id)
            .join(Street, Street.id == Community.street_id)
            .join(District, District.id == Street.district_id)
            .where(_where(scope))
        )
        d: dict[str, Node] = {}
        st: dict[str, Node] = {}
        c: dict[str, Node] = {}
        g: dict[str, Node] = {}
        with self._read() as s:
            for grid, community, street, district in s.execute(stmt).all():
                d[district.id] = Node(district.id, district.name)
                st[street.id] = Node(street.id, street.name, district.id)
                c[community.id] = Node(community.id, community.name, street.id)
                g[grid.id] = Node(grid.id, grid.name, community.id)

        def ordered(nodes: dict[str, Node]) -> tuple[Node, ...]:
            return tuple(nodes[k] for k in sorted(nodes))

        return Hierarchy(districts=ordered(d), streets=ordered(st), communities=ordered(c), grids=ordered(g))

    def import_registry(self, data: Mapping[str, Any], *, actor: str = "console") -> None:
        """Upsert a registry document through the store (all or nothing, audited as ``actor``)."""
        self.store.import_registry(data, now_ms=self._now(), actor=actor, channel=Channel.CONSOLE)

    def site_in_scope(self, scope: Scope, site: str) -> bool:
        """True if the home ``site`` is registered and inside ``scope`` (read fresh, never from a cache)."""
        with self._read() as s:
            return s.scalar(_placed(select(Site.id)).where(Site.id == site, _where(scope))) is not None

    def site_grid(self, site: str) -> str | None:
        """The grid of a home, any area (for the import's ownership check)."""
        with self._read() as s:
            row = s.get(Site, site)
            return row.grid_id if row is not None else None

    # -- audit ---------------------------------------------------------------------------------------------
    def audit(
        self, *, actor: str, channel: str, action: str, entity: str, entity_id: str, detail: Mapping[str, str]
    ) -> None:
        """Append one entry to the store's append-only audit log (at the service's clock)."""
        self.store.audit(
            now_ms=self._now(), actor=actor, channel=channel, action=action, entity=entity, entity_id=entity_id,
            detail=dict(detail),
        )  # fmt: skip

    def audit_log(self, *, limit: int = 200) -> Sequence[AuditRecord]:
        """Newest first."""
        with self._read() as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            return [
                AuditRecord(
                    r.time_ms,
                    r.actor,
                    r.action,
                    r.entity,
                    r.entity_id,
                    {k: str(v) for k, v in (r.detail or {}).items()},
                )
                for r in rows
            ]
