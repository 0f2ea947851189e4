"""The append-only audit log of the alert store: the entry every write adds, and the log's reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, AuditEntry, Entity
from alerts.store.session import StoreBase
from alerts.store.tables import AuditRow


class AuditLog(StoreBase):
    """Audit entries: appended inside other writes (``_audit``) or on their own (``audit``)."""

    @staticmethod
    def _audit(
        session: Session,
        *,
        now_ms: int,
        actor: str,
        channel: str,
        action: AuditAction | str,
        entity: Entity | str,
        entity_id: str | int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        # Truncated to the column widths: the web layer audits free-form names (logins, exports) too.
        session.add(
            AuditRow(
                time_ms=now_ms,
                actor=actor[:64],
                channel=str(channel)[:16],
                action=str(action)[:64],
                entity=str(entity)[:32],
                entity_id=str(entity_id)[:64],
                detail=dict(detail or {}),
            )
        )

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
            self._audit(
                s, now_ms=now_ms, actor=actor, channel=channel, action=action, entity=entity, entity_id=entity_id,
                detail=detail,
            )  # fmt: skip

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
            return [
                AuditEntry(
                    id=r.id,
                    time_ms=r.time_ms,
                    actor=r.actor,
                    channel=r.channel,
                    action=r.action,
                    entity=r.entity,
                    entity_id=r.entity_id,
                    detail=dict(r.detail or {}),
                )  # fmt: skip
                for r in s.scalars(stmt)
            ]
