"""The notification outbox: what a killed sender owed people is sent after its restart (both databases).

A "kill" here is the service's task cancelled while the webhook holds its requests unanswered, then a new store and
service on the same database: nothing more is written after the cancellation, as after ``kill -9``. The real kill of
``eldercare serve`` is in tests/chaos/test_notify_durable.py.
"""

from __future__ import annotations

import asyncio

import pytest
from store_helpers import FakeClock, Webhook, make_alert, make_service, registry_with_channels, store_raise
from support.arc_receiver import ArcReceiver

from alerts.arc.channel import ArcChannel
from alerts.arc.events import ArcConfig
from alerts.escalation import EscalationStep, Policy, PolicyBook, PolicySet, Role
from alerts.lifecycle import Action, Channel, Outcome
from alerts.service import SEND_LEASE_S, AlertService
from alerts.store.repository import AlertStore
from detection.models import AlertType

FAST_STREET = PolicyBook(
    default=PolicySet(
        critical=Policy(
            notify=(Role.GRID_WORKER, Role.COMMUNITY_DUTY),
            escalate=(EscalationStep(after_s=300, roles=(Role.STREET,)),),
        )
    )
)
"""Critical alerts: grid worker and duty officer at once, the street after 5 min, no reminders."""


@pytest.fixture
def setup(store: AlertStore, webhook: Webhook, clock: FakeClock) -> AlertStore:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    return store


def statuses(store: AlertStore, alert_id: int) -> list[tuple[str, str, str]]:
    return sorted((n.worker_id, n.kind, n.status) for n in store.notifications(alert_id=alert_id))


