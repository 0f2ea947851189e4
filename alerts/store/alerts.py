"""Alerts in the alert store: raise (race-free upsert on the dedup key), clear, transitions, assignment, timers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.audit import AuditAction, Entity
from alerts.escalation import DEVICE_TYPES, Timers
from alerts.lifecycle import ACTIVE_STATES, Action, Channel, Outcome, State, next_state, reached
from alerts.store.audit_log import AuditLog, By, add_audit
from alerts.store.errors import AlertNotFound, InvalidTransition, RecordNotFound, WorkerInactive
from alerts.store.records import AlertRecord, AssignResult, EventRecord, RaiseResult, SiteContext, TransitionResult
from alerts.store.session import SYSTEM, record_of
from alerts.store.tables import AlertEvent, AlertRow, LinkUse, Worker
from alerts.store.workers import Workers
from detection.models import Alert, AlertType

_ACTIVE: Final = tuple(s.value for s in ACTIVE_STATES)


def _min_due(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def open_key(site: str, alert_type: str, subject: str) -> str:
    """The dedup key of an active alert: one per home and type (per device for device-health types)."""
    return f"{site}|{alert_type}|{subject}"


def subject_of(alert: Alert) -> str:
    """Device-health alerts are per device; everything else is per home (resident)."""
    return (alert.device or "") if alert.type in DEVICE_TYPES else ""


def _alert_record(row: AlertRow) -> AlertRecord:
    # JSON columns: None becomes empty, and the record gets copies, not the row's own objects.
    return record_of(
        AlertRecord,
        row,
        notified=list(row.notified or []),
        evidence=dict(row.evidence or {}),
        policy=dict(row.policy or {}),
    )


_JSON_FIELDS: Final = frozenset({"notified", "evidence", "policy"})


def _alert_record_of(values: Mapping[Any, Any]) -> AlertRecord:
    """:func:`_alert_record` from a returned row's mapping (column name → value)."""
    plain = {name: values[name] for name in AlertRecord.__struct_fields__ if name not in _JSON_FIELDS}
    return AlertRecord(
        **plain,
        notified=list(values["notified"] or []),
        evidence=dict(values["evidence"] or {}),
        policy=dict(values["policy"] or {}),
    )


def add_event(
    session: Session,
    alert_id: int,
    by: By,
    action: Action | str,
    from_state: State | None,
    to_state: State,
    *,
    outcome: Outcome | None = None,
    note: str | None = None,
) -> None:
    """Add one step to the alert's history (``AlertEvent``) in the write in ``session``."""
    session.add(
        AlertEvent(
            alert_id=alert_id, time_ms=by.now_ms, actor=by.actor, channel=str(by.channel), action=str(action),
            from_state=from_state.value if from_state else None, to_state=to_state.value,
            outcome=outcome.value if outcome else None, note=note,
        )
    )  # fmt: skip


