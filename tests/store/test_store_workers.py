"""Assignment, worker accounts and read-only sessions of the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from store_helpers import (
    DAYTIME,
    FakeClock,
    Webhook,
    load_registry_example,
    make_alert,
    make_service,
    registry_with_channels,
    store_raise,
)

from alerts.lifecycle import Action, Channel, Outcome, State, next_state
from alerts.store.errors import (
    AlertNotFound,
    InvalidRecord,
    InvalidTransition,
    RecordConflict,
    RecordNotFound,
    WorkerInactive,
)
from alerts.store.repository import AlertStore
from alerts.store.tables import AuditRow


@pytest.fixture
def registered(store: AlertStore) -> AlertStore:
    store.import_registry(load_registry_example(), now_ms=1)
    return store


def audit_actions(store: AlertStore, entity_id: str) -> list[str]:
    return [e.action for e in store.audit_entries(entity_id=entity_id)]


# ---------------------------------------------------------------- assignment


def test_store_assign_sets_owner_records_event_and_audit(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    result = registered.assign(alert_id, "W02", actor="W09", channel=Channel.CONSOLE, now_ms=DAYTIME + 5000)
    assert result.previous_owner is None and result.worker.id == "W02"
    assert result.record.owner_id == "W02" and result.record.state == State.OPEN.value
    assert result.record.ack_ms is None  # assigning is not taking: the assignee still acknowledges
    event = registered.events(alert_id)[-1]
    assert (event.action, event.actor, event.channel, event.note) == ("assign", "W09", "console", "W02")
    assert event.from_state == event.to_state == "open"
    entry = registered.audit_entries(entity_id=str(alert_id))[-1]
    assert entry.action == "alert.assigned" and entry.actor == "W09"
    assert entry.detail == {"worker": "W02", "previous": None}

    # Reassigning replaces the owner; the acknowledgement by the assignee keeps them as owner.
    again = registered.assign(alert_id, "W01", actor="W09", channel=Channel.API, now_ms=DAYTIME + 6000)
    assert again.previous_owner == "W02" and again.record.owner_id == "W01"
    registered.transition(alert_id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.LINK, now_ms=DAYTIME + 7000)
    assert registered.get_alert(alert_id).owner_id == "W01"


def test_store_assign_refusals_are_typed(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    with pytest.raises(AlertNotFound):
        registered.assign(alert_id + 99, "W01", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    with pytest.raises(RecordNotFound) as unknown:
        registered.assign(alert_id, "nobody", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    assert unknown.value.kind == "worker" and unknown.value.record_id == "nobody"
    registered.set_worker_active("W01", False, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    with pytest.raises(WorkerInactive) as inactive:
        registered.assign(alert_id, "W01", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    assert inactive.value.worker_id == "W01" and "inactive" in str(inactive.value)
    registered.transition(
        alert_id, Action.RESOLVE, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME, outcome=Outcome.FALSE_ALARM
    )
    with pytest.raises(InvalidTransition) as closed:
        registered.assign(alert_id, "W02", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    assert closed.value.action == "assign" and closed.value.state == "resolved"
    # Nothing of the refused attempts was recorded.
    assert [e.action for e in registered.events(alert_id)] == ["raise", "resolve"]
    assert "alert.assigned" not in audit_actions(registered, str(alert_id))


def test_assign_is_not_a_plain_transition(registered: AlertStore) -> None:
    with pytest.raises(InvalidTransition, match="assign needs a worker"):
        next_state(State.OPEN, Action.ASSIGN, life_safety=True)
    alert_id = store_raise(registered, make_alert()).record.id
    with pytest.raises(InvalidTransition):
        registered.transition(alert_id, Action.ASSIGN, actor="W01", channel=Channel.API, now_ms=DAYTIME)
    assert registered.get_alert(alert_id).owner_id is None


async def test_service_assign_notifies_the_assignee_once(store: AlertStore, webhook: Webhook, clock: FakeClock) -> None:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    service = make_service(store, clock)
    record = await service.raise_alert(make_alert(time_ms=clock()))
    assert record is not None
    webhook.wait(2)  # the initial SOS notifications (grid worker + duty officer)
    before = len(webhook.messages)
    clock.advance(30)
    result = await service.assign(record.id, "W03", actor="W02", channel=Channel.CONSOLE)
    assert result.record.owner_id == "W03"
    [message] = webhook.wait(before + 1)[before:]
    assert message["path"] == "/W03" and "已指派给您" in message["title"]
    sent = [n for n in store.notifications(alert_id=record.id) if n.worker_id == "W03"]
    assert [(n.kind, n.status) for n in sent] == [("assigned", "sent")]
    assert "W03" in store.get_alert(record.id).notified  # reminders now reach the assignee too
    # Assigning the same person again records the step but does not message them twice.
    await service.assign(record.id, "W03", actor="W02", channel=Channel.CONSOLE)
    assert [e.action for e in store.events(record.id)][-2:] == ["assign", "assign"]
    assert len([n for n in store.notifications(alert_id=record.id) if n.worker_id == "W03"]) == 1


# ---------------------------------------------------------------- worker accounts


def test_store_create_worker_checks_and_audits(registered: AlertStore) -> None:
    made = registered.create_worker(
        worker_id="W10", name=" 孙网格 ", role="grid_worker", scope="G01", phone="13800000010",
        password_hash="$argon2id$x", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME,
    )  # fmt: skip
    assert (made.id, made.name, made.role, made.scope, made.active) == ("W10", "孙网格", "grid_worker", "G01", True)
    assert registered.worker_record("W10") == made
    [entry] = registered.audit_entries(entity_id="W10")
    assert (entry.action, entry.actor, entry.channel) == ("worker.created", "W02", "console")
    assert entry.detail == {"role": "grid_worker", "scope": "G01", "password": True}
    assert "$argon2id$x" not in str(entry.detail)
    # A new grid worker is a recipient at once (the registry cache is invalidated).
    ctx = registered.site_context("h0001")
    assert "W10" in [w.id for w in registered.recipients(ctx, ["grid_worker"])]

    def create(**kw: str) -> None:
        args = {"worker_id": "W11", "name": "周", "role": "grid_worker", "scope": "G01", "phone": "13800000011"}
        registered.create_worker(**{**args, **kw}, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)  # type: ignore[arg-type]

    with pytest.raises(RecordConflict) as taken:
        create(worker_id="W01")
    assert (taken.value.field, taken.value.value) == ("id", "W01")
    with pytest.raises(RecordConflict) as phone:
        create(phone="13800000001")
    assert phone.value.field == "phone" and isinstance(phone.value, ValueError)
    with pytest.raises(InvalidRecord, match="'C01' is not a known grid"):
        create(scope="C01")  # a community is no grid: the worker would see nothing
    with pytest.raises(InvalidRecord, match="unknown role"):
        create(role="boss")
    with pytest.raises(InvalidRecord, match="does not match"):
        create(worker_id="bad id")
    with pytest.raises(InvalidRecord, match="not a known node"):
        create(role="admin", scope="X99")
    registered.create_worker(
        worker_id="A2", name="管理", role="admin", scope="", phone="", actor="W02", channel="console", now_ms=DAYTIME
    )
    assert registered.worker_record("W11") is None
    assert audit_actions(registered, "W11") == []


def test_store_worker_activation_and_password_are_audited(registered: AlertStore) -> None:
    off = registered.set_worker_active("W01", False, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    assert off.active is False
    ctx = registered.site_context("h0001")
    assert "W01" not in [w.id for w in registered.recipients(ctx, ["grid_worker", "community_duty"])]
    registered.set_worker_active("W01", False, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME + 1)
    on = registered.set_worker_active("W01", True, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME + 2)
    assert on.active is True
    registered.set_password_hash("W01", "$argon2id$new", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME + 3)
    record = registered.worker_record("W01")
    assert record is not None and record.password_hash == "$argon2id$new"
    entries = registered.audit_entries(entity_id="W01")
    # Setting the state it already had writes nothing; the hash itself is never in the log.
    assert [e.action for e in entries] == ["worker.deactivated", "worker.activated", "worker.password_set"]
    assert all(e.actor == "W02" and "argon2" not in str(e.detail) for e in entries)
    with pytest.raises(RecordNotFound):
        registered.set_worker_active("nobody", False, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)
    with pytest.raises(RecordNotFound):
        registered.set_password_hash("nobody", "h", actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME)


def test_store_concurrent_creation_of_one_worker_makes_one_row(db_url: str, registered: AlertStore) -> None:
    other = AlertStore(url=db_url, migrate=False)
    barrier = threading.Barrier(2)

    def create(store: AlertStore) -> str:
        barrier.wait()
        try:
            store.create_worker(
                worker_id="W20", name="并发", role="grid_worker", scope="G01", phone="", actor="W02",
                channel="console", now_ms=DAYTIME,
            )  # fmt: skip
        except RecordConflict:
            return "conflict"
        return "created"

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = sorted(pool.map(create, [registered, other]))
    finally:
        other.close()
    assert results == ["conflict", "created"]
    assert audit_actions(registered, "W20") == ["worker.created"]


# ---------------------------------------------------------------- read-only sessions


def test_store_read_session_proceeds_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """SQLite: the public read session takes no write lock, so it never queues behind BEGIN IMMEDIATE."""
    path = tmp_path / "alerts.db"
    store = AlertStore(url=f"sqlite:///{path}")
    try:
        store.import_registry(load_registry_example(), now_ms=1)
        writer = sqlite3.connect(path, isolation_level=None, timeout=0)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO audit_log (time_ms, actor, channel, action, entity, entity_id, detail) "
            "VALUES (2, 'w', 'api', 'x', 'worker', 'W01', '{}')"
        )

        def read() -> int:
            with store.read_session() as s:
                return int(s.execute(select(func.count()).select_from(AuditRow)).scalar_one())

        pool = ThreadPoolExecutor(max_workers=1)
        try:
            # A deadlock guard, not a timing assertion: a locked read would wait for busy_timeout (30 s).
            seen = pool.submit(read).result(timeout=20)
        finally:
            writer.execute("COMMIT")  # before joining the reader, so a failing run ends at once
            writer.close()
            pool.shutdown(wait=True)
        assert seen == 1  # the snapshot before the uncommitted write (only the import's entry)
        assert len(store.audit_entries()) == 2
    finally:
        store.close()