async def killed_while_sending(service: AlertService, store: AlertStore, webhook: Webhook, work: object) -> None:
    """Run ``work`` (a coroutine) until the webhook holds its requests, then stop it dead."""
    task = asyncio.create_task(work)  # type: ignore[arg-type]
    await asyncio.to_thread(webhook.wait_held, 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    service.close()
    store.close()
    webhook.release()


async def test_an_alert_stored_but_never_notified_is_notified_by_the_restarted_backend(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    # Killed between the alert's insert and the write of its messages: stored, nobody told.
    record = store_raise(setup, make_alert(AlertType.SOS, time_ms=clock()), now_ms=clock()).record
    assert record.last_notified_ms is None
    setup.close()
    clock.advance(20)

    restarted = AlertStore(url=db_url)
    try:
        service = make_service(restarted, clock, sender="backend-1")
        assert await service.resume(started_ms=clock()) == 1
        got = webhook.wait(2)
        assert sorted(m["path"] for m in got) == ["/W01", "/W02"]
        assert statuses(restarted, record.id) == [("W01", "initial", "sent"), ("W02", "initial", "sent")]
        assert restarted.get_alert(record.id).notified == ["W01", "W02"]
        # Once told, a later start owes nothing: the pages are not sent twice.
        assert await make_service(restarted, clock, sender="backend-1").resume(started_ms=clock.advance(5)) == 0
        assert len(webhook.messages) == 2
    finally:
        restarted.close()


async def test_first_pages_in_flight_at_a_kill_are_sent_by_the_restarted_backend(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    # The first messages go out before their rows are written: killed meanwhile, the alert counts as nobody told.
    first = make_service(setup, clock, sender="backend-1")
    webhook.hold("W01", "W02")
    await killed_while_sending(first, setup, webhook, first.raise_alert(make_alert(AlertType.SOS, time_ms=clock())))
    clock.advance(3)

    restarted = AlertStore(url=db_url)
    try:
        (alert,) = restarted.list_alerts(alert_type=AlertType.SOS)
        assert alert.last_notified_ms is None and statuses(restarted, alert.id) == []
        assert await make_service(restarted, clock, sender="backend-1").resume(started_ms=clock()) == 1
        got = webhook.wait(2)
        assert sorted(m["path"] for m in got) == ["/W01", "/W02"]
        assert all("SOS" in m["title"] for m in got)
        assert statuses(restarted, alert.id) == [("W01", "initial", "sent"), ("W02", "initial", "sent")]
    finally:
        restarted.close()


async def killed_while_reminding(service: AlertService, store: AlertStore, webhook: Webhook, clock: FakeClock) -> int:
    """Raise an SOS (both first pages delivered), then kill the service while its 2-minute reminders are sent."""
    record = await service.raise_alert(make_alert(AlertType.SOS, time_ms=clock()))
    assert record is not None
    webhook.wait(2)
    clock.advance(120)
    webhook.hold("W01", "W02")
    await killed_while_sending(service, store, webhook, service.tick())
    return record.id


async def test_reminders_in_flight_at_a_kill_are_sent_at_once_by_the_same_sender_after_its_restart(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    alert_id = await killed_while_reminding(make_service(setup, clock, sender="backend-1"), setup, webhook, clock)
    clock.advance(3)

    restarted = AlertStore(url=db_url)
    try:
        assert ("W01", "reminder", "sending") in statuses(restarted, alert_id)  # written before it went out
        service = make_service(restarted, clock, sender="backend-1")
        assert await service.resume(started_ms=clock()) == 0  # nothing to raise again: only to send again
        got = webhook.wait(4)[2:]
        assert sorted(m["path"] for m in got) == ["/W01", "/W02"]
        assert all("提醒" in m["title"] for m in got)
        assert [s for s in statuses(restarted, alert_id) if s[1] == "reminder"] == [
            ("W01", "reminder", "sent"),
            ("W02", "reminder", "sent"),
        ]
    finally:
        restarted.close()


async def test_another_senders_messages_in_flight_wait_for_its_lease(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    policies = PolicyBook(default=PolicySet(critical=Policy(notify=(Role.GRID_WORKER, Role.COMMUNITY_DUTY),
                                                            remind_every_s=120, max_reminders=1)))  # fmt: skip
    first = make_service(setup, clock, sender="backend-1", policies=policies)
    alert_id = await killed_while_reminding(first, setup, webhook, clock)

    other = AlertStore(url=db_url)
    try:
        service = make_service(other, clock, sender="console-1", policies=policies)
        await service.resume(started_ms=clock())
        # The first sender may still be alive and waiting for its answers: its rows are not taken before the lease.
        report = await service.tick(clock.advance(SEND_LEASE_S - 1))
        assert report.retries == 0 and len(webhook.messages) == 2
        report = await service.tick(clock.advance(1))
        assert report.retries == 2
        assert sorted(m["path"] for m in webhook.wait(4)[2:]) == ["/W01", "/W02"]
        assert [s for s in statuses(other, alert_id) if s[1] == "reminder"] == [
            ("W01", "reminder", "sent"),
            ("W02", "reminder", "sent"),
        ]
    finally:
        other.close()


async def test_a_dead_workers_messages_in_flight_are_put_back_by_a_live_peer_and_only_theirs(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    """Partition workers get a new id at every start: a live one puts back what dead ones were sending.

    Only rows of senders with the prefix and not in the live list: a live worker's (it may be waiting for its
    answers) and another kind of process's (a backend, a console) stay leased. The cluster: tests/scale/
    test_scale_worker_alerts.py::test_an_escalation_in_flight_when_its_worker_is_killed_is_sent_by_a_live_worker_at_once.
    """
    alert_id = await killed_while_reminding(make_service(setup, clock, sender="worker:w1"), setup, webhook, clock)
    other = AlertStore(url=db_url)
    try:
        peer = make_service(other, clock, sender="worker:w2")
        assert await peer.release_gone_senders("worker:", ["worker:w1", "worker:w2"]) == 0  # w1 still beats
        assert await make_service(other, clock, sender="console").release_gone_senders("backend", ["x"]) == 0
        assert await peer.release_gone_senders("worker:", ["worker:w2"]) == 2
        report = await peer.tick(clock.advance(1))  # far inside the old 120-s lease
        assert report.retries == 2
        assert sorted(m["path"] for m in webhook.wait(4)[2:]) == ["/W01", "/W02"]
        assert [s for s in statuses(other, alert_id) if s[1] == "reminder"] == [
            ("W01", "reminder", "sent"),
            ("W02", "reminder", "sent"),
        ]
        with pytest.raises(ValueError, match="prefix"):
            other.release_gone_senders("", ["worker:w2"], due_ms=clock())
    finally:
        other.close()


async def test_messages_owed_for_an_alert_resolved_meanwhile_are_not_sent(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    alert_id = await killed_while_reminding(make_service(setup, clock, sender="backend-1"), setup, webhook, clock)

    restarted = AlertStore(url=db_url)
    try:
        restarted.transition(alert_id, Action.RESOLVE, actor="W02", channel=Channel.CONSOLE, now_ms=clock.advance(60),
                             outcome=Outcome.FALSE_ALARM)  # fmt: skip
        await make_service(restarted, clock, sender="backend-1").resume(started_ms=clock())
        assert [s for s in statuses(restarted, alert_id) if s[1] == "reminder"] == [
            ("W01", "reminder", "skipped"),
            ("W02", "reminder", "skipped"),
        ]
        assert len(webhook.messages) == 2  # the first pages only
    finally:
        restarted.close()


async def test_an_escalation_in_flight_at_a_kill_is_sent_after_the_restart(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    first = make_service(setup, clock, sender="backend-1", policies=FAST_STREET)
    start = clock()
    await first.raise_alert(make_alert(AlertType.SOS, time_ms=start))
    webhook.wait(2)
    clock.advance(300)
    webhook.hold("W03")
    # The street's timer is due: the tick moves it and queues the message in one transaction, then is killed.
    task = asyncio.create_task(first.tick())
    await asyncio.to_thread(webhook.wait_held, 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first.close()
    setup.close()
    webhook.release()

    restarted = AlertStore(url=db_url)
    try:
        (alert,) = restarted.list_alerts(alert_type=AlertType.SOS)
        assert alert.escalation_step == 1 and alert.escalate_due_ms is None  # the timer has moved on
        clock.advance(10)
        await make_service(restarted, clock, sender="backend-1", policies=FAST_STREET).resume(started_ms=clock())
        (street,) = [m for m in webhook.wait(3) if m["path"] == "/W03"]
        assert "升级" in street["title"]
        assert ("W03", "escalation", "sent") in statuses(restarted, alert.id)
    finally:
        restarted.close()


async def test_the_arc_event_of_an_alert_stored_but_never_notified_is_sent_by_the_restarted_backend(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    # Killed between the insert and the ARC event's row: the alarm-receiving centre would never have heard of it.
    record = store_raise(setup, make_alert(AlertType.SOS, time_ms=clock(), device="band1"), now_ms=clock()).record
    setup.close()
    restarted = AlertStore(url=db_url)
    try:
        with ArcReceiver() as receiver:
            config = ArcConfig(host="127.0.0.1", port=receiver.port, accounts={"h0001": "1234"}, timeout_s=10.0)
            arc = ArcChannel(store=restarted, config=config, clock=clock)
            service = make_service(restarted, clock, sender="backend-1", arc=arc)
            assert await service.resume(started_ms=clock.advance(5)) == 1
            await arc.idle()
            (event,) = receiver.wait(1)
            assert event.contact_id == ("1", "101", "01", "001")
            assert sorted(m["path"] for m in webhook.wait(2)) == ["/W01", "/W02"]
            # A second failure-and-retry of the same raise writes no second ARC event.
            assert not await service.notify_owed(record.id)
            arcs = [n for n in restarted.notifications(alert_id=record.id) if n.channel == "arc"]
            assert [(n.kind, n.status) for n in arcs] == [("arc_event", "sent")]
    finally:
        restarted.close()


async def test_the_brokers_copy_after_a_restart_and_the_restarts_own_resume_page_once(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    # Killed after the insert and before its acknowledgement: the broker delivers the SOS again after the restart,
    # while the restarted backend's resume finds the alert nobody was told about. One page per person, not two.
    alert = make_alert(AlertType.SOS, time_ms=clock())
    store_raise(setup, alert, now_ms=clock())
    service = make_service(setup, clock, sender="backend-1")
    webhook.hold("W01", "W02")
    both = asyncio.gather(service.resume(started_ms=clock.advance(5)), service.raise_alert(alert))
    await asyncio.to_thread(webhook.wait_held, 2)
    webhook.release()
    await both
    (record,) = setup.list_alerts(alert_type=AlertType.SOS)
    sent = setup.notifications(alert_id=record.id)
    assert sorted(n.worker_id for n in sent) == ["W01", "W02"], [(n.worker_id, n.kind, n.status) for n in sent]
    assert len(webhook.held) + len(webhook.messages) == 2
