"""Plain records the store returns (no SQLAlchemy objects leave the store)."""

from __future__ import annotations

from typing import Any

import msgspec


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as stored: identity, lifecycle, response clocks and escalation timers (times: UTC epoch ms)."""

    id: int
    site: str
    community_id: str | None
    resident_id: str | None
    device: str | None
    type: str
    subject: str
    severity: str
    life_safety: bool
    state: str
    raised_ms: int
    created_ms: int
    last_seen_ms: int
    count: int
    explanation: str
    explanation_zh: str
    evidence: dict[str, Any]
    cleared_ms: int | None
    owner_id: str | None
    outcome: str | None
    note: str | None
    ack_ms: int | None
    en_route_ms: int | None
    on_site_ms: int | None
    resolved_ms: int | None
    time_to_ack_ms: int | None
    time_to_on_site_ms: int | None
    time_to_resolve_ms: int | None
    policy: dict[str, Any]
    remind_due_ms: int | None
    escalate_due_ms: int | None
    escalation_step: int
    on_site_due_ms: int | None
    next_due_ms: int | None
    notified: list[str]
    last_notified_ms: int | None


class RaiseResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of storing a raised alert: the row and whether it was new or a deduplicated repeat."""

    record: AlertRecord
    created: bool


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One lifecycle transition."""

    id: int
    alert_id: int
    time_ms: int
    actor: str
    channel: str
    action: str
    from_state: str | None
    to_state: str
    outcome: str | None
    note: str | None


class TransitionResult(msgspec.Struct, frozen=True, kw_only=True):
    """A transition's result; ``applied`` is False when a link was already used or the step already done."""

    record: AlertRecord
    from_state: str
    applied: bool
    reason: str | None = None


class WorkerContact(msgspec.Struct, frozen=True, kw_only=True):
    """Who to notify and how."""

    id: str
    name: str
    role: str
    scope: str
    channels: list[str]
    lang: str = "zh"


class WorkerRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's registry record with login state (``password_hash`` is an argon2 hash or None)."""

    id: str
    name: str
    role: str
    scope: str
    phone: str | None
    lang: str
    active: bool
    password_hash: str | None = None


class AssignResult(msgspec.Struct, frozen=True, kw_only=True):
    """An assignment: the alert after it, the previous owner and the new owner's contact (to notify)."""

    record: AlertRecord
    previous_owner: str | None
    worker: WorkerContact


class SiteContext(msgspec.Struct, frozen=True, kw_only=True):
    """What notifications and commands need to know about a home (no personal identifiers)."""

    site: str
    address: str
    grid_id: str | None
    community_id: str | None
    community_name: str
    street_id: str | None
    district_id: str | None
    resident_id: str | None
    resident_name: str
    devices: dict[str, str]
    """device id → kind."""
    rooms: dict[str, str] = {}
    """device id → room, for the devices registered with one (notifications name a device by its room)."""


class ResidentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A resident's record; ``id_number`` and ``phone`` are masked unless asked for in full (audited either way)."""

    id: str
    site: str
    name: str
    gender: str | None
    birth_year: int | None
    id_number: str
    phone: str
    categories: list[str]
    ability_level: int | None
    emergency_contacts: list[dict[str, Any]]
    consent: bool
    address: str


class NotificationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One notification row."""

    id: int
    alert_id: int
    worker_id: str
    kind: str
    channel: str
    target: str
    status: str
    attempts: int
    created_ms: int
    due_ms: int | None
    sent_ms: int | None
    error: str | None
    title: str | None
    body: str | None


class SendOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one delivery of an outbox row (:meth:`AlertStore.finish_sends`)."""

    id: int
    status: str
    """``sent``, ``retry`` (again at ``due_ms``) or ``failed``."""
    channel: str
    target: str
    due_ms: int | None = None
    error: str | None = None
    audit: str | None = None
    """The audit action recorded with the result (``alert.notified``, ``alert.escalated`` …); None: none."""


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    """How many records a registry import created or updated, per table."""

    created: dict[str, int]
    updated: dict[str, int]


class NotificationDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A notification row to write (one delivery result, or one queued item)."""

    worker_id: str
    kind: str
    channel: str
    target: str
    status: str
    due_ms: int | None = None
    sent_ms: int | None = None
    attempts: int = 0
    error: str | None = None
    title: str | None = None
    body: str | None = None
