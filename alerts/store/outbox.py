"""The notification outbox of the alert store: rows written with the alert, claimed and finished by the sender."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, Entity
from alerts.lifecycle import Channel, State
from alerts.store.alerts import add_event
from alerts.store.audit_log import AuditLog, By, add_audit
from alerts.store.errors import RecordNotFound
from alerts.store.records import NotificationDraft, NotificationRecord
from alerts.store.session import SYSTEM, record_of
from alerts.store.tables import NotificationRow

ARC_CHANNEL: Final = "arc"
"""``notifications.channel`` of the alarm-receiving-centre rows (alerts/arc/); the worker sender never claims them."""


class Outbox(AuditLog):
    """Notification rows: queued with an alert's change, claimed by a ticker, finished with the result."""

    def mark_notified(self, alert_id: int, worker_ids: Iterable[str], *, now_ms: int) -> None:
        """Remember who has been told (reminders go to everyone told so far)."""
        self.record_notifications(alert_id, [], now_ms=now_ms, notified=list(worker_ids))

    def record_notifications(
        self,
        alert_id: int,
        drafts: Sequence[NotificationDraft],
        *,
        now_ms: int,
        audit_action: AuditAction | None = None,
        notified: Sequence[str] = (),
    ) -> list[int]:
        """Write notification rows, their audit entries and who has been told, in one transaction."""
        with self._tx() as s:
            rows = [NotificationRow(**msgspec.structs.asdict(d), alert_id=alert_id, created_ms=now_ms) for d in drafts]
            s.add_all(rows)
            if audit_action is not None:
                by = By(SYSTEM, Channel.SYSTEM, now_ms)
                for d in drafts:
                    detail = {"worker": d.worker_id, "kind": d.kind, "channel": d.channel, "status": d.status}
                    add_audit(s, by, audit_action, Entity.ALERT, alert_id, detail)
            if notified:
                row = self._locked_alert(s, alert_id)
                known = list(row.notified or [])
                row.notified = known + [w for w in dict.fromkeys(notified) if w not in known]
                row.last_notified_ms = now_ms
            s.flush()
            return [r.id for r in rows]

    def claim_notifications(
        self, now_ms: int, *, limit: int = 500, arc: bool = False, lease_ms: int = 60_000
    ) -> list[NotificationRecord]:
        """Take queued/retry notifications that are due (status → sending); concurrent tickers split them.

        ``arc=False`` takes the workers' notifications, ``arc=True`` only the ARC rows (:data:`ARC_CHANNEL`). An ARC
        row is leased for ``lease_ms`` (its ``due_ms``): one left in ``sending`` by a killed backend is taken again
        once the lease is over, so a life-safety event reaches the ARC at least once.
        """
        on_channel = NotificationRow.channel == ARC_CHANNEL if arc else NotificationRow.channel != ARC_CHANNEL
        statuses = ("queued", "retry", "sending") if arc else ("queued", "retry")
        takeable = NotificationRow.status.in_(statuses)
        with self._tx() as s:
            ids = list(
                s.scalars(
                    select(NotificationRow.id)
                    .where(takeable, on_channel, NotificationRow.due_ms <= now_ms)
                    .order_by(NotificationRow.due_ms, NotificationRow.id)
                    .limit(limit)
                )
            )
            if not ids:
                return []
            claimed = set(
                s.scalars(
                    update(NotificationRow)
                    .where(NotificationRow.id.in_(ids), takeable, NotificationRow.due_ms <= now_ms)
                    .values(status="sending", due_ms=now_ms + lease_ms if arc else NotificationRow.due_ms)
                    .returning(NotificationRow.id)
                    .execution_options(synchronize_session=False)
                )
            )
            rows = s.scalars(
                select(NotificationRow).where(NotificationRow.id.in_(claimed)).order_by(NotificationRow.id)
            )
            return [record_of(NotificationRecord, r) for r in rows]

    def finish_notification(
        self,
        notification_id: int,
        *,
        status: str,
        now_ms: int,
        error: str | None = None,
        due_ms: int | None = None,
        channel: str | None = None,
        target: str | None = None,
    ) -> None:
        """Record the result of a (re)send: sent, failed, or retry at ``due_ms``."""
        with self._tx() as s:
            row = _record_attempt(s, notification_id, status=status, now_ms=now_ms, error=error, due_ms=due_ms)
            if channel is not None:
                row.channel = channel
            if target is not None:
                row.target = target

    def release_notifications(self, ids: Sequence[int], *, due_ms: int) -> None:
        """Put claimed rows back (status retry, due at ``due_ms``) without counting an attempt."""
        if not ids:
            return
        with self._tx() as s:
            s.execute(
                update(NotificationRow)
                .where(NotificationRow.id.in_(list(ids)), NotificationRow.status == "sending")
                .values(status="retry", due_ms=due_ms)
                .execution_options(synchronize_session=False)
            )

    def finish_arc(
        self,
        notification_id: int,
        *,
        status: str,
        now_ms: int,
        error: str | None = None,
        due_ms: int | None = None,
        event: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record an ARC attempt; ``event`` (``arc_delivered`` / ``arc_failed``) also goes into the alert's history.

        The history step keeps the alert's state (like ``assign``) and is audited, in the same transaction.
        """
        with self._tx() as s:
            row = _record_attempt(s, notification_id, status=status, now_ms=now_ms, error=error, due_ms=due_ms)
            if event is not None:
                alert = self._locked_alert(s, row.alert_id)
                by = By(SYSTEM, Channel.SYSTEM, now_ms)
                state = State(alert.state)
                add_event(s, alert.id, by, event, state, state, note=note)
                detail = {"kind": row.kind, "target": row.target, "attempts": row.attempts, "error": error or ""}
                add_audit(s, by, f"alert.{event}", Entity.ALERT, alert.id, detail)

    def notifications(self, *, alert_id: int | None = None, worker_id: str | None = None) -> list[NotificationRecord]:
        """Notification records in order."""
        stmt = select(NotificationRow).order_by(NotificationRow.id)
        if alert_id is not None:
            stmt = stmt.where(NotificationRow.alert_id == alert_id)
        if worker_id is not None:
            stmt = stmt.where(NotificationRow.worker_id == worker_id)
        with self._read() as s:
            return [record_of(NotificationRecord, r) for r in s.scalars(stmt)]


def _record_attempt(
    s: Session, notification_id: int, *, status: str, now_ms: int, error: str | None, due_ms: int | None
) -> NotificationRow:
    """One (re)send attempt of a notification row: its status, error, next due time, attempt count, sent time."""
    row = s.get(NotificationRow, notification_id)
    if row is None:
        raise RecordNotFound("notification", str(notification_id))
    row.status, row.error, row.due_ms = status, error, due_ms
    row.attempts += 1
    if status == "sent":
        row.sent_ms = now_ms
    return row
