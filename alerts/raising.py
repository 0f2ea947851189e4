"""Raising detected alerts so that none is lost: each in a task of its own, retried until the store takes it.

An alert's reading is durable and acknowledged before its alert is stored, so nothing else raises it again if the
store refuses it (PostgreSQL restarting, a full disk): the raise is retried with backoff until the store takes it.
Once stored, only what its raise still owed (the ARC event, the first messages: :meth:`AlertService.notify_owed`) is
retried. Whoever writes a detection snapshot first waits for :meth:`Raiser.stored`: a restart replays only the
readings a snapshot has not seen, so a snapshot over a reading whose alert is not stored yet, then a ``kill -9``,
would lose the alert for good. Used by the embedded backend and by each partition worker (docs/storage.md, "What
survives what").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from alerts.service import AlertService, Repeats
from alerts.store.records import AlertRecord
from alerts.store.repository import AlertStore
from detection.models import Alert
from gateway.retry import Backoff, retry

_LOG: Final = logging.getLogger(__name__)
RAISE_RETRY_MAX_S: Final = 10.0
"""Longest pause between attempts to store an alert the store refused (an outage): an SOS is stored this soon after
the database is back."""
SNAPSHOT_WAITS_FOR_RAISES_S: Final = 5.0
"""How long a snapshot waits for the alerts raised before it to be stored; if they are not, it is not written."""
SHUTDOWN_WAITS_FOR_RAISES_S: Final = 10.0
"""How long a clean stop waits for alerts the store has not taken yet (an outage) before it gives up on them."""


class AlertSink(Protocol):
    """What raises an alert: :class:`alerts.service.AlertService` (tests pass a recorder)."""

    async def raise_alert(
        self,
        alert: Alert,
        *,
        on_stored: Callable[[AlertRecord | None], None] | None = None,
        repeats: Repeats | None = None,
    ) -> AlertRecord | None:
        """Store (or deduplicate, or clear) the alert and notify; ``on_stored`` once it is committed."""
        ...

    async def notify_owed(self, alert_id: int) -> bool:
        """Send the first messages of a stored alert nobody was told about (idempotent)."""
        ...


AlertKey = tuple[str, str, str | None]
"""Site, type and device: the alerts one store row counts while it is open."""


@dataclass(eq=False)
class _Raise:
    """One raise of an alert, standing for every repeat of it merged while it waited for the raise before."""

    alert: Alert
    """The first one (its time is the alert's raise time if the store opens a new alert)."""
    stored: list[asyncio.Future[None]]
    """One per alert this raise stands for; set once committed."""
    committed: asyncio.Future[None]
    """Done once the store took it, or once the raise ended without (the next raise of its key goes on then)."""
    last_ms: int
    """The newest event time of the alerts it stands for."""
    count: int = 1
    started: bool = False
    """True once it stopped waiting for the raise before: later repeats need a raise of their own."""
    task: asyncio.Task[None] | None = None


class Raiser:
    """Raises alerts through ``sink``, each in its own task at once, retried until stored; knows which are not yet.

    Repeats of one alert (same site, type and device) are stored one after the other: while one is being stored,
    the repeats after it are merged into one waiting raise that counts them all (:class:`alerts.service.Repeats`),
    so a button pressed 20,000 times costs a few store writes, not 20,000 that every other home's alert would queue
    behind (``tests/test_e2e_hostile_gateway.py``). Nothing is merged away: the alert's count holds every press, a
    repeat is still told to whoever has the alert (the service's repeat rule), and the first raise of a key never
    waits.
    """

    def __init__(self, sink: AlertSink, *, retry_max_s: float = RAISE_RETRY_MAX_S) -> None:
        """Raise through ``sink``; pause at most ``retry_max_s`` between attempts."""
        self.sink = sink
        self.retry_max_s = retry_max_s
        self.tasks: set[asyncio.Task[None]] = set()
        """The raises under way (stored or not: a stored alert's first messages may still be on their way)."""
        self.unstored: set[asyncio.Future[None]] = set()
        """One per alert raised and not yet committed to the store (insert or clear)."""
        self.merged = 0
        """Alerts counted by a raise of the same alert instead of a store write of their own."""
        self._latest: dict[AlertKey, _Raise] = {}

    def raise_(self, alert: Alert) -> asyncio.Task[None]:
        """Start raising ``alert`` now (a life-safety alert never waits behind another home's); returns its task.

        A repeat of an alert whose raise is still being stored waits for that one, merged with the other repeats
        that arrive meanwhile; the task returned is the one that stores it.
        """
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()
        self.unstored.add(stored)
        stored.add_done_callback(self.unstored.discard)
        key: AlertKey = (alert.site, alert.type.value, alert.device)
        latest = self._latest.get(key)
        if latest is not None and not latest.started and not latest.alert.clears and not alert.clears:
            latest.count += 1
            latest.last_ms = max(latest.last_ms, alert.time_ms)
            latest.stored.append(stored)
            self.merged += 1
            assert latest.task is not None
            return latest.task
        before = latest.committed if latest is not None else None
        item = _Raise(alert=alert, stored=[stored], committed=loop.create_future(), last_ms=alert.time_ms)
        self._latest[key] = item
        task = loop.create_task(self._raise(item, before), name=f"raise-{alert.type}-{alert.site}")
        item.task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self._ended(key, item))
        return task

    def _ended(self, key: AlertKey, item: _Raise) -> None:
        for stored in item.stored:
            stored.cancel()  # a no-op once stored; else given up (shutdown)
        if not item.committed.done():
            item.committed.set_result(None)
        if self._latest.get(key) is item:
            del self._latest[key]

    async def _raise(self, item: _Raise, before: asyncio.Future[None] | None) -> None:
        if before is not None and not before.done():
            await asyncio.wait({before})  # (never cancels it) the repeats arriving meanwhile merge into this one
        item.started = True
        alert = item.alert
        record: list[AlertRecord | None] = []

        def committed(done: AlertRecord | None) -> None:
            record.append(done)
            for stored in item.stored:
                if not stored.done():
                    stored.set_result(None)
            if not item.committed.done():
                item.committed.set_result(None)

        async def attempt() -> None:
            if not record:
                repeats = Repeats(item.count, item.last_ms) if item.count > 1 else None
                await self.sink.raise_alert(alert, on_stored=committed, repeats=repeats)
            elif record[0] is not None and not alert.clears:
                await self.sink.notify_owed(record[0].id)

        failures = 0

        def failed(n: int, exc: Exception, delay: float) -> None:
            nonlocal failures
            failures = n
            if n == 1:
                _LOG.error("could not raise %s for %s; retrying in %.1f s", alert.type, alert.site, delay, exc_info=exc)
            elif n % 10 == 0:
                _LOG.error("could not raise %s for %s (attempt %d: %s); still retrying", alert.type, alert.site, n, exc)

        await retry(attempt, backoff=Backoff(first_s=0.5, max_s=self.retry_max_s), on_failure=failed)
        if failures:
            _LOG.warning("raised %s for %s after %d failed attempts", alert.type, alert.site, failures)

    async def stored(self, *, timeout: float) -> bool:
        """Wait up to ``timeout`` for the alerts raised so far to be stored (True once they all are)."""
        raising = set(self.unstored)
        if not raising:
            return True
        _, pending = await asyncio.wait(raising, timeout=timeout)
        return not pending

    def cancel(self) -> None:
        """Give up every raise under way (a stop with the store down: the next start raises them from history)."""
        for task in list(self.tasks):
            task.cancel()

    async def wait(self) -> None:
        """Wait until every raise under way has ended."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def already_stored(store: AlertStore, alert: Alert) -> bool:
    """True if the store holds this alert already (same site, type and device, raised at or after its time).

    Recovery tells alerts it finds again in the stored history apart from new ones with this: a restart's replay (or a
    partition's new owner) finds every alert since its snapshot, most of them stored before.
    """
    for record in store.list_alerts(site=alert.site, alert_type=alert.type, limit=20):
        if record.device == alert.device and max(record.raised_ms, record.last_seen_ms) >= alert.time_ms:
            return True
    return False


async def resume_owed(
    service: AlertService, *, started_ms: int, stop: asyncio.Event, owns: Callable[[str], bool] | None = None
) -> None:
    """What a killed predecessor owed people (:meth:`AlertService.resume`), retried while the store is down."""

    async def attempt() -> None:
        if not stop.is_set():
            await service.resume(started_ms=started_ms, owns=owns)

    async def pause(delay: float) -> None:  # a stop ends the wait (and the next attempt does nothing)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def failed(_n: int, exc: Exception, _delay: float) -> None:
        _LOG.error("sending what the last owner owed failed; retrying", exc_info=exc)

    await retry(attempt, backoff=Backoff(first_s=1.0, max_s=30.0), on_failure=failed, wait=pause)
