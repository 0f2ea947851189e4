"""Issue 17 item 3: a life-safety alert is stored and notified without queueing behind other work.

Two places where an SOS used to wait behind bulk work in the same process:

* the event loop's shared thread pool (``asyncio.to_thread``), which also carries the ingest spool and
  dead-letter writes, snapshot writes, baseline refits and every other alert's bookkeeping;
* SQLite's single write lock, where writers of the same process met SQLite's sleeping busy handler in no
  particular order (alerts/store/gate.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from store_helpers import DAYTIME, FakeClock, Webhook, make_alert, make_service, registry_with_channels, store_raise

from alerts.audit import AuditAction, Entity
from alerts.store.gate import WriteGate
from alerts.store.repository import SYSTEM, AlertStore
from detection.models import AlertType, Severity

BUSY_JOBS = 64
"""More than the default thread pool's workers (min(32, cores + 4)): every one busy, the rest queued."""


async def test_sos_is_stored_and_notified_while_the_shared_thread_pool_is_busy(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    service = make_service(store, clock)
    release = threading.Event()
    # Bulk work holding every thread of the loop's shared pool, with more queued behind it.
    busy = [asyncio.ensure_future(asyncio.to_thread(release.wait)) for _ in range(BUSY_JOBS)]
    try:
        record = await asyncio.wait_for(service.raise_alert(make_alert(AlertType.SOS, device="band1")), 20)
        # Order, not time: the alert is committed and its workers told while all of that work is still held.
        assert record is not None and record.life_safety
        assert not any(job.done() for job in busy)
        assert [a.type for a in store.list_alerts(site="h0001")] == [AlertType.SOS]
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        assert store.notifications(alert_id=record.id)
    finally:
        release.set()
        await asyncio.gather(*busy)
        service.close()


def _waiter(gate: WriteGate, *, urgent: bool, name: str, order: list[str]) -> Callable[[], None]:
    def run() -> None:
        with gate.held(urgent=urgent):
            order.append(name)

    return run


def _wait_until(check: Callable[[], bool]) -> None:
    event = threading.Event()
    while not check():
        event.wait(0.001)


def test_an_urgent_writer_goes_before_ordinary_writers_that_queued_earlier() -> None:
    gate = WriteGate()
    order: list[str] = []
    gate.acquire()  # a bulk write in progress
    ordinary = [threading.Thread(target=_waiter(gate, urgent=False, name=f"bulk{i}", order=order)) for i in range(3)]
    for t in ordinary:
        t.start()
    _wait_until(lambda: gate.waiting == (0, 3))
    urgent = threading.Thread(target=_waiter(gate, urgent=True, name="sos", order=order))
    urgent.start()
    _wait_until(lambda: gate.waiting == (1, 3))
    gate.release()
    for t in [*ordinary, urgent]:
        t.join(10)
    assert order[0] == "sos"
    assert sorted(order[1:]) == ["bulk0", "bulk1", "bulk2"]


def test_the_gate_is_reentrant_for_its_holder() -> None:
    gate = WriteGate()
    with gate.held(), gate.held(urgent=True):
        assert gate.waiting == (0, 0)
    done = threading.Event()
    threading.Thread(target=lambda: (gate.acquire(), gate.release(), done.set())).start()
    assert done.wait(10)


def test_a_life_safety_raise_goes_through_the_gate_before_queued_bookkeeping(tmp_path: Path, webhook: Webhook) -> None:
    """On SQLite, the SOS insert commits before the audit writes that were already waiting for the lock.

    (PostgreSQL has no gate: concurrent writers lock rows, nothing queues in this process.)
    """
    store = AlertStore(url=f"sqlite:///{tmp_path / 'alerts.db'}")
    store.import_registry(registry_with_channels(webhook), now_ms=DAYTIME)
    gate = store.write_gate
    assert gate is not None
    gate.acquire()  # an ordinary write transaction in progress
    threads = [
        threading.Thread(
            target=store.audit,
            kwargs={
                "now_ms": DAYTIME,
                "actor": SYSTEM,
                "channel": "system",
                "action": AuditAction.ALERT_NOTIFIED,
                "entity": Entity.ALERT,
                "entity_id": 0,
                "detail": {"n": str(i)},
            },
        )  # fmt: skip
        for i in range(4)
    ]
    for t in threads:
        t.start()
    _wait_until(lambda: gate.waiting == (0, 4))
    sos = make_alert(AlertType.SOS, device="band1", severity=Severity.CRITICAL)
    raiser = threading.Thread(target=store_raise, args=(store, sos))
    raiser.start()
    _wait_until(lambda: gate.waiting == (1, 4))
    gate.release()
    for t in [*threads, raiser]:
        t.join(30)
    entries = store.audit_entries(limit=100)
    store.close()
    actions = [e.action for e in sorted(entries, key=lambda e: e.id)]
    raised_at = actions.index(AuditAction.ALERT_RAISED.value)
    assert actions[raised_at + 1 :].count(AuditAction.ALERT_NOTIFIED.value) == 4, actions
