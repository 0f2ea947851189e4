"""An in-memory :class:`~dashboards.ports.ConsoleBackend` for tests and demos without a database.

It applies the real lifecycle rule (:func:`alerts.lifecycle.next_state`), the real escalation policy for the
on-site deadline and the real one-tap link signer, so the web layer behaves the same against it and the store.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from alerts.escalation import PolicyBook, initial_timers
from alerts.lifecycle import ACTIVE_STATES, Action, Channel, Outcome, State, next_state, reached
from alerts.links import LinkAction, LinkClaim, LinkSigner
from alerts.store.errors import (
    AlertNotFound,
    InvalidRecord,
    InvalidTransition,
    LinkError,
    RecordConflict,
    RecordNotFound,
    RegistryImportError,
    WorkerInactive,
)
from dashboards.models import (
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
)
from dashboards.scope import Scope, area_inside
from detection.models import LIFE_SAFETY_TYPES, Alert


class MemoryBackend:
    """Registry, alerts, visits and audit log in dictionaries, guarded by one lock."""

    def __init__(self, *, link_secret: bytes, public_url: str = "http://127.0.0.1:8000") -> None:
        self._lock = threading.RLock()
        self.places: dict[str, Place] = {}
        """Grid id → its place."""
        self.names: dict[str, str] = {}
        """Id of any hierarchy node → its name."""
        self.workers: dict[str, Account] = {}
        self.inactive: set[str] = set()
        """Ids of deactivated workers (they stay in ``workers``, like rows in the store)."""
        self.sites: dict[str, tuple[str, str, tuple[DeviceView, ...]]] = {}
        """Site → (grid, address, devices)."""
        self.residents: dict[str, ResidentView] = {}
        self.alerts: dict[int, AlertView] = {}
        self.visits: list[VisitView] = []
        self._audit: list[AuditRecord] = []
        self._version = 0
        self._used_links: dict[str, int] = {}
        self._signer = LinkSigner(secret=link_secret, base_url=public_url)
        self._policies = PolicyBook()

    # -- registry ------------------------------------------------------------------------------------------
    def site_grid(self, site: str) -> str | None:
        """The grid of a home, any area."""
        return self.sites[site][0] if site in self.sites else None

    def import_registry(self, data: Mapping[str, Any], *, actor: str = "console") -> None:
        """Add or update everything in a registry document (docs/registry.md, version 1)."""
        if data.get("version") != 1:
            raise RegistryImportError("version", f"unsupported version {data.get('version')!r}")
        with self._lock:
            try:
                for district in ([data["district"]] if data.get("district") else []) + list(data.get("districts", [])):
                    self.names[district["id"]] = district["name"]
                streets = {s["id"]: s for s in data.get("streets", [])}
                communities = {c["id"]: c for c in data.get("communities", [])}
                for node in [*streets.values(), *communities.values()]:
                    self.names[node["id"]] = node["name"]
                for g in data.get("grids", []):
                    community = communities[g["community"]]
                    street = streets[community["street"]]
                    self.places[g["id"]] = Place(street["district"], street["id"], community["id"], g["id"])
                    self.names[g["id"]] = g["name"]
                for w in data.get("workers", []):
                    old = self.workers.get(w["id"])
                    self.workers[w["id"]] = Account(
                        id=w["id"],
                        name=w["name"],
                        role=Role(w["role"]),
                        scope=w["scope"],
                        phone=w.get("phone", ""),
                        password_hash=old.password_hash if old else "",
                    )
                for s in data.get("sites", []):
                    self._import_site(s)
            except (KeyError, TypeError, ValueError) as exc:
                raise RegistryImportError("$", f"{type(exc).__name__}: {exc}") from None
            self._version += 1

    def _import_site(self, s: Mapping[str, Any]) -> None:
        grid = s["grid"]
        place = self.places[grid]
        devices = tuple(
            DeviceView(device=d["device"], kind=d["kind"], room=d.get("room"), online=True)
            for d in s.get("devices", [])
        )
        if not devices and s["site"] in self.sites:
            devices = self.sites[s["site"]][2]  # a CSV row names no devices: keep the provisioned ones
        self.sites[s["site"]] = (grid, s.get("address", ""), devices)
        worker = next((w for w in self.workers.values() if w.role is Role.GRID_WORKER and w.scope == grid), None)
        for r in s.get("residents", []):
            self.residents[r["id"]] = ResidentView(
                id=r["id"],
                name=r["name"],
                gender=r.get("gender", ""),
                birth_year=int(r.get("birth_year", 0)),
                id_number=r.get("id_number", ""),
                phone=r.get("phone", ""),
                categories=tuple(r.get("categories", [])),
                ability_level=int(r.get("ability_level", 0)),
                consent=bool(r.get("consent", False)),
                site=s["site"],
                address=s.get("address", ""),
                place=place,
                contacts=tuple(
                    Contact(c.get("name", ""), c.get("relation", ""), c.get("phone", ""))
                    for c in r.get("emergency_contacts", [])
                ),
                grid_worker=worker.name if worker else "",
                grid_worker_phone=worker.phone if worker else "",
                devices=devices,
            )

    def hierarchy(self, scope: Scope) -> Hierarchy:
        """Grids inside ``scope`` and their ancestors."""
        with self._lock:
            places = [p for p in self.places.values() if scope.contains(p)]

            def nodes(ids: dict[str, str]) -> tuple[Node, ...]:
                return tuple(Node(i, self.names.get(i, i), parent) for i, parent in sorted(ids.items()))

            return Hierarchy(
                districts=nodes({p.district: "" for p in places}),
                streets=nodes({p.street: p.district for p in places}),
                communities=nodes({p.community: p.street for p in places}),
                grids=nodes({p.grid: p.community for p in places}),
            )

    def set_password_hash(self, worker_id: str, password_hash: str, *, actor: str) -> None:
        """Give a worker a login password (argon2 hash); audited."""
        with self._lock:
            if worker_id not in self.workers:
                raise RecordNotFound("worker", worker_id)
            self.workers[worker_id] = dataclasses.replace(self.workers[worker_id], password_hash=password_hash)
            self.audit(
                actor=actor, channel="console", action="worker.password_set", entity="worker", entity_id=worker_id,
                detail={},
            )  # fmt: skip

    def create_worker(
        self, *, actor: str, worker_id: str, name: str, role: Role, scope: str, phone: str, password_hash: str
    ) -> Account:
        """Add an active worker (same checks as the store: new id and phone, scope a node of the role's level)."""
        with self._lock:
            levels = {
                Role.GRID_WORKER: {p.grid for p in self.places.values()},
                Role.COMMUNITY_DUTY: {p.community for p in self.places.values()},
                Role.STREET: {p.street for p in self.places.values()},
                Role.DISTRICT: {p.district for p in self.places.values()},
                Role.ADMIN: {"", *self.names},
            }
            if not name.strip():
                raise InvalidRecord("worker", "name", "a name is required")
            if scope not in levels[role]:
                raise InvalidRecord("worker", "scope", f"{scope!r} is not a known node for role {role.value}")
            if worker_id in self.workers:
                raise RecordConflict("worker", "id", worker_id)
            if phone and any(w.phone == phone for w in self.workers.values()):
                raise RecordConflict("worker", "phone", phone)
            account = Account(
                id=worker_id, name=name.strip(), role=role, scope=scope, phone=phone, password_hash=password_hash
            )
            self.workers[worker_id] = account
            self.audit(
                actor=actor, channel="console", action="worker.created", entity="worker", entity_id=worker_id,
                detail={"role": role.value, "scope": scope},
            )  # fmt: skip
            return account

    def set_worker_active(self, worker_id: str, active: bool, *, actor: str) -> Account:
        """(De)activate a worker; inactive ones are not returned by ``account``/``accounts`` (as in the store)."""
        with self._lock:
            account = self.workers.get(worker_id)
            if account is None:
                raise RecordNotFound("worker", worker_id)
            if (worker_id not in self.inactive) != active:
                if active:
                    self.inactive.discard(worker_id)
                else:
                    self.inactive.add(worker_id)
                self.audit(
                    actor=actor, channel="console", action="worker.activated" if active else "worker.deactivated",
                    entity="worker", entity_id=worker_id, detail={"active": str(active).lower()},
                )  # fmt: skip
            return account

    def set_device_online(self, site: str, device: str, online: bool) -> None:
        """Mark one device online/offline (tests and demo)."""
        with self._lock:
            grid, address, devices = self.sites[site]
            new = tuple(dataclasses.replace(d, online=online) if d.device == device else d for d in devices)
            self.sites[site] = (grid, address, new)
            for rid, r in list(self.residents.items()):
                if r.site == site:
                    self.residents[rid] = dataclasses.replace(r, devices=new)

    # -- accounts ------------------------------------------------------------------------------------------
    def account(self, user_id: str) -> Account | None:
        """The active account with this id."""
        return None if user_id in self.inactive else self.workers.get(user_id)

    def account_by_login(self, login: str) -> Account | None:
        """The account whose id or phone is ``login``."""
        with self._lock:
            found = self.workers.get(login) or next((w for w in self.workers.values() if w.phone == login), None)
            return None if found is None or found.id in self.inactive else found

    def accounts(self, scope: Scope, *, active: bool = True) -> list[Account]:
        """Workers whose own scope lies inside ``scope`` (deactivated ones instead with ``active=False``)."""
        with self._lock:
            out = []
            for w in self.workers.values():
                if (w.id in self.inactive) == active:
                    continue
                # A worker is inside the scope when the whole of their own area is.
                if scope.level == "all" or area_inside(scope, w.scope, self.places.values()):
                    out.append(w)
            return out

    # -- alerts --------------------------------------------------------------------------------------------
    def raise_alert(self, alert: Alert) -> AlertView:
        """Store a new alert from the detection core (the store's ``raise_alert`` in production)."""
        with self._lock:
            grid, address, _ = self.sites[alert.site]
            resident = next((r for r in self.residents.values() if r.site == alert.site), None)
            policy = self._policies.policy_for(
                community=self.places[grid].community, alert_type=alert.type, severity=alert.severity
            )
            timers = initial_timers(policy, alert.time_ms)
            view = AlertView(
                id=len(self.alerts) + 1,
                site=alert.site,
                place=self.places[grid],
                type=alert.type,
                severity=alert.severity,
                state=State.OPEN,
                raised_ms=alert.time_ms,
                explanation=alert.explanation,
                explanation_zh=alert.explanation_zh,
                resident_id=resident.id if resident else "",
                resident_name=resident.name if resident else "",
                address=address,
                device=alert.device,
                on_site_due_ms=timers.on_site_due_ms,
                updated_ms=alert.time_ms,
                events=(AlertEventView(alert.time_ms, "system", "raised", State.OPEN),),
            )
            self.alerts[view.id] = view
            self._version += 1
            self.audit(
                actor="system",
                channel="system",
                action="alert.raised",
                entity="alert",
                entity_id=str(view.id),
                detail={},
            )
            return view

    def alerts_version(self) -> int:
        """Bumped on every alert change."""
        return self._version

    def list_alerts(
        self,
        scope: Scope,
        *,
        active: bool | None = True,
        since_ms: int | None = None,
        until_ms: int | None = None,
        site: str | None = None,
    ) -> list[AlertView]:
        """Alerts inside ``scope``."""
        with self._lock:
            return [
                a
                for a in self.alerts.values()
                if scope.contains(a.place)
                and (active is None or a.active == active)
                and (since_ms is None or a.raised_ms >= since_ms)
                and (until_ms is None or a.raised_ms < until_ms)
                and (site is None or a.site == site)
            ]

    def get_alert(self, scope: Scope, alert_id: int) -> AlertView | None:
        """One alert inside ``scope``."""
        a = self.alerts.get(alert_id)
        return a if a is not None and scope.contains(a.place) else None

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
        """Apply a lifecycle action; any forward step counts as acknowledged (as in the store)."""
        with self._lock:
            a = self.alerts.get(alert_id)
            if a is None:
                raise AlertNotFound(alert_id)
            state = next_state(
                a.state, action, life_safety=a.type in LIFE_SAFETY_TYPES, outcome=outcome, alert_id=alert_id
            )
            changes: dict[str, Any] = {"state": state, "updated_ms": now_ms}
            if state is not State.OPEN and a.acked_ms is None and state is not State.CLEARED:
                changes["acked_ms"] = now_ms
            if action is Action.ON_SITE:
                changes["on_site_ms"] = now_ms
            if state is State.RESOLVED:
                changes["resolved_ms"] = now_ms
                changes["outcome"] = outcome.value if outcome else None
            if not a.assignee and action is not Action.NOTE and actor != "system":
                changes["assignee"] = actor
            changes["events"] = (*a.events, AlertEventView(now_ms, actor, action.value, state.value, note))
            new = dataclasses.replace(a, **changes)
            self.alerts[alert_id] = new
            self._version += 1
            self.audit(
                actor=actor,
                channel=channel.value,
                action="alert.transition",
                entity="alert",
                entity_id=str(alert_id),
                detail={"action": action.value, "state": state.value},
            )
            return new

    def assign(self, alert_id: int, worker_id: str, *, actor: str, now_ms: int) -> AlertView:
        """Make ``worker_id`` responsible (refused for closed alerts, unknown or inactive workers: as the store)."""
        with self._lock:
            a = self.alerts.get(alert_id)
            if a is None:
                raise AlertNotFound(alert_id)
            if a.state not in ACTIVE_STATES:
                raise InvalidTransition(
                    alert_id=alert_id, state=a.state, action=Action.ASSIGN, reason=f"alert is {a.state} (final)"
                )
            if worker_id not in self.workers:
                raise RecordNotFound("worker", worker_id)
            if worker_id in self.inactive:
                raise WorkerInactive(worker_id)
            event = AlertEventView(now_ms, actor, Action.ASSIGN.value, a.state.value, worker_id)
            new = dataclasses.replace(a, assignee=worker_id, updated_ms=now_ms, events=(*a.events, event))
            self.alerts[alert_id] = new
            self._version += 1
            self.audit(
                actor=actor,
                channel="console",
                action="alert.assigned",
                entity="alert",
                entity_id=str(alert_id),
                detail={"worker": worker_id},
            )
            return new

    # -- links ---------------------------------------------------------------------------------------------
    def link_token(
        self, *, alert_id: int, worker_id: str, action: LinkAction, now_ms: int, expires_ms: int | None = None
    ) -> str:
        """A fresh signed link token."""
        return self._signer.token(
            alert_id=alert_id, worker_id=worker_id, action=action, now_ms=now_ms, expires_ms=expires_ms
        )

    def verify_link(self, token: str, *, now_ms: int) -> LinkClaim:
        """Check a link's signature and expiry."""
        claim = self._signer.verify(token, now_ms=now_ms)
        if claim.alert_id not in self.alerts:
            raise LinkError("malformed", "unknown alert")
        return claim

    def use_link(self, token: str, *, now_ms: int, outcome: Outcome | None = None) -> AlertView:
        """Apply the link's action once; repeated uses and already-reached states are no-ops."""
        with self._lock:
            claim = self.verify_link(token, now_ms=now_ms)
            action = claim.lifecycle_action
            a = self.alerts[claim.alert_id]
            if action is None or claim.nonce in self._used_links or reached(a.state, action):
                return a
            self._used_links[claim.nonce] = now_ms
            return self.act(
                claim.alert_id, action, actor=claim.worker_id, channel=Channel.LINK, now_ms=now_ms, outcome=outcome
            )

    # -- residents and visits ------------------------------------------------------------------------------
    def list_residents(self, scope: Scope) -> list[ResidentView]:
        """Residents inside ``scope``, by id."""
        with self._lock:
            return sorted((r for r in self.residents.values() if scope.contains(r.place)), key=lambda r: r.id)

    def get_resident(self, scope: Scope, resident_id: str) -> ResidentView | None:
        """One resident inside ``scope``."""
        r = self.residents.get(resident_id)
        return r if r is not None and scope.contains(r.place) else None

    def list_visits(self, scope: Scope, *, since_ms: int, until_ms: int) -> list[VisitView]:
        """Visits in the window to residents inside ``scope``."""
        with self._lock:
            return [
                v
                for v in self.visits
                if since_ms <= v.time_ms < until_ms
                and v.resident_id in self.residents
                and scope.contains(self.residents[v.resident_id].place)
            ]

    def record_visit(self, *, resident_id: str, worker_id: str, time_ms: int, outcome: str, note: str) -> VisitView:
        """Store a visit."""
        with self._lock:
            if resident_id not in self.residents:
                raise RecordNotFound("resident", resident_id)
            visit = VisitView(len(self.visits) + 1, resident_id, worker_id, time_ms, outcome, note)
            self.visits.append(visit)
            self.audit(
                actor=worker_id,
                channel="phone",
                action="visit.recorded",
                entity="visit",
                entity_id=str(visit.id),
                detail={"resident": resident_id, "outcome": outcome},
            )
            return visit

    # -- audit ---------------------------------------------------------------------------------------------
    def audit(
        self, *, actor: str, channel: str, action: str, entity: str, entity_id: str, detail: Mapping[str, str]
    ) -> None:
        """Append one entry."""
        with self._lock:
            self._audit.append(AuditRecord(int(time.time() * 1000), actor, action, entity, entity_id, dict(detail)))

    def audit_log(self, *, limit: int = 200) -> Sequence[AuditRecord]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._audit[-limit:]))
