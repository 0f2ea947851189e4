"""Append-only audit log: the record types and the action names used everywhere.

The store writes audit entries in the same transaction as the change they describe, and the database
refuses UPDATE and DELETE on ``audit_log`` (triggers created by the migration), so the record is
complete and cannot be edited after the fact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

import msgspec


class Entity(StrEnum):
    """What an audit entry is about."""

    ALERT = "alert"
    RESIDENT = "resident"
    DEVICE = "device"
    WORKER = "worker"
    SITE = "site"
    REGISTRY = "registry"
    NOTIFICATION = "notification"
    VISIT = "visit"


class AuditAction(StrEnum):
    """Every audited action."""

    ALERT_RAISED = "alert.raised"
    ALERT_REPEATED = "alert.repeated"
    ALERT_TRANSITION = "alert.transition"
    ALERT_ASSIGNED = "alert.assigned"
    ALERT_CLEARED = "alert.cleared"
    ALERT_NOTIFIED = "alert.notified"
    ALERT_REMINDED = "alert.reminded"
    ALERT_ESCALATED = "alert.escalated"
    ALERT_OVERDUE = "alert.on_site_overdue"
    ALERT_ARC_ESCALATED = "alert.arc_escalated"
    """The ARC did not take a life-safety alert: its workers were told and the next escalation step taken."""
    ALERT_READ = "alert.read"
    LINK_USED = "link.used"
    LINK_REJECTED = "link.rejected"
    COMMAND_SENT = "command.sent"
    COMMAND_FAILED = "command.failed"
    RESIDENT_READ = "resident.read"
    RESIDENT_UPDATED = "resident.updated"
    DEVICE_UPDATED = "device.updated"
    WORKER_UPDATED = "worker.updated"
    WORKER_CREATED = "worker.created"
    WORKER_ACTIVATED = "worker.activated"
    WORKER_DEACTIVATED = "worker.deactivated"
    WORKER_PASSWORD_SET = "worker.password_set"
    REGISTRY_IMPORTED = "registry.imported"
    VISIT_RECORDED = "visit.recorded"
    DIGEST_SENT = "digest.sent"


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the audit log."""

    id: int
    time_ms: int
    actor: str
    channel: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, object] = msgspec.field(default_factory=dict)


class AuditReader(Protocol):
    """Read side of the audit log (the store implements it)."""

    def audit_entries(
        self, *, entity: Entity | None = None, entity_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries in time order, optionally for one entity."""
        ...
