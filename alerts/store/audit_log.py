"""The append-only audit log of the alert store: the entry every write adds, and the log's reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, AuditEntry, Entity
from alerts.store.session import StoreBase, record_of
from alerts.store.tables import AuditRow


@dataclass(frozen=True, slots=True)
class By:
    """Who writes, through which channel, and when: what every audit entry and alert event records."""

    actor: str
    channel: str
    now_ms: int


def add_audit(
    session: Session,
    by: By,
    action: AuditAction | str,
    entity: Entity | str,
    entity_id: str | int,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add one audit entry to the write in ``session`` (the entry commits or rolls back with it)."""
    # Truncated to the column widths: the web layer audits free-form names (logins, exports) too.
    session.add(
        AuditRow(
            time_ms=by.now_ms,
            actor=by.actor[:64],
            channel=str(by.channel)[:16],
            action=str(action)[:64],
            entity=str(entity)[:32],
            entity_id=str(entity_id)[:64],
            detail=dict(detail or {}),
        )
    )


class AuditLog(StoreBase):
    """Audit entries on their own (``audit``; writes of other aggregates call :func:`add_audit`) and the log."""

    def audit(
        self,
        *,
        now_ms: int,
        actor: str,
        channel: str,
        action: AuditAction | str,
        entity: Entity | str,
        entity_id: str | int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one audit entry (``action``/``entity``: the enums, or a caller's own name such as ``login``)."""
        with self._tx() as s:
            add_audit(s, By(actor, channel, now_ms), action, entity, entity_id, detail)

    def audit_entries(
        self, *, entity: Entity | None = None, entity_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit entries in time order, optionally for one entity."""
        stmt = select(AuditRow).order_by(AuditRow.time_ms, AuditRow.id).limit(limit)
        if entity is not None:
            stmt = stmt.where(AuditRow.entity == entity.value)
        if entity_id is not None:
            stmt = stmt.where(AuditRow.entity_id == entity_id)
        with self._read() as s:
            return [record_of(AuditEntry, r, detail=dict(r.detail or {})) for r in s.scalars(stmt)]

    def last_audit(self, *, entity: str, action: str) -> AuditEntry | None:
        """The newest entry of ``action`` on ``entity`` (read through the entity index: for rare entities)."""
        stmt = (
            select(AuditRow)
            .where(AuditRow.entity == entity, AuditRow.action == action)
            .order_by(AuditRow.time_ms.desc(), AuditRow.id.desc())
            .limit(1)
        )
        with self._read() as s:
            row = s.scalars(stmt).first()
            return None if row is None else record_of(AuditEntry, row, detail=dict(row.detail or {}))
