"""The ARC notification channel: life-safety alerts and their restores, through the store's outbox, to the ARC.

Each event is a ``notifications`` row (channel ``arc``, worker ``ARC``) written before anything is sent, so a
killed backend sends it after restart (rows left in ``sending`` are leased, see ``claim_notifications``). Sending
runs in a background task of its own: a slow or dead ARC never holds up the workers' notifications. An event
is retried with a capped backoff until the ARC acknowledges it; after ``failed_after`` failed attempts the
alert's history shows "ARC delivery failed" (once), and "delivered" when the ACK finally comes. At that same
moment :attr:`ArcChannel.on_failed` is called for an alarm (not a restore): the alert service tells the workers
and takes the next escalation step (``AlertService._arc_failed``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from alerts.arc.client import ArcClient
from alerts.arc.dc09 import NEW_EVENT, Response, contact_id
from alerts.arc.errors import DeliveryError
from alerts.arc.events import TEST_CODE, ArcConfig
from alerts.store.outbox import ARC_CHANNEL
from alerts.store.records import AlertRecord, NotificationDraft, NotificationRecord
from alerts.store.repository import AlertStore

_LOG = logging.getLogger(__name__)

ARC_WORKER: Final = "ARC"
"""``notifications.worker_id`` of ARC rows."""
EVENT: Final = "arc_event"
RESTORE: Final = "arc_restore"


class _Unreachable(Exception):
    """The ARC did not answer a connection: stop this round; ``retry_ms`` is when the next one is due."""

    def __init__(self, retry_ms: int) -> None:
        super().__init__(retry_ms)
        self.retry_ms = retry_ms


def seq_of(notification_id: int) -> int:
    """DC-09 sequence number of a row: stable across retries and restarts, 1..9999."""
    return (notification_id - 1) % 9999 + 1


class ArcChannel:
    """Queues Contact ID events in the outbox and delivers them to the ARC in the background."""

    def __init__(
        self,
        *,
        store: AlertStore,
        config: ArcConfig,
        clock: Callable[[], int],
        client: ArcClient | None = None,
        key: bytes | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.client = client or ArcClient(
            host=config.host, port=config.port, receiver=config.receiver, line=config.line, timeout_s=config.timeout_s,
            key=key,
        )  # fmt: skip
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.delivered = 0
        self.last_supervision: Response | DeliveryError | None = None
        self._unsent: set[int] = set()
        self.on_failed: Callable[[int, int], Awaitable[None]] | None = None
        """Called with ``(alert_id, now_ms)`` once an alarm's delivery counts as failed (set by the alert service)."""

    # ------------------------------------------------------------------ queueing

    async def enqueue(self, record: AlertRecord, *, restore: bool, now: int) -> int | None:
        """Write the event (or the restore, at most once per alert) to the outbox and start sending it."""
        kind = RESTORE if restore else EVENT
        if restore:
            rows = await asyncio.to_thread(self.store.notifications, alert_id=record.id)
            mine = {n.kind for n in rows if n.channel == ARC_CHANNEL}
            if EVENT not in mine or RESTORE in mine:
                return None  # nothing was reported to the ARC, or the restore is already on its way
        data = self.config.event_data(
            site=record.site, alert_type=record.type, restore=restore, community=record.community_id
        )
        if data is None and self.config.codes.get(record.type) is None:
            return None  # not a type the ARC hears about
        draft = NotificationDraft(
            worker_id=ARC_WORKER, kind=kind, channel=ARC_CHANNEL, target=self.client.target,
            status="queued" if data else "failed", due_ms=now if data else None, body=data,
            error=None if data else f"no ARC account for site {record.site}",
        )  # fmt: skip
        (nid,) = await asyncio.to_thread(self.store.record_notifications, record.id, [draft], now_ms=now)
        if data is None:
            _LOG.error("alert %s: no ARC account for site %s; the ARC is not told", record.id, record.site)
            await asyncio.to_thread(
                self.store.finish_arc, nid, status="failed", now_ms=now, error=draft.error, event="arc_failed",
                note=f"报警中心投递失败 / ARC delivery failed: {draft.error} (not sent)",
            )  # fmt: skip
            if not restore:
                # Escalated by the caller once the workers have been told (take_unsent): done here, the "ARC does
                # not have it" notice would reach nobody and the escalation step would overtake the first message.
                self._unsent.add(nid)
        else:
            self.kick()
        return nid

    def take_unsent(self, notification_id: int | None) -> bool:
        """True (once) if :meth:`enqueue` wrote this alarm as failed at once (no account): the caller escalates it."""
        if notification_id is None or notification_id not in self._unsent:
            return False
        self._unsent.discard(notification_id)
        return True

    def kick(self) -> None:
        """Drain the ARC outbox in the background (a running drain goes round once more)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._drain_loop(), name="arc-drain")

    async def idle(self) -> None:
        """Wait until the background drain has finished (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain_loop(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.drain()
            except Exception:  # noqa: BLE001 - a background task: log and let the next tick try again
                _LOG.exception("ARC drain failed")

    # ------------------------------------------------------------------ sending

    async def drain(self, now: int | None = None) -> int:
        """Send every due ARC row once; return how many the ARC acknowledged."""
        now = self.clock() if now is None else now
        lease_ms = int((self.config.timeout_s * 2 + 5) * 1000)
        claimed = await asyncio.to_thread(self.store.claim_notifications, now, arc=True, lease_ms=lease_ms)
        acked = 0
        for n, item in enumerate(claimed):
            try:
                acked += await self._send(item, now)
            except _Unreachable as down:
                # The ARC cannot be reached now: the others wait for the next round instead of each timing out.
                rest = [i.id for i in claimed[n + 1 :]]
                await asyncio.to_thread(self.store.release_notifications, rest, due_ms=down.retry_ms)
                break
        return acked

    async def _send(self, item: NotificationRecord, now: int) -> int:
        if item.kind == RESTORE:
            rows = await asyncio.to_thread(self.store.notifications, alert_id=item.alert_id)
            event = next((n for n in rows if n.channel == ARC_CHANNEL and n.kind == EVENT), None)
            if event is not None and event.status != "sent":
                # A restore never overtakes its alarm: wait for the event's next attempt.
                due = max(now + 1000, event.due_ms or now)
                await asyncio.to_thread(self.store.release_notifications, [item.id], due_ms=due)
                return 0
        if not item.body:
            await asyncio.to_thread(
                self.store.finish_arc, item.id, status="failed", now_ms=now, error="event text erased",
            )  # fmt: skip
            return 0
        account = item.body[1:].split("|", 1)[0]
        try:
            await self.client.send(event_id="ADM-CID", seq=seq_of(item.id), account=account, data=item.body)
        except DeliveryError as exc:
            retry_at = await self._failed(item, exc, now)
            if exc.reason in ("connect", "timeout") and retry_at is not None:
                raise _Unreachable(retry_at) from exc
            return 0
        attempts = item.attempts + 1
        late = item.attempts >= self.config.failed_after
        await asyncio.to_thread(
            self.store.finish_arc, item.id, status="sent", now_ms=now, event="arc_delivered" if late else None,
            note=f"报警中心已确认 / ARC acknowledged {item.body} (attempt {attempts})" if late else None,
        )  # fmt: skip
        self.delivered += 1
        return 1

    async def _failed(self, item: NotificationRecord, exc: DeliveryError, now: int) -> int | None:
        attempts = item.attempts + 1
        _LOG.warning("ARC delivery of notification %s failed (attempt %d): %s", item.id, attempts, exc)
        if exc.permanent:
            status, due = "failed", None
        else:
            backoff = min(self.config.retry_base_s * 2 ** (attempts - 1), self.config.retry_max_s)
            status, due = "retry", now + int(backoff * 1000)
        show = exc.permanent or attempts == self.config.failed_after
        what = "不再重试 / not retried" if exc.permanent else "正在重试 / retrying"
        await asyncio.to_thread(
            self.store.finish_arc, item.id, status=status, now_ms=now, error=str(exc)[:300], due_ms=due,
            event="arc_failed" if show else None,
            note=f"报警中心投递失败 / ARC delivery failed: {exc} (attempt {attempts}; {what})" if show else None,
        )  # fmt: skip
        if show and item.kind == EVENT:
            await self._escalate(item.alert_id, now)
        return due

    async def _escalate(self, alert_id: int, now: int) -> None:
        if self.on_failed is None:
            return
        try:
            await self.on_failed(alert_id, now)
        except Exception:  # noqa: BLE001 - the ARC retries must go on whatever the workers' channels do
            _LOG.exception("alert %s: escalating the failed ARC delivery failed", alert_id)

    # ------------------------------------------------------------------ link checks

    async def supervise(self) -> Response | DeliveryError:
        """Send one DC-09 ``NULL`` link test; the answer (or the error) is kept in :attr:`last_supervision`."""
        account = self.config.link_account()
        try:
            result: Response | DeliveryError = await self.client.send(
                event_id="NULL", seq=seq_of(self.clock() // 1000), account=account, data=""
            )
        except DeliveryError as exc:
            _LOG.warning("ARC link test failed: %s", exc)
            result = exc
        self.last_supervision = result
        return result

    async def test_event(self, *, account: str | None = None) -> Response:
        """Send Contact ID 602 (periodic test report); raise :class:`DeliveryError` when not acknowledged."""
        acct = account or self.config.link_account()
        return await send_test_event(self.client, account=acct, seq=seq_of(self.clock() // 1000))


async def send_test_event(client: ArcClient, *, account: str, seq: int) -> Response:
    """Contact ID 602 "periodic test report" (group 00, zone 000): the ARC's answer, or :class:`DeliveryError`."""
    data = contact_id(account=account, qualifier=NEW_EVENT, code=TEST_CODE, group="00", zone="000")
    return await client.send(event_id="ADM-CID", seq=seq, account=account, data=data)
