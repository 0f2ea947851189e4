"""Issue 17: on SQLite a life-safety alert is stored on the event loop when the write lock is free, without a thread.

Under load a thread of the urgent lane first had to win the GIL from the busy event loop, and again after each
SQLite statement: in the 10,000-home benchmark that waiting was most of the time between detection and the stored
row (docs/benchmarks.md, "Issue 17: where a loaded SOS waits"). The insert never waits on the loop: when another
writer holds the lock (this process's write gate, or another process) it goes to the urgent lane as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from store_helpers import BOOK, FakeClock, Webhook, make_alert, make_service, registry_with_channels

from alerts.escalation import initial_timers
from alerts.service import URGENT_THREADS
from alerts.store.errors import WriteBusy
from alerts.store.gate import WriteGate
from alerts.store.records import RaiseResult
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity


@pytest.fixture
def sqlite_store(tmp_path: Path, webhook: Webhook, clock: FakeClock) -> Iterator[AlertStore]:
    """A migrated SQLite file store with the example registry (the backend's default database)."""
    store = AlertStore(url=f"sqlite:///{tmp_path / 'alerts.db'}")
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    yield store
    store.close()


def raise_nowait(store: AlertStore, alert: Alert) -> RaiseResult:
    policy = BOOK.policy_for(community="C01", alert_type=alert.type, severity=alert.severity)
    return store.raise_alert(
        alert,
        now_ms=alert.time_ms,
        context=store.site_context(alert.site),
        policy=msgspec.to_builtins(policy),
        timers=initial_timers(policy, alert.time_ms),
        nowait=True,
    )


def _hold(gate: WriteGate) -> tuple[threading.Thread, threading.Event]:
    """A writer of this process in its transaction until the returned event is set."""
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.held():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert entered.wait(10)
    return thread, leave


async def _until(check: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_sos_is_stored_while_every_thread_of_the_urgent_lane_is_busy(
    sqlite_store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    store = sqlite_store
    service = make_service(store, clock)
    release = threading.Event()
    # Every thread of the urgent lane held (as by a burst's recipients and notification rows).
    held = [asyncio.ensure_future(service._in_store(True, release.wait)) for _ in range(URGENT_THREADS)]
    raising = asyncio.ensure_future(service.raise_alert(make_alert(AlertType.SOS, device="band1")))
    try:
        # Order, not time: the row is committed while every lane thread is still held.
        await _until(lambda: [a.type for a in store.list_alerts(site="h0001")] == [AlertType.SOS])
        assert not any(job.done() for job in held)
    finally:
        release.set()
        await asyncio.gather(*held)
    record = await asyncio.wait_for(raising, 20)
    assert record is not None and record.life_safety
    assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]  # then notified as before
    service.close()


async def test_sos_goes_to_the_lane_without_blocking_the_loop_while_another_process_holds_the_write_lock(
    sqlite_store: AlertStore, tmp_path: Path, clock: FakeClock
) -> None:
    store = sqlite_store
    service = make_service(store, clock)
    other = sqlite3.connect(tmp_path / "alerts.db", isolation_level=None)  # e.g. the dashboards process
    other.execute("BEGIN IMMEDIATE")
    order: list[str] = []
    loop = asyncio.get_running_loop()
    raising = asyncio.ensure_future(service.raise_alert(make_alert(AlertType.SOS, device="band1")))
    raising.add_done_callback(lambda _: order.append("stored"))
    ticked = loop.create_future()
    loop.call_later(0.01, lambda: (order.append("loop ran"), ticked.set_result(None)))
    try:
        await asyncio.wait_for(ticked, 20)  # the loop is free while the insert waits for the other process
    finally:
        other.execute("COMMIT")
        other.close()
    record = await asyncio.wait_for(raising, 20)
    assert record is not None and record.life_safety
    assert order == ["loop ran", "stored"]
    assert [a.type for a in store.list_alerts(site="h0001")] == [AlertType.SOS]
    service.close()


def test_a_nowait_write_fails_at_once_when_the_gate_or_the_lock_is_held(
    sqlite_store: AlertStore, tmp_path: Path
) -> None:
    store = sqlite_store
    gate = store.write_gate
    assert gate is not None and store.writes_without_waiting
    sos = make_alert(AlertType.SOS, device="band1", severity=Severity.CRITICAL)
    holder, leave = _hold(gate)
    try:
        with pytest.raises(WriteBusy) as busy:
            raise_nowait(store, sos)
        assert busy.value.holder == "this process"
    finally:
        leave.set()
        holder.join(10)
    other = sqlite3.connect(tmp_path / "alerts.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WriteBusy) as busy:
            raise_nowait(store, sos)
        assert busy.value.holder == "another connection"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.list_alerts(site="h0001") == []  # nothing written by either attempt
    assert raise_nowait(store, sos).created


def test_try_acquire_takes_the_gate_only_when_that_needs_no_waiting() -> None:
    gate = WriteGate()
    assert gate.try_acquire()
    assert gate.try_acquire(urgent=True)  # re-entrant for its holder
    gate.release()
    gate.release()
    holder, leave = _hold(gate)
    assert not gate.try_acquire(urgent=True)
    urgent = threading.Thread(target=lambda: (gate.acquire(urgent=True), gate.release()))
    urgent.start()
    while gate.waiting != (1, 0):
        urgent.join(0.001)
    leave.set()
    holder.join(10)
    urgent.join(10)
    assert gate.try_acquire()
    gate.release()
