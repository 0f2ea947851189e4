"""The alert service: raise → notify → escalate → act (via links or the console) → feedback to the home.

Wiring (composition root)::

    store = AlertStore(url=settings.database_url)            # migrates at startup
    service = AlertService(store=store, notifier=AppriseNotifier(), policies=PolicyBook(),
                           clock=lambda: time.time_ns() // 1_000_000,
                           links=LinkSigner(secret=..., base_url=settings.public_url),
                           commands=publisher)                # gateway/downlink.py
    await service.raise_alert(alert)                          # from the detection engine
    await service.tick()                                      # every few seconds: reminders, escalation, digests

Life-safety alerts (SOS, call button, fall, smoke, critical vitals) are notified at once, never batched,
deferred to a digest, or muted by quiet hours, whatever the policy says. On SQLite their site context and insert
run on the event loop itself whenever the write lock is free (about 2 ms of CPU, no disk flush: WAL with
``synchronous=NORMAL``, and that connection leaves checkpoints to the others): a thread would first have to win
the GIL from the loop, and again after every SQLite statement, which under load cost more than the work (issue
17, docs/benchmarks.md). When the lock is held (a burst, another process) the insert, and otherwise all their
store work (recipients, notification rows), runs on the service's own small thread pool, the urgent lane, not on
the event loop's shared pool where ingest, snapshot and refit work queue; on SQLite the insert is let in before
ordinary writes waiting for the lock (alerts/store/gate.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import msgspec

from alerts.arc.channel import EVENT as ARC_EVENT
from alerts.arc.channel import ArcChannel
from alerts.audit import AuditAction, Entity
from alerts.commands import HELP_COMING_TYPES, CommandPublisher, help_coming, help_coming_topics
from alerts.escalation import (
    FALLBACK_ROLES,
    Policy,
    PolicyBook,
    Role,
    Timers,
    batch_due_ms,
    initial_timers,
    next_escalation_ms,
    plan_due,
)
from alerts.guardians import GuardianNotifier
from alerts.labels import Lang
from alerts.learning import OutcomeLabels, apply_outcome
from alerts.lifecycle import ACTIVE_STATES, Action, Channel, Outcome, State
from alerts.links import LinkAction, LinkSigner
from alerts.notify import (
    AlertView,
    Delivery,
    Message,
    NoticeKind,
    Notifier,
    describe_url,
    render_alert,
    render_digest,
)
from alerts.privacy import mask_contact
from alerts.store.errors import LinkError, WriteBusy
from alerts.store.outbox import ARC_CHANNEL, SENDING
from alerts.store.records import (
    AlertRecord,
    AssignResult,
    NotificationDraft,
    NotificationRecord,
    RaiseResult,
    SendOutcome,
    SiteContext,
    TransitionResult,
    WorkerContact,
)
from alerts.store.repository import SYSTEM, AlertStore
from alerts.wording import plain_explanation
from detection.models import Alert, AlertType, Severity

_LOG = logging.getLogger(__name__)
T = TypeVar("T")
URGENT_THREADS: Final = 4
"""Threads of the urgent lane: a burst of life-safety alerts reads contexts and recipients in parallel."""
Clock = Callable[[], int]
"""Returns the current (event) time as UTC epoch ms."""
SEND_LEASE_S: Final = 120
"""How long a message being sent is leased to its sender: only then does another process send it again (a restart
of the same sender does at once). Longer than any one delivery takes (apprise's own timeouts are seconds)."""

_NEXT_ACTIONS: Final[dict[State, tuple[LinkAction, ...]]] = {
    State.OPEN: ("acknowledge", "en_route", "on_site", "resolve"),
    State.ACKNOWLEDGED: ("en_route", "on_site", "resolve"),
    State.EN_ROUTE: ("on_site", "resolve"),
    State.ON_SITE: ("resolve",),
}


class Repeats(msgspec.Struct, frozen=True):
    """How many raises of the same alert one raise stands for (``count``), and the newest one's event time."""

    count: int
    last_ms: int

    @classmethod
    def of(cls, alert: Alert) -> Repeats:
        """One raise: ``alert`` alone."""
        return cls(1, alert.time_ms)


class _Planned(msgspec.Struct, frozen=True, kw_only=True):
    """One message to write into the outbox and then send (``url`` None: recorded as failed, nothing to send)."""

    draft: NotificationDraft
    url: str | None
    message: Message


class TickReport(msgspec.Struct, kw_only=True):
    """What one :meth:`AlertService.tick` did."""

    reminders: int = 0
    escalations: int = 0
    overdue: int = 0
    digests: int = 0
    retries: int = 0


class LinkPage(msgspec.Struct, frozen=True, kw_only=True):
    """What the phone page shows: the alert, and one fresh single-purpose token per allowed next action."""

    alert: AlertView
    state: str
    worker_id: str
    actions: dict[str, str]
    """action → token (POST it back to consume)."""


class AlertService:
    """Alert lifecycle, escalation, notifications, one-tap links and the help-is-coming command."""

    def __init__(
        self,
        *,
        store: AlertStore,
        notifier: Notifier,
        policies: PolicyBook,
        clock: Clock,
        links: LinkSigner,
        commands: CommandPublisher | None = None,
        labels: OutcomeLabels | None = None,
        retry_after_s: int = 30,
        max_attempts: int = 3,
        repeat_notify_after_s: int = 30,
        guardians: GuardianNotifier | None = None,
        arc: ArcChannel | None = None,
        sender: str | None = None,
        send_lease_s: int = SEND_LEASE_S,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.policies = policies
        self.clock = clock
        self.links = links
        self.commands = commands
        self.labels = labels
        """The detection core's learning hook: a resolved behavioural alert's outcome is a label (alerts.learning)."""
        self.retry_after_s = retry_after_s
        self.max_attempts = max_attempts
        self.repeat_notify_after_s = repeat_notify_after_s
        self.guardians = guardians
        """Consenting families told about new life-safety alerts (alerts/guardians.py); None: nobody."""
        self._family_tasks: set[asyncio.Task[None]] = set()
        self.arc = arc
        """The alarm-receiving centre (alerts/arc/): life-safety alerts and their restores as Contact ID; None: off."""
        if arc is not None:
            arc.on_failed = self._arc_failed
        self._first_notices: set[int] = set()
        """Alerts whose first messages this process is sending right now (sent once, whoever asks meanwhile)."""
        self.sender = sender
        """This process's stable id in the outbox (the backend's MQTT client id): on :meth:`resume` it sends at once
        what its killed predecessor left in flight. None: such rows wait for their lease (``send_lease_s``)."""
        self.send_lease_s = send_lease_s
        self._urgent: ThreadPoolExecutor | None = None
        self.life_safety_on_loop = True
        """Store life-safety alerts on the loop when the write lock is free (SQLite); False: always on the urgent
        lane, as before 2026-12-03 (``python -m bench.latency --sos-lane`` compares both)."""

    def close(self) -> None:
        """Stop the urgent lane's threads (after the last raise; a later raise starts them again)."""
        urgent, self._urgent = self._urgent, None
        if urgent is not None:
            urgent.shutdown(wait=False)

    async def _in_store(self, urgent: bool, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call off the loop: on the urgent lane for life-safety work, else the shared pool."""
        if not urgent:
            return await asyncio.to_thread(fn, *args, **kwargs)
        if self._urgent is None:
            self._urgent = ThreadPoolExecutor(max_workers=URGENT_THREADS, thread_name_prefix="alert-urgent")
        return await asyncio.get_running_loop().run_in_executor(self._urgent, functools.partial(fn, *args, **kwargs))

    def _context_and_policy(self, alert: Alert) -> tuple[SiteContext | None, Policy]:
        ctx = self.store.site_context(alert.site)
        policy = self.policies.policy_for(
            community=ctx.community_id if ctx else None, alert_type=alert.type, severity=alert.severity
        )
        return ctx, policy

    def _store_raise(
        self,
        alert: Alert,
        now: int,
        seen: Repeats,
        known: tuple[SiteContext | None, Policy] | None = None,
        *,
        nowait: bool = False,
    ) -> tuple[SiteContext | None, Policy, RaiseResult]:
        """Site context, policy and the insert in one thread hop (one queue to wait in, not two)."""
        ctx, policy = known if known is not None else self._context_and_policy(alert)
        result = self.store.raise_alert(
            alert,
            now_ms=now,
            context=ctx,
            policy=msgspec.to_builtins(policy),
            timers=initial_timers(policy, now),
            nowait=nowait,
            repeats=seen.count,
            last_seen_ms=seen.last_ms,
        )
        return ctx, policy, result

    async def _store_life_safety(
        self, alert: Alert, now: int, seen: Repeats
    ) -> tuple[SiteContext | None, Policy, RaiseResult]:
        """Stored on the loop when that needs no waiting (see the module docstring), else on the urgent lane."""
        if not (self.life_safety_on_loop and self.store.writes_without_waiting):
            return await self._in_store(True, self._store_raise, alert, now, seen)
        known = self._context_and_policy(alert)  # a read: never waits for a writer (WAL)
        try:
            return self._store_raise(alert, now, seen, known, nowait=True)
        except WriteBusy:
            return await self._in_store(True, self._store_raise, alert, now, seen, known)

    # ------------------------------------------------------------------ raise

    async def raise_alert(
        self,
        alert: Alert,
        *,
        on_stored: Callable[[AlertRecord | None], None] | None = None,
        repeats: Repeats | None = None,
    ) -> AlertRecord | None:
        """Store (or deduplicate) an alert and notify; a ``clears`` message clears it (None if nothing was open).

        ``on_stored`` is called as soon as the alert (or its clear) is committed, before anyone is notified.
        ``repeats``: this raise stands for that many of the same alert (merged by :class:`alerts.raising.Raiser`
        while the one before was being stored); counted on the alert, one audit entry, notified as one repeat.
        """
        now = self.clock()
        if alert.clears:
            cleared = await asyncio.to_thread(self.store.clear_alert, alert, now_ms=now)
            if on_stored is not None:
                on_stored(cleared)
            if cleared is not None and cleared.life_safety and self.arc is not None:
                await self.arc.enqueue(cleared, restore=True, now=now)  # the condition ended: Contact ID restore
            return cleared
        seen = repeats if repeats is not None else Repeats.of(alert)
        if alert.is_life_safety:
            ctx, policy, result = await self._store_life_safety(alert, now, seen)
        else:
            ctx, policy, result = await asyncio.to_thread(self._store_raise, alert, now, seen)
        record = result.record
        if on_stored is not None:
            on_stored(record)
        if result.created:
            self._first_notices.add(record.id)
            try:
                arc_row: int | None = None
                if record.life_safety and self.arc is not None:
                    # One outbox row, then a background send: the workers' messages below never wait for the ARC.
                    arc_row = await self.arc.enqueue(record, restore=False, now=now)
                await self._notify_new(record, ctx, policy, now)
                if self.arc is not None and self.arc.take_unsent(arc_row):
                    await self._arc_failed(record.id, now)  # no ARC account: the ARC will never have it
            finally:
                self._first_notices.discard(record.id)
            if record.life_safety and self.guardians is not None:
                # In the background: a slow family channel must never hold up the next alert's staff notification.
                task = asyncio.create_task(self._tell_guardians(record, ctx, now), name=f"guardians-{record.id}")
                self._family_tasks.add(task)
                task.add_done_callback(self._family_tasks.discard)
        elif record.life_safety:
            last = record.last_notified_ms
            if last is None:
                # Nobody told yet: the first messages are on their way (a second press meanwhile: they carry it), or
                # the backend died before sending them and this is the broker's copy after the restart: they are
                # sent now, once, whichever of this and the restart's resume gets there first.
                await self._first_notice(record, now)
            elif now - last >= self.repeat_notify_after_s * 1000:
                # A repeated SOS is never merged away silently: whoever has it is told again.
                targets = [record.owner_id] if record.owner_id else record.notified
                workers = await self._workers(targets, urgent=True) or await self._recipients(
                    ctx, policy.notify, urgent=True
                )
                await self._send_all(record, ctx, workers, NoticeKind.REPEAT, now, AuditAction.ALERT_NOTIFIED)
        return record

    async def _notify_new(self, record: AlertRecord, ctx: SiteContext | None, policy: Policy, now: int) -> None:
        workers = await self._recipients(ctx, policy.notify, urgent=record.life_safety)
        due: int | None = None
        if not record.life_safety:
            if policy.quiet_hours and self.policies.quiet.is_quiet(now):
                due = self.policies.quiet.next_digest_ms(now)
            elif policy.batch_every_s:
                due = batch_due_ms(policy, now)
        if due is None:
            await self._send_all(record, ctx, workers, NoticeKind.INITIAL, now, AuditAction.ALERT_NOTIFIED)
            return
        drafts = [
            NotificationDraft(
                worker_id=w.id,
                kind=NoticeKind.DEFERRED.value,
                channel="pending",
                target="",
                status="queued",
                due_ms=due,
            )
            for w in workers
        ]
        await asyncio.to_thread(
            self.store.record_notifications, record.id, drafts, now_ms=now, notified=[w.id for w in workers]
        )

    async def families_told(self) -> None:
        """Wait until every family notification started so far has been sent and audited (tests, shutdown)."""
        while self._family_tasks:
            await asyncio.gather(*list(self._family_tasks), return_exceptions=True)

    async def _tell_guardians(self, record: AlertRecord, ctx: SiteContext | None, now: int) -> None:
        assert self.guardians is not None
        try:
            sent = await self.guardians.notify(
                site=record.site, alert_type=record.type, raised_ms=record.raised_ms,
                resident_name=ctx.resident_name if ctx else "", now_ms=now,
            )  # fmt: skip
            for guardian, target, ok in sent:
                await asyncio.to_thread(
                    self.store.audit, now_ms=now, actor=SYSTEM, channel="system", action="guardian.notified",
                    entity=Entity.ALERT, entity_id=record.id,
                    detail={"guardian": str(guardian.id), "target": mask_contact(target), "ok": str(ok).lower()},
                )  # fmt: skip
        except Exception:  # noqa: BLE001 - a background task: log, never lose the staff's alert over a family one
            _LOG.exception("alert %s: telling the guardians failed", record.id)

    async def _recipients(
        self, ctx: SiteContext | None, roles: Iterable[str], *, urgent: bool = False
    ) -> list[WorkerContact]:
        wanted = list(roles)
        workers = await self._in_store(urgent, self.store.recipients, ctx, wanted)
        if workers:
            return workers
        # Nobody holds these roles for this home: walk up the hierarchy so the alert still reaches a person.
        for role in FALLBACK_ROLES:
            if role.value in wanted:
                continue
            workers = await self._in_store(urgent, self.store.recipients, ctx, [role.value])
            if workers:
                _LOG.warning("no %s for site %s; falling back to %s", wanted, ctx.site if ctx else "?", role.value)
                return workers
        _LOG.error("no recipient at all for site %s", ctx.site if ctx else "?")
        return []

    async def _workers(self, ids: Sequence[str | None], *, urgent: bool = False) -> list[WorkerContact]:
        out = []
        for worker_id in ids:
            if worker_id and (w := await self._in_store(urgent, self.store.worker, worker_id)) is not None:
                out.append(w)
        return out

    # ------------------------------------------------------------------ sending

    @staticmethod
    def _words(record: AlertRecord, ctx: SiteContext | None, text: str, lang: Lang) -> str:
        device = record.device
        if ctx is None or not device:
            return text
        return plain_explanation(
            text, device=device, kind=ctx.devices.get(device), room=ctx.rooms.get(device), lang=lang
        )

    def _view(self, record: AlertRecord, ctx: SiteContext | None) -> AlertView:
        return AlertView(
            alert_id=record.id,
            type=AlertType(record.type),
            severity=Severity(record.severity),
            raised_ms=record.raised_ms,
            count=record.count,
            state=record.state,
            # The device by its kind and room, not its id: a worker knows the bedroom, not "pir1".
            explanation=self._words(record, ctx, record.explanation, "en"),
            explanation_zh=self._words(record, ctx, record.explanation_zh, "zh"),
            site=record.site,
            address=ctx.address if ctx else "",
            community=ctx.community_name if ctx else "",
            resident_name=ctx.resident_name if ctx else "",
        )

    async def _send_all(
        self,
        record: AlertRecord,
        ctx: SiteContext | None,
        workers: Sequence[WorkerContact],
        kind: NoticeKind,
        now: int,
        audit: AuditAction,
    ) -> None:
        """Write the messages into the outbox, send them, and record how it went (see :meth:`resume`).

        The first messages of an alert are the exception: sent at once and recorded afterwards in one write, as
        nothing is in front of an SOS page. Until that write commits the alert counts as nobody told
        (``last_notified_ms`` unset), which is what a restart's :meth:`resume` looks for and notifies again.
        """
        if not workers:
            return
        planned = self._plan(record, ctx, workers, kind, now)
        if kind is NoticeKind.INITIAL and record.last_notified_ms is None:
            deliveries = await self._send(planned)
            drafts = [
                p.draft if d is None else self._sent_draft(p.draft, d, now)
                for p, d in zip(planned, deliveries, strict=True)
            ]
            await self._in_store(
                record.life_safety, self.store.record_notifications, record.id, drafts, now_ms=now, audit_action=audit,
                notified=[w.id for w in workers], sender=self.sender,
            )  # fmt: skip
            return
        ids = await self._in_store(
            record.life_safety, self.store.record_notifications, record.id, [p.draft for p in planned], now_ms=now,
            audit_action=audit, notified=[w.id for w in workers], sender=self.sender,
        )  # fmt: skip
        deliveries = await self._send(planned)
        await self._finish(ids, planned, deliveries, audit, now, urgent=record.life_safety)

    def _sent_draft(self, draft: NotificationDraft, delivery: Delivery, now: int) -> NotificationDraft:
        """The row of a first message already sent: its result instead of ``sending``."""
        outcome = self._outcome(0, delivery, now, attempts=1, audit=None)
        return msgspec.structs.replace(
            draft, status=outcome.status, due_ms=outcome.due_ms, sent_ms=now if delivery.ok else None, attempts=1,
            error=outcome.error, channel=outcome.channel, target=outcome.target,
        )  # fmt: skip

    def _plan(
        self, record: AlertRecord, ctx: SiteContext | None, workers: Sequence[WorkerContact], kind: NoticeKind, now: int
    ) -> list[_Planned]:
        """One outbox row per worker and channel, ``sending`` under this sender's lease (no channel: ``failed``)."""
        view = self._view(record, ctx)
        lease = now + self.send_lease_s * 1000
        planned = []
        for worker in workers:
            message = self._message_for(view, worker, kind, now)
            if not worker.channels:
                draft = NotificationDraft(
                    worker_id=worker.id, kind=kind.value, channel="none", target="", status="failed",
                    error="worker has no notification channel", title=message.title, body=message.body,
                )  # fmt: skip
                planned.append(_Planned(draft=draft, url=None, message=message))
            for url in worker.channels:
                scheme, target = describe_url(url)
                draft = NotificationDraft(
                    worker_id=worker.id, kind=kind.value, channel=scheme, target=target, status=SENDING,
                    due_ms=lease, title=message.title, body=message.body,
                )  # fmt: skip
                planned.append(_Planned(draft=draft, url=url, message=message))
        return planned

    async def _send(self, planned: Sequence[_Planned]) -> list[Delivery | None]:
        """Deliver every planned message at once (None where there is nothing to send)."""

        async def one(p: _Planned) -> Delivery | None:
            return None if p.url is None else await self.notifier.send(url=p.url, message=p.message)

        return list(await asyncio.gather(*(one(p) for p in planned)))

    async def _finish(
        self,
        ids: Sequence[int],
        planned: Sequence[_Planned],
        deliveries: Sequence[Delivery | None],
        audit: AuditAction | None,
        now: int,
        *,
        urgent: bool,
    ) -> None:
        """Record every delivery's result (and its audit entry) in one transaction."""
        outcomes = [
            self._outcome(nid, delivery, now, attempts=1, audit=audit)
            for nid, delivery in zip(ids, deliveries, strict=True)
            if delivery is not None
        ]
        if outcomes:
            await self._in_store(urgent, self.store.finish_sends, outcomes, now_ms=now)

    def _outcome(self, nid: int, delivery: Delivery, now: int, *, attempts: int, audit: str | None) -> SendOutcome:
        """A delivery's result as the row's new state: sent, retry later (backing off), or failed for good."""
        if delivery.ok:
            status, due = "sent", None
        elif attempts >= self.max_attempts:
            status, due = "failed", None
        else:
            status, due = "retry", now + self.retry_after_s * 1000 * attempts
        return SendOutcome(
            id=nid, status=status, channel=delivery.channel, target=delivery.target, due_ms=due, error=delivery.error,
            audit=audit,
        )  # fmt: skip

    def _message_for(self, view: AlertView, worker: WorkerContact, kind: NoticeKind, now: int) -> Message:
        ack = self.links.token(alert_id=view.alert_id, worker_id=worker.id, action="acknowledge", now_ms=now)
        page = self.links.token(alert_id=view.alert_id, worker_id=worker.id, action="view", now_ms=now)
        show_ack = view.state == State.OPEN.value
        return render_alert(
            view,
            kind=kind,
            ack_url=self.links.url(ack) if show_ack else None,
            page_url=self.links.url(page),
            link_ttl_s=self.links.ttl_s,
            lang=worker.lang,
            tz=self.policies.quiet.timezone,
        )

    # ------------------------------------------------------------------ timers

    async def tick(self, now_ms: int | None = None) -> TickReport:
        """Fire due reminders, escalations and on-site deadlines, then flush batches, digests and retries."""
        now = self.clock() if now_ms is None else now_ms
        report = TickReport()
        for record in await asyncio.to_thread(self.store.due_alerts, now):
            if record.next_due_ms is None:
                continue
            policy = msgspec.convert(record.policy, Policy)
            timers = Timers(
                remind_due_ms=record.remind_due_ms,
                escalate_due_ms=record.escalate_due_ms,
                escalation_step=record.escalation_step,
                on_site_due_ms=record.on_site_due_ms,
            )
            new_timers, work = plan_due(policy, anchor_ms=record.created_ms, timers=timers, now_ms=now)
            if work.empty:
                await asyncio.to_thread(
                    self.store.advance_timers, record.id, expect_next_due_ms=record.next_due_ms, timers=new_timers
                )
                continue
            # Who gets what is decided first; the timers then move in the same transaction that queues the messages,
            # so a kill can never leave a timer moved on with its messages lost (they are sent after the restart).
            ctx = await asyncio.to_thread(self.store.site_context, record.site)
            groups: list[tuple[list[_Planned], AuditAction]] = []
            if work.escalate_roles:
                fresh = await self._recipients(ctx, [r.value for r in work.escalate_roles])
                groups.append((self._plan(record, ctx, fresh, NoticeKind.ESCALATION, now), AuditAction.ALERT_ESCALATED))
            if work.remind and record.state == State.OPEN.value:
                told = await self._workers(record.notified)
                groups.append((self._plan(record, ctx, told, NoticeKind.REMINDER, now), AuditAction.ALERT_REMINDED))
            if work.overdue:
                roles = [r.value for r in policy.overdue_roles]
                late = await self._recipients(ctx, roles) + await self._workers([record.owner_id])
                unique = list({w.id: w for w in late}.values())
                groups.append((self._plan(record, ctx, unique, NoticeKind.OVERDUE, now), AuditAction.ALERT_OVERDUE))
            ids = await asyncio.to_thread(
                self.store.advance_and_queue, record.id, expect_next_due_ms=record.next_due_ms, timers=new_timers,
                groups=[([p.draft for p in planned], audit) for planned, audit in groups], now_ms=now,
                sender=self.sender,
            )  # fmt: skip
            if ids is None:  # another ticker moved these timers first: it sends them
                continue
            report.escalations += bool(work.escalate_roles)
            report.reminders += bool(work.remind and record.state == State.OPEN.value)
            report.overdue += bool(work.overdue)
            rows = iter(ids)
            for planned, audit in groups:
                group_ids = [next(rows) for _ in planned]
                await self._finish(group_ids, planned, await self._send(planned), audit, now, urgent=False)
        await self._flush_queue(now, report)
        if self.arc is not None:
            self.arc.kick()  # due ARC retries, in the background
        return report

    async def _arc_failed(self, alert_id: int, now: int) -> None:
        """The ARC did not take a life-safety alert: tell who has it, and take the next escalation step now.

        Like a worker nobody reached, an alert the ARC does not have must not wait for the policy's next step: the
        workers told so far (or the owner, once someone has taken it) get an ``arc_failed`` notice, and an alert
        nobody has acknowledged escalates to the policy's next step at once (that step is not taken again later).
        """
        record = await asyncio.to_thread(self.store.get_alert, alert_id)
        if State(record.state) not in ACTIVE_STATES:
            return
        ctx = await asyncio.to_thread(self.store.site_context, record.site)
        roles: tuple[Role, ...] = ()
        policy = msgspec.convert(record.policy, Policy)
        step = record.escalation_step
        if (
            record.state == State.OPEN.value
            and record.escalate_due_ms is not None
            and record.next_due_ms is not None
            and step < len(policy.escalate)
        ):
            timers = Timers(
                remind_due_ms=record.remind_due_ms,
                escalate_due_ms=next_escalation_ms(policy, record.created_ms, step + 1),
                escalation_step=step + 1,
                on_site_due_ms=record.on_site_due_ms,
            )
            won = await asyncio.to_thread(
                self.store.advance_timers, record.id, expect_next_due_ms=record.next_due_ms, timers=timers
            )
            roles = policy.escalate[step].roles if won else ()
        told = await self._workers([record.owner_id] if record.owner_id else record.notified)
        await self._send_all(record, ctx, told, NoticeKind.ARC_FAILED, now, AuditAction.ALERT_NOTIFIED)
        if roles:
            fresh = await self._recipients(ctx, [r.value for r in roles])
            await self._send_all(record, ctx, fresh, NoticeKind.ESCALATION, now, AuditAction.ALERT_ESCALATED)
        await asyncio.to_thread(
            self.store.audit, now_ms=now, actor=SYSTEM, channel=Channel.SYSTEM, action=AuditAction.ALERT_ARC_ESCALATED,
            entity=Entity.ALERT, entity_id=record.id,
            detail={"roles": [r.value for r in roles], "told": [w.id for w in told]},
        )  # fmt: skip

    async def _flush_queue(self, now: int, report: TickReport) -> None:
        claimed = await asyncio.to_thread(
            self.store.claim_notifications, now, lease_ms=self.send_lease_s * 1000, sender=self.sender
        )
        digests: dict[str, list[int]] = defaultdict(list)
        for item in claimed:
            if item.kind == NoticeKind.DEFERRED.value:
                digests[item.worker_id].append(item.id)
        by_id = {n.id: n for n in claimed}
        for item in claimed:
            if item.kind != NoticeKind.DEFERRED.value:
                await self._retry(item, now)
                report.retries += 1
        for worker_id, ids in digests.items():
            await self._send_digest(worker_id, [by_id[i] for i in ids], now)
            report.digests += 1

    async def _retry(self, item: NotificationRecord, now: int) -> None:
        """Send a row again: a failed delivery, or one its sender left in flight (killed before the answer)."""
        record = await asyncio.to_thread(self.store.get_alert, item.alert_id)
        if State(record.state) not in ACTIVE_STATES:
            # Resolved or cleared meanwhile (e.g. while the backend was down): nobody needs this message now.
            await asyncio.to_thread(self.store.finish_notification, item.id, status="skipped", now_ms=now)
            return
        worker = await asyncio.to_thread(self.store.worker, item.worker_id)
        url = next((u for u in (worker.channels if worker else []) if describe_url(u)[1] == item.target), None)
        if url is None:
            await asyncio.to_thread(
                self.store.finish_notification, item.id, status="failed", now_ms=now,
                error="channel no longer configured",
            )  # fmt: skip
            return
        delivery = await self.notifier.send(url=url, message=Message(title=item.title or "", body=item.body or ""))
        outcome = self._outcome(item.id, delivery, now, attempts=item.attempts + 1, audit=None)
        await asyncio.to_thread(
            self.store.finish_notification, item.id, status=outcome.status, now_ms=now, error=outcome.error,
            due_ms=outcome.due_ms,
        )  # fmt: skip

    async def resume(self, *, started_ms: int, owns: Callable[[str], bool] | None = None) -> int:
        """After a start: send what a killed predecessor owed; returns how many alerts were notified afresh.

        Two things a ``kill -9`` can leave: messages written to the outbox and not yet answered (``sending``; this
        sender's are put back at once, another's wait for their lease), and an alert stored but killed before its
        first messages were written (active, nobody told, created before ``started_ms``): it is notified now, as
        if just raised. Then everything due in the outbox is sent, without waiting for the next :meth:`tick`.
        ``owns`` limits the second to the homes (site ids) whose alerts this process raises: a partition worker
        taking a partition over owes only that partition's (another live owner is sending its own first messages).
        Such a resume does not put this sender's own rows back: the process has been running, and they are in
        flight (a dead worker's are put back by its peers, :meth:`release_gone_senders`).
        """
        now = self.clock()
        if self.sender is not None and owns is None:
            released = await asyncio.to_thread(self.store.release_sender, self.sender, due_ms=now)
            if released:
                _LOG.warning("%d messages were in flight when %s stopped: sending them again", released, self.sender)
        owed = await asyncio.to_thread(self.store.unnotified_alerts, created_before_ms=started_ms)
        if owns is not None:
            owed = [record for record in owed if owns(record.site)]
        told = 0
        for record in owed:
            _LOG.warning("alert %s (%s, %s) was stored but nobody told: notifying now", record.id, record.type,
                         record.site)  # fmt: skip
            told += await self._first_notice(record, now)
        await self._flush_queue(now, TickReport())
        return told

    async def release_gone_senders(self, prefix: str, live: Collection[str]) -> int:
        """What senders named ``prefix…`` that are not in ``live`` were sending goes out again at the next tick.

        See :meth:`alerts.store.outbox.Outbox.release_gone_senders`; logged when there were any.
        """
        released = await asyncio.to_thread(self.store.release_gone_senders, prefix, live, due_ms=self.clock())
        if released:
            _LOG.warning("%d messages were in flight at senders that are gone: sending them again", released)
        return released

    async def notify_owed(self, alert_id: int) -> bool:
        """Finish raising a stored alert whose first messages were never written (a failure after its insert).

        Idempotent: an alert somebody was told about, or no longer active, is left alone (False).
        """
        record = await asyncio.to_thread(self.store.get_alert, alert_id)
        return await self._first_notice(record, self.clock())

    async def _first_notice(self, record: AlertRecord, now: int) -> bool:
        """The first messages of a stored alert nobody was told about, unless this process is sending them already."""
        if record.id in self._first_notices:
            return False
        self._first_notices.add(record.id)
        try:
            record = await asyncio.to_thread(self.store.get_alert, record.id)  # what the store says now
            if record.last_notified_ms is not None or State(record.state) not in ACTIVE_STATES:
                return False
            await self._notify_owed(record, now)
            return True
        finally:
            self._first_notices.discard(record.id)

    async def _notify_owed(self, record: AlertRecord, now: int) -> None:
        """What :meth:`raise_alert` does after the insert: the ARC event (unless written), the first messages."""
        ctx = await asyncio.to_thread(self.store.site_context, record.site)
        arc_row: int | None = None
        if record.life_safety and self.arc is not None:
            rows = await asyncio.to_thread(self.store.notifications, alert_id=record.id)
            if not any(n.channel == ARC_CHANNEL and n.kind == ARC_EVENT for n in rows):
                arc_row = await self.arc.enqueue(record, restore=False, now=now)
        await self._notify_new(record, ctx, msgspec.convert(record.policy, Policy), now)
        if self.arc is not None and self.arc.take_unsent(arc_row):
            await self._arc_failed(record.id, now)

    async def _send_digest(self, worker_id: str, items: Sequence[NotificationRecord], now: int) -> None:
        worker = await asyncio.to_thread(self.store.worker, worker_id)
        views: list[AlertView] = []
        urls: list[str | None] = []
        live: list[int] = []
        for item in items:
            nid, alert_id = item.id, item.alert_id
            record = await asyncio.to_thread(self.store.get_alert, alert_id)
            if State(record.state) not in ACTIVE_STATES:
                # Cleared or resolved before the digest went out: nobody needs to hear about it.
                await asyncio.to_thread(self.store.finish_notification, nid, status="skipped", now_ms=now)
                continue
            ctx = await asyncio.to_thread(self.store.site_context, record.site)
            views.append(self._view(record, ctx))
            token = self.links.token(alert_id=alert_id, worker_id=worker_id, action="view", now_ms=now)
            urls.append(self.links.url(token))
            live.append(nid)
        if not live:
            return
        lang = worker.lang if worker else "zh"
        message = render_digest(views, page_urls=urls, tz=self.policies.quiet.timezone, lang=lang)
        channels = worker.channels if worker else []
        deliveries = await asyncio.gather(*(self.notifier.send(url=u, message=message) for u in channels))
        ok = [d for d in deliveries if d.ok]
        status = "sent" if ok else "failed"
        error = None if ok else ("; ".join(d.error or "failed" for d in deliveries) or "worker has no channel")
        channel = ",".join(sorted({d.channel for d in deliveries})) or "none"
        target = " ".join(d.target for d in deliveries)[:500]
        for nid in live:
            await asyncio.to_thread(
                self.store.finish_notification, nid, status=status, now_ms=now, error=error, channel=channel,
                target=target,
            )  # fmt: skip
        await asyncio.to_thread(
            self.store.audit, now_ms=now, actor=SYSTEM, channel=Channel.SYSTEM, action=AuditAction.DIGEST_SENT,
            entity=Entity.WORKER, entity_id=worker_id, detail={"alerts": [v.alert_id for v in views], "status": status},
        )  # fmt: skip

    # ------------------------------------------------------------------ actions

    async def transition(
        self,
        alert_id: int,
        action: Action,
        *,
        actor: str,
        channel: Channel,
        outcome: Outcome | None = None,
        note: str | None = None,
        link_nonce: str | None = None,
        now_ms: int | None = None,
    ) -> TransitionResult:
        """Apply a lifecycle action (refused with :class:`InvalidTransition`); acknowledging an SOS tells the home.

        ``now_ms``: the instant of the action (default: the service's clock), for a caller that read the clock once.
        """
        now = self.clock() if now_ms is None else now_ms
        result = await asyncio.to_thread(
            self.store.transition, alert_id, action, actor=actor, channel=channel, now_ms=now, outcome=outcome,
            note=note, link_nonce=link_nonce,
        )  # fmt: skip
        record = result.record
        first_taken = result.applied and result.from_state == State.OPEN.value and record.ack_ms == now
        if result.applied and AlertType(record.type) in HELP_COMING_TYPES:
            # Taken: who handles it (not a promise that anyone comes); set off: on the way. Arrival: nothing.
            if first_taken and action is not Action.ON_SITE:
                await self._help_coming(record, actor, now, on_the_way=action is Action.EN_ROUTE)
            elif action is Action.EN_ROUTE:
                await self._help_coming(record, actor, now, on_the_way=True)
        if result.applied and action is Action.RESOLVE and record.life_safety and self.arc is not None:
            await self.arc.enqueue(record, restore=True, now=now)  # handled: restore, unless the clear sent one
        if result.applied and action is Action.RESOLVE and outcome is not None and self.labels is not None:
            apply_outcome(
                self.labels, site=record.site, alert_type=record.type, raised_ms=record.raised_ms, outcome=outcome
            )
        return result

    async def assign(
        self, alert_id: int, worker_id: str, *, actor: str, channel: Channel, now_ms: int | None = None
    ) -> AssignResult:
        """Make an active worker the alert's owner (event + audit in the store), then tell them.

        Refused with :class:`InvalidTransition` (resolved/cleared), :class:`AlertNotFound`,
        :class:`RecordNotFound` or :class:`WorkerInactive`. The new owner gets an ``assigned`` notification
        through their channels (recorded like any other) and from then on the alert's reminders; assigning
        the current owner again records the event but sends nothing. ``now_ms`` as for :meth:`transition`.
        """
        now = self.clock() if now_ms is None else now_ms
        result = await asyncio.to_thread(
            self.store.assign, alert_id, worker_id, actor=actor, channel=channel, now_ms=now
        )
        if result.previous_owner != worker_id:
            ctx = await asyncio.to_thread(self.store.site_context, result.record.site)
            await self._send_all(
                result.record, ctx, [result.worker], NoticeKind.ASSIGNED, now, AuditAction.ALERT_NOTIFIED
            )
        return result

    async def _help_coming(self, record: AlertRecord, actor: str, now: int, *, on_the_way: bool) -> None:
        if self.commands is None:
            return
        ctx = await asyncio.to_thread(self.store.site_context, record.site)
        worker = await asyncio.to_thread(self.store.worker, actor)
        if on_the_way:
            # The one who sets off is a grid worker (the console's button reads "网格员已出发"): the owner if a grid
            # worker took it, else the clicker if one; a duty officer at the desk is never named as coming.
            owner = await asyncio.to_thread(self.store.worker, record.owner_id) if record.owner_id else None
            worker = next((w for w in (owner, worker) if w is not None and w.role == Role.GRID_WORKER), None)
        by, role = (worker.name, worker.role) if worker else ("", Role.GRID_WORKER.value if on_the_way else "")
        topics = help_coming_topics(
            site=record.site,
            alert_type=AlertType(record.type),
            device=record.device,
            devices=ctx.devices if ctx else {},
        )
        payload = help_coming(alert_id=record.id, time_ms=now, by=by, role=role, on_the_way=on_the_way)
        for topic in topics:
            try:
                await self.commands.publish(topic, payload)
            except Exception as exc:  # noqa: BLE001 - a broker hiccup must not undo the acknowledgement
                _LOG.warning("help-coming command to %s failed: %s", topic, type(exc).__name__)
                action, detail = AuditAction.COMMAND_FAILED, {"topic": topic, "error": f"{type(exc).__name__}: {exc}"}
            else:
                action, detail = AuditAction.COMMAND_SENT, {"topic": topic, "cmd": "help_coming"}
            await asyncio.to_thread(
                self.store.audit, now_ms=now, actor=actor, channel=Channel.SYSTEM, action=action, entity=Entity.ALERT,
                entity_id=record.id, detail=detail,
            )  # fmt: skip

    async def consume_link(
        self, token: str, *, outcome: Outcome | None = None, note: str | None = None
    ) -> TransitionResult:
        """Carry out a one-tap link (idempotent: a second use answers ``applied=False``); raise :class:`LinkError`."""
        now = self.clock()
        try:
            claim = self.links.verify(token, now_ms=now)
            action = claim.lifecycle_action
            if action is None:
                raise LinkError("purpose", "a view link opens the page; it performs no action")
        except LinkError as exc:
            await asyncio.to_thread(
                self.store.audit, now_ms=now, actor="anonymous", channel=Channel.LINK, action=AuditAction.LINK_REJECTED,
                entity=Entity.ALERT, entity_id="?", detail={"reason": exc.reason},
            )  # fmt: skip
            raise
        return await self.transition(
            claim.alert_id, action, actor=claim.worker_id, channel=Channel.LINK, outcome=outcome, note=note,
            link_nonce=claim.nonce,
        )  # fmt: skip

    async def open_link(self, token: str) -> LinkPage:
        """Verify a ``view`` link and return the phone page's content with fresh action tokens; audited."""
        now = self.clock()
        claim = self.links.verify(token, now_ms=now, expect="view")
        record = await asyncio.to_thread(self.store.get_alert, claim.alert_id)
        ctx = await asyncio.to_thread(self.store.site_context, record.site)
        await asyncio.to_thread(
            self.store.audit, now_ms=now, actor=claim.worker_id, channel=Channel.LINK, action=AuditAction.ALERT_READ,
            entity=Entity.ALERT, entity_id=record.id,
        )  # fmt: skip
        actions: dict[str, str] = {
            a: self.links.token(alert_id=record.id, worker_id=claim.worker_id, action=a, now_ms=now)
            for a in _NEXT_ACTIONS.get(State(record.state), ())
        }
        return LinkPage(alert=self._view(record, ctx), state=record.state, worker_id=claim.worker_id, actions=actions)


__all__ = ["AlertService", "Clock", "LinkPage", "Role", "TickReport"]