class Alerts(AuditLog):
    """The alert aggregate: its row, its events and its escalation timers."""

    _raise_stmt: Any = None

    def _raise_statement(self) -> Any:
        """The raise upsert, built once per store: a burst of alerts pays for executing it, not for building it.

        It returns the whole row, so the record needs no second query.
        """
        if self._raise_stmt is None:
            table = AlertRow.__table__
            stmt = self._insert(table)
            excluded = stmt.excluded
            self._raise_stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.open_key],
                set_={
                    "count": table.c.count + excluded.count,
                    "last_seen_ms": case(
                        (excluded.last_seen_ms > table.c.last_seen_ms, excluded.last_seen_ms),
                        else_=table.c.last_seen_ms,
                    ),
                    "explanation": excluded.explanation,
                    "explanation_zh": excluded.explanation_zh,
                    "evidence": excluded.evidence,
                },
            ).returning(*table.c)
        return self._raise_stmt

    def raise_alert(
        self,
        alert: Alert,
        *,
        now_ms: int,
        context: SiteContext | None,
        policy: Mapping[str, Any],
        timers: Timers,
        nowait: bool = False,
        repeats: int = 1,
        last_seen_ms: int | None = None,
    ) -> RaiseResult:
        """Store a raised alert, or count a repeat of the active one (race-free upsert on the dedup key).

        ``repeats`` raises of the same alert are counted at once (:class:`alerts.raising.Raiser` merges the repeats
        that arrive while the one before is being stored), ``alert.time_ms`` the first one's time and
        ``last_seen_ms`` the newest one's. ``nowait`` (SQLite): raise :class:`~alerts.store.errors.WriteBusy`
        instead of waiting for the write lock.
        """
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        subject = subject_of(alert)
        values: dict[str, Any] = {
            "site": alert.site,
            "community_id": context.community_id if context else None,
            "resident_id": context.resident_id if context else None,
            "device": alert.device,
            "type": alert.type.value,
            "subject": subject,
            "severity": alert.severity.value,
            "life_safety": alert.is_life_safety,
            "state": State.OPEN.value,
            "open_key": open_key(alert.site, alert.type.value, subject),
            "raised_ms": alert.time_ms,
            "created_ms": now_ms,
            "last_seen_ms": max(alert.time_ms, last_seen_ms if last_seen_ms is not None else alert.time_ms),
            "count": repeats,
            "explanation": alert.explanation,
            "explanation_zh": alert.explanation_zh,
            "evidence": dict(alert.evidence),
            "policy": dict(policy),
            "remind_due_ms": timers.remind_due_ms,
            "escalate_due_ms": timers.escalate_due_ms,
            "escalation_step": timers.escalation_step,
            "on_site_due_ms": timers.on_site_due_ms,
            "next_due_ms": _min_due(timers.remind_due_ms, timers.escalate_due_ms, timers.on_site_due_ms),
            "notified": [],
        }
        with self._tx(urgent=alert.is_life_safety, nowait=nowait) as s:
            row = s.execute(self._raise_statement(), values).one()._mapping
            alert_id, count = int(row["id"]), int(row["count"])
            created = count == repeats  # a repeat adds to a count of at least 1
            by = By(SYSTEM, Channel.DEVICE, now_ms)
            if created:
                add_event(s, alert_id, by, "raise", None, State.OPEN)
                new: dict[str, Any] = {"site": alert.site, "type": alert.type.value, "severity": alert.severity.value}
                if repeats > 1:
                    new["repeats"] = repeats
                add_audit(s, by, AuditAction.ALERT_RAISED, Entity.ALERT, alert_id, new)
            elif alert.is_life_safety:
                repeated: dict[str, Any] = {"count": count} if repeats == 1 else {"count": count, "repeats": repeats}
                add_audit(s, by, AuditAction.ALERT_REPEATED, Entity.ALERT, alert_id, repeated)
            return RaiseResult(record=_alert_record_of(row), created=created)

    def clear_alert(self, alert: Alert, *, now_ms: int) -> AlertRecord | None:
        """The condition ended by itself: clear the active alert (life-safety: only mark ``cleared_ms``)."""
        key = open_key(alert.site, alert.type.value, subject_of(alert))
        with self._tx() as s:
            row = s.scalars(select(AlertRow).where(AlertRow.open_key == key).with_for_update()).first()
            if row is None:
                return None
            state = State(row.state)
            new = next_state(state, Action.CLEAR, life_safety=row.life_safety, alert_id=row.id)
            if row.cleared_ms is None:
                row.cleared_ms = now_ms
            if new is State.CLEARED:
                row.state = new.value
                row.open_key = None
                self._stop_timers(row, remind=True, on_site=True)
            by = By(SYSTEM, Channel.DEVICE, now_ms)
            add_event(s, row.id, by, Action.CLEAR, state, new)
            add_audit(s, by, AuditAction.ALERT_CLEARED, Entity.ALERT, row.id, {"state": new.value})
            return _alert_record(row)

    @staticmethod
    def _stop_timers(row: AlertRow, *, remind: bool, on_site: bool) -> None:
        if remind:
            row.remind_due_ms = None
            row.escalate_due_ms = None
        if on_site:
            row.on_site_due_ms = None
        row.next_due_ms = _min_due(row.remind_due_ms, row.escalate_due_ms, row.on_site_due_ms)

    def get_alert(self, alert_id: int) -> AlertRecord:
        """One alert; raise :class:`AlertNotFound`."""
        with self._read() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise AlertNotFound(alert_id)
            return _alert_record(row)

    def list_alerts(
        self,
        *,
        active_only: bool = False,
        site: str | None = None,
        alert_type: AlertType | None = None,
        limit: int = 200,
    ) -> list[AlertRecord]:
        """Alerts, newest first."""
        stmt = select(AlertRow).order_by(AlertRow.raised_ms.desc(), AlertRow.id.desc()).limit(limit)
        if active_only:
            stmt = stmt.where(AlertRow.state.in_(_ACTIVE))
        if site is not None:
            stmt = stmt.where(AlertRow.site == site)
        if alert_type is not None:
            stmt = stmt.where(AlertRow.type == alert_type.value)
        with self._read() as s:
            return [_alert_record(r) for r in s.scalars(stmt)]

    def events(self, alert_id: int) -> list[EventRecord]:
        """The alert's transitions in order."""
        with self._read() as s:
            rows = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id))
            return [record_of(EventRecord, e) for e in rows]

    def transition(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        now_ms: int,
        outcome: Outcome | None = None,
        note: str | None = None,
        link_nonce: str | None = None,
    ) -> TransitionResult:
        """Apply a lifecycle action; raise :class:`InvalidTransition` if refused.

        With ``link_nonce`` (a one-tap link) the call is idempotent: a used link or a step already done
        returns ``applied=False`` with the reason instead of raising.
        """
        by = By(actor, channel, now_ms)
        try:
            return self._transition_once(alert_id, action, by, outcome, note, link_nonce)
        except IntegrityError:
            if link_nonce is None:
                raise
            # The same link was used concurrently: the other use won; answer with its result.
            return self._transition_once(alert_id, action, by, outcome, note, link_nonce)

    def _transition_once(
        self, alert_id: int, action: Action, by: By, outcome: Outcome | None, note: str | None, link_nonce: str | None
    ) -> TransitionResult:
        actor, now_ms = by.actor, by.now_ms
        with self._tx() as s:
            row = self._locked_alert(s, alert_id)
            state = State(row.state)
            if link_nonce is not None:
                used = s.get(LinkUse, link_nonce)
                if used is not None:
                    return TransitionResult(
                        record=_alert_record(row), from_state=state.value, applied=False,
                        reason=f"link already used at {used.used_ms}",
                    )  # fmt: skip
                if reached(state, action):
                    reason = f"already {state.value}" + (f" by {row.owner_id}" if row.owner_id else "")
                    s.add(
                        LinkUse(nonce=link_nonce, alert_id=alert_id, worker_id=actor, action=action.value,
                                used_ms=now_ms, applied=False, state=state.value, detail=reason)
                    )  # fmt: skip
                    return TransitionResult(record=_alert_record(row), from_state=state.value, applied=False,
                                            reason=reason)  # fmt: skip
            new = next_state(
                state, action, life_safety=row.life_safety, outcome=outcome, alert_id=alert_id, alert_type=row.type
            )
            self._apply(row, action, new, actor=actor, now_ms=now_ms, outcome=outcome, note=note)
            add_event(s, alert_id, by, action, state, new, outcome=outcome, note=note)
            detail: dict[str, Any] = {"from": state.value, "to": new.value, "action": action.value}
            if outcome is not None:
                detail["outcome"] = outcome.value
            if link_nonce is not None:
                detail["link"] = link_nonce
                s.add(
                    LinkUse(nonce=link_nonce, alert_id=alert_id, worker_id=actor, action=action.value, used_ms=now_ms,
                            applied=True, state=new.value, detail=None)
                )  # fmt: skip
            add_audit(s, by, AuditAction.ALERT_TRANSITION, Entity.ALERT, alert_id, detail)
            s.flush()
            return TransitionResult(record=_alert_record(row), from_state=state.value, applied=True)

    def assign(self, alert_id: int, worker_id: str, *, actor: str, channel: Channel, now_ms: int) -> AssignResult:
        """Make an active worker the alert's owner; records an ``assign`` event and an audit entry.

        Refused with :class:`InvalidTransition` when the alert is resolved or cleared, :class:`AlertNotFound`,
        :class:`RecordNotFound` (unknown worker) or :class:`WorkerInactive`. The state does not change: the
        assignee still acknowledges, goes and resolves through the usual actions.
        """
        with self._tx() as s:
            row = self._locked_alert(s, alert_id)
            state = State(row.state)
            if state not in ACTIVE_STATES:
                raise InvalidTransition(
                    alert_id=alert_id, state=state, action=Action.ASSIGN, reason=f"alert is {state} (final)"
                )
            worker = s.get(Worker, worker_id)
            if worker is None:
                raise RecordNotFound("worker", worker_id)
            if not worker.active:
                raise WorkerInactive(worker_id)
            previous = row.owner_id
            row.owner_id = worker_id
            by = By(actor, channel, now_ms)
            add_event(s, alert_id, by, Action.ASSIGN, state, state, note=worker_id)
            detail = {"worker": worker_id, "previous": previous}
            add_audit(s, by, AuditAction.ALERT_ASSIGNED, Entity.ALERT, alert_id, detail)
            s.flush()
            return AssignResult(record=_alert_record(row), previous_owner=previous, worker=Workers._contact(worker))

    @staticmethod
    def _apply(
        row: AlertRow, action: Action, new: State, *, actor: str, now_ms: int, outcome: Outcome | None, note: str | None
    ) -> None:
        if note:
            row.note = f"{row.note}\n{note}" if row.note else note
        if action is Action.NOTE:
            return
        if row.ack_ms is None:
            # Any forward step means someone has taken the alert: it counts as acknowledged.
            row.ack_ms = now_ms
            row.time_to_ack_ms = now_ms - row.raised_ms
            if actor != SYSTEM and row.owner_id is None:
                row.owner_id = actor
        if action is Action.EN_ROUTE:
            row.en_route_ms = now_ms
        if action is Action.ON_SITE:
            row.on_site_ms = now_ms
            row.time_to_on_site_ms = now_ms - row.raised_ms
        row.state = new.value
        if new is State.RESOLVED:
            row.resolved_ms = now_ms
            row.time_to_resolve_ms = now_ms - row.raised_ms
            row.outcome = outcome.value if outcome else None
            row.open_key = None
        Alerts._stop_timers(row, remind=True, on_site=new in (State.ON_SITE, State.RESOLVED))

    # ------------------------------------------------------------------ escalation timers

    def due_alerts(self, now_ms: int, *, limit: int = 200) -> list[AlertRecord]:
        """Active alerts with a timer due at or before ``now_ms``, most overdue first."""
        stmt = (
            select(AlertRow)
            .where(AlertRow.next_due_ms <= now_ms, AlertRow.state.in_(_ACTIVE))
            .order_by(AlertRow.next_due_ms)
            .limit(limit)
        )
        with self._read() as s:
            return [_alert_record(r) for r in s.scalars(stmt)]

    def advance_timers(self, alert_id: int, *, expect_next_due_ms: int, timers: Timers) -> bool:
        """Compare-and-set the timers: only the caller that still sees ``expect_next_due_ms`` wins (no double send)."""
        with self._tx() as s:
            return advance_timers_in(s, alert_id, expect_next_due_ms=expect_next_due_ms, timers=timers)

    def unnotified_alerts(self, *, created_before_ms: int, limit: int = 500) -> list[AlertRecord]:
        """Active alerts created before ``created_before_ms`` that nobody has been told about yet, oldest first.

        A process killed between storing an alert and queueing its first messages leaves exactly these (the
        restarted backend notifies them, :meth:`alerts.service.AlertService.resume`); so does an alert whose
        roles have nobody, which is then tried again.
        """
        stmt = (
            select(AlertRow)
            .where(
                AlertRow.state.in_(_ACTIVE),
                AlertRow.last_notified_ms.is_(None),
                AlertRow.created_ms < created_before_ms,
            )
            .order_by(AlertRow.id)
            .limit(limit)
        )
        with self._read() as s:
            return [_alert_record(r) for r in s.scalars(stmt)]


def advance_timers_in(session: Session, alert_id: int, *, expect_next_due_ms: int, timers: Timers) -> bool:
    """The compare-and-set of :meth:`Alerts.advance_timers` inside the caller's transaction; True if it won."""
    next_due = _min_due(timers.remind_due_ms, timers.escalate_due_ms, timers.on_site_due_ms)
    stmt = (
        update(AlertRow)
        .where(
            AlertRow.id == alert_id,
            AlertRow.next_due_ms == expect_next_due_ms,
            AlertRow.state.in_(_ACTIVE),
        )
        .values(
            remind_due_ms=timers.remind_due_ms,
            escalate_due_ms=timers.escalate_due_ms,
            escalation_step=timers.escalation_step,
            on_site_due_ms=timers.on_site_due_ms,
            next_due_ms=next_due,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]
