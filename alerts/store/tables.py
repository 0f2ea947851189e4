"""SQLAlchemy 2 table models of the registry, the alerts and their record (times are UTC epoch ms)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same on every database."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, int: BigInteger}


# ---------------------------------------------------------------- registry (docs/registry.md)


class District(Base):
    """区: the top of the hierarchy."""

    __tablename__ = "districts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Street(Base):
    """街道."""

    __tablename__ = "streets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"), index=True)


class Community(Base):
    """社区."""

    __tablename__ = "communities"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    street_id: Mapped[str] = mapped_column(ForeignKey("streets.id"), index=True)


class Grid(Base):
    """网格: the unit a grid worker covers."""

    __tablename__ = "grids"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"), index=True)


class Worker(Base):
    """A grid worker, duty officer, street/district staff or admin; ``channels`` are apprise URLs."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    channels: Mapped[list[Any]] = mapped_column(default=list)
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))


class Site(Base):
    """A home (one gateway) with its address."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64))
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), index=True)
    address: Mapped[str] = mapped_column(String(500))


class Device(Base):
    """A device of a home."""

    __tablename__ = "devices"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    room: Mapped[str | None] = mapped_column(String(64))


class Resident(Base):
    """An elder; ``id_number`` and ``phone`` are personal data (masked in lists, reads audited)."""

    __tablename__ = "residents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    id_number: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    categories: Mapped[list[Any]] = mapped_column(default=list)
    ability_level: Mapped[int | None] = mapped_column(Integer)
    emergency_contacts: Mapped[list[Any]] = mapped_column(default=list)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)


class Visit(Base):
    """A worker's visit to a resident (monthly visit pages)."""

    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    worker_id: Mapped[str] = mapped_column(ForeignKey("workers.id"), index=True)
    time_ms: Mapped[int] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


# ---------------------------------------------------------------- alerts and their record


class AlertRow(Base):
    """One alert, from raise to resolution: dedup key, lifecycle, response clocks and persisted timers."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    community_id: Mapped[str | None] = mapped_column(String(64), index=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    device: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(64), default="")
    severity: Mapped[str] = mapped_column(String(16))
    life_safety: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), index=True)
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    """``site|type|subject`` while the alert is active, NULL once final: the race-free dedup key."""
    raised_ms: Mapped[int] = mapped_column(index=True)
    created_ms: Mapped[int]
    last_seen_ms: Mapped[int]
    count: Mapped[int] = mapped_column(Integer, default=1)
    explanation: Mapped[str] = mapped_column(Text)
    explanation_zh: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cleared_ms: Mapped[int | None]
    owner_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    ack_ms: Mapped[int | None]
    en_route_ms: Mapped[int | None]
    on_site_ms: Mapped[int | None]
    resolved_ms: Mapped[int | None]
    time_to_ack_ms: Mapped[int | None]
    time_to_on_site_ms: Mapped[int | None]
    time_to_resolve_ms: Mapped[int | None]
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    remind_due_ms: Mapped[int | None]
    escalate_due_ms: Mapped[int | None]
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    on_site_due_ms: Mapped[int | None]
    next_due_ms: Mapped[int | None] = mapped_column(index=True)
    """min of the three due times: what ``tick`` scans."""
    notified: Mapped[list[Any]] = mapped_column(default=list)
    """Worker ids notified so far (reminders go to all of them)."""
    last_notified_ms: Mapped[int | None]


class AlertEvent(Base):
    """One transition of an alert: who, when, from which channel."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    time_ms: Mapped[int]
    actor: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class NotificationRow(Base):
    """One delivery attempt record to one worker channel (or a queued one waiting for its batch/digest)."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    worker_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_ms: Mapped[int]
    due_ms: Mapped[int | None] = mapped_column(index=True)
    sent_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(64))
    """Who is delivering a row in ``sending`` (the backend's stable id): its restart sends what it left in flight."""


class LinkUse(Base):
    """A consumed one-tap link (nonce) and what it did: makes links single-use and idempotent."""

    __tablename__ = "link_uses"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    worker_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    used_ms: Mapped[int]
    applied: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    """Append-only audit log (UPDATE and DELETE are refused by triggers)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    time_ms: Mapped[int] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


Index("ix_audit_log_entity", AuditRow.entity, AuditRow.entity_id)
Index("ix_notifications_queue", NotificationRow.status, NotificationRow.due_ms)
