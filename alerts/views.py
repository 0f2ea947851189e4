"""Read models of the console: what the pages and the API show, independent of the storage schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.escalation import Role
from alerts.lifecycle import ACTIVE_STATES, State
from detection.models import LIFE_SAFETY_TYPES, AlertType, Severity

__all__ = [
    "Account",
    "AlertEventView",
    "AlertView",
    "AuditRecord",
    "Contact",
    "DeviceView",
    "Hierarchy",
    "Node",
    "Place",
    "ResidentView",
    "Role",
    "VisitView",
]


@dataclass(frozen=True, slots=True)
class Place:
    """Where a home sits in the hierarchy district → street → community → grid."""

    district: str
    street: str
    community: str
    grid: str


@dataclass(frozen=True, slots=True)
class Account:
    """A person who can log in; ``scope`` is the id of the district/street/community/grid they cover."""

    id: str
    name: str
    role: Role
    scope: str
    phone: str = ""
    password_hash: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """An emergency contact of a resident."""

    name: str
    relation: str
    phone: str


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device of a home and its health."""

    device: str
    kind: str
    room: str | None
    online: bool
    last_seen_ms: int | None = None
    battery_pct: int | None = None


@dataclass(frozen=True, slots=True)
class ResidentView:
    """One resident with their home; personal data unmasked (mask before listing)."""

    id: str
    name: str
    gender: str
    birth_year: int
    id_number: str
    phone: str
    categories: tuple[str, ...]
    ability_level: int
    consent: bool
    site: str
    address: str
    place: Place
    contacts: tuple[Contact, ...] = ()
    grid_worker: str = ""
    grid_worker_phone: str = ""
    devices: tuple[DeviceView, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertEventView:
    """One step of an alert's history."""

    time_ms: int
    actor: str
    action: str
    state: str
    note: str = ""
    outcome: str | None = None
    """The outcome chosen with a ``resolve`` (elder fine, false alarm, …); None for every other step."""


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert as the console shows it."""

    id: int
    site: str
    place: Place
    type: AlertType
    severity: Severity
    state: State
    raised_ms: int
    explanation: str
    explanation_zh: str
    resident_id: str = ""
    resident_name: str = ""
    address: str = ""
    device: str | None = None
    assignee: str = ""
    acked_ms: int | None = None
    on_site_ms: int | None = None
    resolved_ms: int | None = None
    on_site_due_ms: int | None = None
    outcome: str | None = None
    updated_ms: int = 0
    events: tuple[AlertEventView, ...] = field(default=())
    count: int = 1
    """How many times the condition was reported while this alert was open (repeats are merged)."""
    escalate_due_ms: int | None = None
    """When the next escalation step goes out if nobody acknowledges (None: no step left, or acknowledged)."""
    escalate_to: tuple[str, ...] = ()
    """The roles that step tells (its policy's, as snapshotted at the raise)."""

    @property
    def active(self) -> bool:
        """True while the alert is still someone's job."""
        return self.state in ACTIVE_STATES

    @property
    def life_safety(self) -> bool:
        """SOS, call button, fall, smoke, critical vitals: the console sounds its cue for these."""
        return self.type in LIFE_SAFETY_TYPES


def next_escalation(
    escalate_due_ms: int | None, escalation_step: int | None, policy: dict[str, Any] | None
) -> tuple[int | None, tuple[str, ...]]:
    """The due time and roles of an alert's next escalation step, from its row (timers and policy snapshot).

    >>> next_escalation(300_000, 0, {"escalate": [{"after_s": 300, "roles": ["street"]}]})
    (300000, ('street',))
    >>> next_escalation(None, 1, {"escalate": [{"after_s": 300, "roles": ["street"]}]})
    (None, ())
    """
    steps = (policy or {}).get("escalate") or []
    step = escalation_step or 0
    if escalate_due_ms is None or step >= len(steps) or not isinstance(steps[step], dict):
        return None, ()
    return escalate_due_ms, tuple(str(r) for r in steps[step].get("roles") or ())


@dataclass(frozen=True, slots=True)
class VisitView:
    """One monthly care visit (探访关爱)."""

    id: int
    resident_id: str
    worker_id: str
    time_ms: int
    outcome: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action seen by the console."""

    time_ms: int
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the hierarchy (district, street, community or grid) with its parent's id."""

    id: str
    name: str
    parent: str = ""


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """The district → street → community → grid tree (the part inside a scope)."""

    districts: tuple[Node, ...] = ()
    streets: tuple[Node, ...] = ()
    communities: tuple[Node, ...] = ()
    grids: tuple[Node, ...] = ()

    def chain(self, grid_ids: set[str]) -> dict[str, list[dict[str, str]]]:
        """The registry-document entries (docs/registry.md) needed to place homes in ``grid_ids``."""
        grids = [g for g in self.grids if g.id in grid_ids]
        communities = [c for c in self.communities if c.id in {g.parent for g in grids}]
        streets = [s for s in self.streets if s.id in {c.parent for c in communities}]
        districts = [d for d in self.districts if d.id in {s.parent for s in streets}]
        return {
            "districts": [{"id": d.id, "name": d.name} for d in districts],
            "streets": [{"id": s.id, "name": s.name, "district": s.parent} for s in streets],
            "communities": [{"id": c.id, "name": c.name, "street": c.parent} for c in communities],
            "grids": [{"id": g.id, "name": g.name, "community": g.parent} for g in grids],
        }
