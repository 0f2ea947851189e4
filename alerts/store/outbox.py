"""The notification outbox of the alert store: rows written before they are sent, claimed and finished by the sender.

A message is a row before it is a delivery: the service writes it ``sending`` (with who sends it, and until when:
``due_ms`` is the lease), sends it, then finishes it (``sent``, ``retry``, ``failed``). A process killed in between
leaves the row ``sending``: its restart puts its own rows back at once (:meth:`Outbox.release_sender`), anyone else
takes them when the lease is over. A message is therefore sent at least once; one in flight at a kill may be sent
twice (docs/alerts.md, "Notifications survive a kill").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Final

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, Entity
from alerts.escalation import Timers
from alerts.lifecycle import Channel, State
from alerts.privacy import mask_contact
from alerts.store.alerts import add_event, advance_timers_in
from alerts.store.audit_log import AuditLog, By, add_audit
from alerts.store.errors import RecordNotFound
from alerts.store.records import NotificationDraft, NotificationRecord, SendOutcome
from alerts.store.session import SYSTEM, record_of
from alerts.store.tables import NotificationRow

SENDING: Final = "sending"
"""Status of a row whose delivery is under way (or was, when its sender died): leased until its ``due_ms``."""
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
        sender: str | None = None,
    ) -> list[int]:
        """Write notification rows, who has been told, and the audit entries of finished rows, in one transaction.

        Rows ``sending`` are messages about to go out (their lease in ``due_ms``, ``sender`` theirs): they are
        audited when :meth:`finish_sends` records their result.
        """
        with self._tx() as s:
            return self._queue(s, alert_id, drafts, now_ms=now_ms, audit_action=audit_action, sender=sender,
                               notified=notified)  # fmt: skip

    def advance_and_queue(
        self,
        alert_id: int,
        *,
        expect_next_due_ms: int,
        timers: Timers,
        groups: Sequence[tuple[Sequence[NotificationDraft], AuditAction]],
        now_ms: int,
        sender: str | None = None,
    ) -> list[int] | None:
        """Move the alert's timers (compare-and-set) and write the messages they owe, in one transaction.

        Returns the rows' ids in the order of ``groups``, or None (nothing written) if another ticker won. A kill
        after the commit leaves the messages in the outbox, never a timer moved on with its messages lost.
        """
        with self._tx() as s:
            if not advance_timers_in(s, alert_id, expect_next_due_ms=expect_next_due_ms, timers=timers):
                return None
            ids: list[int] = []
            for drafts, audit_action in groups:
                ids += self._queue(s, alert_id, drafts, now_ms=now_ms, audit_action=audit_action, sender=sender,
                                   notified=[d.worker_id for d in drafts])  # fmt: skip
            return ids

    def _queue(
        self,
        s: Session,
        alert_id: int,
        drafts: Sequence[NotificationDraft],
        *,
        now_ms: int,
        audit_action: AuditAction | None,
        notified: Sequence[str],
        sender: str | None,
    ) -> list[int]:
        rows = [
            NotificationRow(**msgspec.structs.asdict(d), alert_id=alert_id, created_ms=now_ms, sender=sender)
            for d in drafts
        ]
        s.add_all(rows)
        if audit_action is not None:
            by = By(SYSTEM, Channel.SYSTEM, now_ms)
            for d in drafts:
                if d.status != SENDING:
                    detail = {"worker": d.worker_id, "kind": d.kind, "channel": d.channel, "status": d.status}
                    add_audit(s, by, audit_action, Entity.ALERT, alert_id, detail)
        if notified:
            row = self._locked_alert(s, alert_id)
            known = list(row.notified or [])
            row.notified = known + [w for w in dict.fromkeys(notified) if w not in known]
            row.last_notified_ms = now_ms
        s.flush()
        return [r.id for r in rows]

    def finish_sends(self, outcomes: Sequence[SendOutcome], *, now_ms: int) -> None:
        """Record the results of sending outbox rows, each with its audit entry, in one transaction."""
        if not outcomes:
            return
        with self._tx() as s:
            by = By(SYSTEM, Channel.SYSTEM, now_ms)
            for o in outcomes:
                row = _record_attempt(s, o.id, status=o.status, now_ms=now_ms, error=o.error, due_ms=o.due_ms)
                row.channel, row.target = o.channel, o.target
                if o.audit is not None:
                    detail = {"worker": row.worker_id, "kind": row.kind, "channel": row.channel, "status": o.status}
                    add_audit(s, by, o.audit, Entity.ALERT, row.alert_id, detail)

    def release_sender(self, sender: str, *, due_ms: int) -> int:
        """Put the rows ``sender`` left in ``sending`` back (retry at ``due_ms``, no attempt counted); how many.

        For a restarted process with the same stable id: what its killed predecessor was sending is sent again
        now, not when the lease runs out.
        """
        with self._tx() as s:
            result = s.execute(
                update(NotificationRow)
                .where(NotificationRow.status == SENDING, NotificationRow.sender == sender)
                .values(status="retry", due_ms=due_ms)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def release_gone_senders(self, prefix: str, live: Collection[str], *, due_ms: int) -> int:
        """Put back the rows left ``sending`` by senders named ``prefix…`` that are not in ``live``; how many.

        For processes whose id changes with every start (partition workers, ``worker:{host}-{pid}``): a live one
        knows which of its peers are alive (their heartbeats), so what a dead one was sending goes out again now,
        not when its lease runs out. A sender wrongly taken for dead (its heartbeat late) may send a message twice.
        """
        if not prefix:
            raise ValueError("a sender prefix is required: other processes' rows are never released by this")
        with self._tx() as s:
            result = s.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.status == SENDING,
                    NotificationRow.sender.startswith(prefix, autoescape=True),
                    NotificationRow.sender.not_in(list(live)),
                )
                .values(status="retry", due_ms=due_ms)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def claim_notifications(
        self,
        now_ms: int,
        *,
        limit: int = 500,
        arc: bool = False,
        lease_ms: int = 60_000,
        sender: str | None = None,
    ) -> list[NotificationRecord]:
        """Take queued/retry notifications that are due (status → sending); concurrent tickers split them.

        ``arc=False`` takes the workers' notifications, ``arc=True`` only the ARC rows (:data:`ARC_CHANNEL`). A row
        taken is leased for ``lease_ms`` (its ``due_ms``) to ``sender``: one left in ``sending`` by a killed process
        is taken again once the lease is over, so every message is sent at least once.
        """
        on_channel = NotificationRow.channel == ARC_CHANNEL if arc else NotificationRow.channel != ARC_CHANNEL
        takeable = NotificationRow.status.in_(("queued", "retry", SENDING))
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
                    .values(status=SENDING, due_ms=now_ms + lease_ms, sender=sender)
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
                detail = {"kind": row.kind, "target": mask_contact(row.target or ""), "attempts": row.attempts,
                          "error": mask_contact(error or "")}  # fmt: skip
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
