"""Pydantic schemas of the HTTP edge; personal data is masked in every ``*Public`` list schema."""

from __future__ import annotations

from pydantic import BaseModel, Field

from alerts.lifecycle import Action, Outcome
from alerts.privacy import mask_id_number, mask_phone
from alerts.store.away import AwayNotice
from alerts.views import AlertView, ResidentView, VisitView


class AlertPublic(BaseModel):
    """One alert in a list or detail answer."""

    id: int
    site: str
    community: str
    grid: str
    type: str
    severity: str
    state: str
    raised_ms: int
    resident_id: str
    resident_name: str
    explanation: str
    explanation_zh: str
    assignee: str
    acked_ms: int | None
    on_site_ms: int | None
    resolved_ms: int | None
    on_site_due_ms: int | None
    escalate_due_ms: int | None
    escalate_to: list[str]
    outcome: str | None

    @classmethod
    def of(cls, a: AlertView) -> AlertPublic:
        """From the read model."""
        return cls(
            id=a.id,
            site=a.site,
            community=a.place.community,
            grid=a.place.grid,
            type=a.type.value,
            severity=a.severity.value,
            state=a.state.value,
            raised_ms=a.raised_ms,
            resident_id=a.resident_id,
            resident_name=a.resident_name,
            explanation=a.explanation,
            explanation_zh=a.explanation_zh,
            assignee=a.assignee,
            acked_ms=a.acked_ms,
            on_site_ms=a.on_site_ms,
            resolved_ms=a.resolved_ms,
            on_site_due_ms=a.on_site_due_ms,
            escalate_due_ms=a.escalate_due_ms,
            escalate_to=list(a.escalate_to),
            outcome=a.outcome,
        )


class AlertAction(BaseModel):
    """A lifecycle action on an alert."""

    action: Action
    outcome: Outcome | None = None
    note: str = Field(default="", max_length=2000)


class AlertAssign(BaseModel):
    """Assign an alert to a worker."""

    worker_id: str = Field(min_length=1, max_length=64)


class ElderPublic(BaseModel):
    """A resident in a list: ID number and phone masked."""

    id: str
    name: str
    site: str
    grid: str
    community: str
    address: str
    id_number: str
    phone: str
    categories: list[str]
    ability_level: int

    @classmethod
    def of(cls, r: ResidentView) -> ElderPublic:
        """From the read model, masking personal identifiers."""
        return cls(
            id=r.id,
            name=r.name,
            site=r.site,
            grid=r.place.grid,
            community=r.place.community,
            address=r.address,
            id_number=mask_id_number(r.id_number),
            phone=mask_phone(r.phone),
            categories=list(r.categories),
            ability_level=r.ability_level,
        )


class ContactPublic(BaseModel):
    """An emergency contact (full phone: a duty officer must be able to call)."""

    name: str
    relation: str
    phone: str


class ElderDetail(ElderPublic):
    """One resident's record (read audited); the ID number stays masked, the phone is shown to call."""

    gender: str
    birth_year: int
    consent: bool
    contacts: list[ContactPublic]
    grid_worker: str

    @classmethod
    def detail(cls, r: ResidentView) -> ElderDetail:
        """From the read model."""
        base = ElderPublic.of(r).model_dump()
        base["phone"] = r.phone
        return cls(
            **base,
            gender=r.gender,
            birth_year=r.birth_year,
            consent=r.consent,
            contacts=[ContactPublic(name=c.name, relation=c.relation, phone=c.phone) for c in r.contacts],
            grid_worker=r.grid_worker,
        )


class DevicePublic(BaseModel):
    """A device and its health (``status`` from its last-seen time when telemetry is configured)."""

    site: str
    device: str
    kind: str
    room: str | None
    online: bool
    status: str = "online"
    """online / late / offline / unseen (see :mod:`dashboards.device_report`)."""
    last_seen_ms: int | None = None
    battery_pct: int | None = None
    open_alerts: int = 0
    gateway_status: str = "online"
    community: str = ""
    grid: str = ""
    resident_ids: list[str] = []
    source: str = "alerts"
    """Where the status came from: ``telemetry`` (InfluxDB last-seen) or ``alerts`` (open offline alerts)."""


class VisitCreate(BaseModel):
    """Record a care visit."""

    resident_id: str
    time_ms: int | None = None
    outcome: str = Field(pattern="^(well|needs_help|not_home|referred)$")
    note: str = Field(default="", max_length=2000)


class VisitPublic(BaseModel):
    """One care visit."""

    id: int
    resident_id: str
    worker_id: str
    time_ms: int
    outcome: str
    note: str

    @classmethod
    def of(cls, v: VisitView) -> VisitPublic:
        """From the read model."""
        return cls(
            id=v.id, resident_id=v.resident_id, worker_id=v.worker_id, time_ms=v.time_ms, outcome=v.outcome, note=v.note
        )


class RowErrorPublic(BaseModel):
    """One rejected CSV row."""

    line: int
    field: str
    reason: str


class ImportReportPublic(BaseModel):
    """Result of a CSV import (or its dry run)."""

    dry_run: bool
    accepted: list[str]
    errors: list[RowErrorPublic]
    notices: list[RowErrorPublic] = []
    """Accepted rows with a remark, e.g. a masked ID number or phone for which the stored value was kept."""


class GatewayCredentials(BaseModel):
    """A provisioned home gateway's MQTT login (the password is derived, never stored)."""

    username: str
    password: str
    topic_prefix: str


_MAX_MS = 2**63 - 1


class AwayCreate(BaseModel):
    """Register an away notice (外出报备): the elder is away from ``starts_ms`` (default: now) until ``ends_ms``."""

    starts_ms: int | None = Field(default=None, ge=0, le=_MAX_MS)
    ends_ms: int = Field(ge=0, le=_MAX_MS, description="Planned return (UTC epoch ms), within 90 days.")
    reason: str = Field(min_length=1, max_length=200, description="Free text, e.g. 住女儿家.")


class AwayEnd(BaseModel):
    """End an away notice now (the elder is back, or the stay was cancelled)."""

    reason: str = Field(default="", max_length=200)


class AwayPublic(BaseModel):
    """One away notice of a home."""

    id: int
    site: str
    starts_ms: int
    ends_ms: int
    reason: str
    created_by: str
    created_by_name: str
    created_ms: int
    ended_ms: int | None
    ended_by: str | None
    ended_by_name: str
    ended_reason: str
    active: bool

    @classmethod
    def of(cls, n: AwayNotice, *, now_ms: int) -> AwayPublic:
        """From the store's notice (``active``: in force at ``now_ms``)."""
        return cls(
            id=n.id, site=n.site, starts_ms=n.starts_ms, ends_ms=n.ends_ms, reason=n.reason,
            created_by=n.created_by, created_by_name=n.created_by_name, created_ms=n.created_ms,
            ended_ms=n.ended_ms, ended_by=n.ended_by, ended_by_name=n.ended_by_name, ended_reason=n.ended_reason,
            active=n.active_at(now_ms),
        )  # fmt: skip
