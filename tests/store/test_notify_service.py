"""The alert service on real receivers (HTTP webhook, SMTP) and both databases, in simulated time."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from store_helpers import DAYTIME, T0, FakeClock, Webhook, links_in, make_service, registry_with_channels
from support.tamper import tampered

from alerts.audit import AuditAction, Entity
from alerts.lifecycle import Action, Channel, Outcome
from alerts.links import LinkSigner
from alerts.store.errors import InvalidTransition, LinkError
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity
from eldercare.servers._child import free_port

MIN = 60.0


def sos(time_ms: int, *, site: str = "h0001") -> Alert:
    return Alert(
        site=site,
        type=AlertType.SOS,
        severity=Severity.CRITICAL,
        time_ms=time_ms,
        explanation="SOS button pressed on wristband band1",
        explanation_zh="手环 band1 按下 SOS 紧急求助键",
        device="band1",
    )


def device_alert(time_ms: int, device: str, *, clears: bool = False) -> Alert:
    return Alert(
        site="h0001",
        type=AlertType.DEVICE_OFFLINE,
        severity=Severity.INFO,
        time_ms=time_ms,
        explanation=f"{device} silent for 3 cadences",
        explanation_zh=f"{device} 已超过 3 个上报周期无数据",
        device=device,
        clears=clears,
    )


@pytest.fixture
def setup(store: AlertStore, webhook: Webhook, clock: FakeClock) -> AlertStore:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    return store


def paths(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m["path"] for m in messages)


async def test_notify_sos_link_ack_stops_reminders_and_resolve_is_audited(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    service = make_service(setup, clock)
    record = await service.raise_alert(sos(clock()))
    assert record is not None
    first = webhook.wait(2)
    assert paths(first) == ["/W01", "/W02"]  # grid worker and community duty officer at once
    msg = webhook.to("W01")[0]
    assert "张桂英" in msg["title"] and "SOS" in msg["title"]
    assert "幸福路 12 号 3 栋 402" in msg["message"] and "说明：手环按下 SOS 紧急求助键" in msg["message"]
    links = links_in(msg)
    assert len(links) == 2, msg  # the ack link, then the page link
    ack_token, page_token = links
    clock.advance(40)
    result = await service.consume_link(ack_token)
    assert result.applied and result.record.state == "acknowledged" and result.record.owner_id == "W01"
    assert result.record.time_to_ack_ms == 40_000
    # following the same link again is harmless
    again = await service.consume_link(ack_token)
    assert not again.applied and again.record.state == "acknowledged"
    # the duty officer's ack link now reports who took it
    other = await service.consume_link(links_in(webhook.to("W02")[0])[0])
    assert not other.applied and other.reason == "already acknowledged by W01"
    # reminders stop: nothing more is sent at the 2 min and 4 min marks, nor at the street step
    for _ in range(3):
        clock.advance(2 * MIN)
        report = await service.tick()
        assert report.reminders == 0 and report.escalations == 0
    assert len(webhook.messages) == 2
    page = await service.open_link(page_token)
    assert page.state == "acknowledged" and set(page.actions) == {"en_route", "on_site", "resolve"}
    assert page.alert.resident_name == "张桂英"
    await service.consume_link(page.actions["en_route"])
    clock.advance(10 * MIN)
    await service.consume_link(page.actions["on_site"])
    with pytest.raises(InvalidTransition, match="outcome"):
        await service.consume_link(page.actions["resolve"])
    done = await service.consume_link(
        page.actions["resolve"], outcome=Outcome.ASSISTED_AT_HOME, note="老人摔倒后已扶起"
    )
    assert done.applied and done.record.state == "resolved" and done.record.outcome == "assisted_at_home"
    entries = setup.audit_entries(entity=Entity.ALERT, entity_id=str(record.id))
    steps = [(e.action, e.actor, e.detail.get("to")) for e in entries]
    assert steps == [
        ("alert.raised", "system", None),
        ("alert.notified", "system", None),
        ("alert.notified", "system", None),
        ("alert.transition", "W01", "acknowledged"),
        ("alert.read", "W01", None),
        ("alert.transition", "W01", "en_route"),
        ("alert.transition", "W01", "on_site"),
        ("alert.transition", "W01", "resolved"),
    ]
    assert all(e.time_ms >= DAYTIME for e in entries)
    sent = setup.notifications(alert_id=record.id)
    assert sorted((n.worker_id, n.kind, n.channel, n.status) for n in sent) == [
        ("W01", "initial", "json", "sent"), ("W02", "initial", "json", "sent"),
    ]  # fmt: skip


async def test_notify_escalation_cadence_in_simulated_time(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    service = make_service(setup, clock)
    start = clock()
    record = await service.raise_alert(sos(start))
    assert record is not None
    webhook.wait(2)
    timeline: list[tuple[int, list[str]]] = []
    for second in range(0, 33 * 60 + 1, 30):
        clock.now_ms = start + second * 1000
        before = len(webhook.messages)
        await service.tick()
        new = webhook.messages[before:]
        if new:
            timeline.append((second, [f"{m['path'][1:]}:{_kind(m['title'])}" for m in sorted(new, key=_key)]))
    assert timeline[:4] == [
        (120, ["W01:reminder", "W02:reminder"]),
        (240, ["W01:reminder", "W02:reminder"]),
        (300, ["W03:escalation"]),  # street level after 5 min unacknowledged
        (360, ["W01:reminder", "W02:reminder", "W03:reminder"]),
    ]
    reminder_seconds = [s for s, who in timeline if any(w.endswith("reminder") for w in who)]
    assert reminder_seconds == list(range(120, 16 * 60 + 1, 120))  # bounded: 8 reminders (issue 15)
    overdue = [who for s, who in timeline if s == 1800]
    assert overdue == [["W02:overdue", "W03:overdue"]]
    # acknowledging stops all of it
    await service.transition(record.id, Action.ACKNOWLEDGE, actor="W03", channel=Channel.CONSOLE)
    before = len(webhook.messages)
    for _ in range(5):
        clock.advance(2 * MIN)
        await service.tick()
    assert len(webhook.messages) == before


def _kind(title: str) -> str:
    for marker, kind in (("提醒", "reminder"), ("升级", "escalation"), ("超时：尚未到场", "overdue")):
        if marker in title:
            return kind
    return "initial"


def _key(m: dict[str, Any]) -> tuple[str, str]:
    return (m["path"], _kind(m["title"]))


async def test_notify_timers_resume_after_restart(
    db_url: str, setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    service = make_service(setup, clock)
    start = clock()
    record = await service.raise_alert(sos(start))
    assert record is not None
    clock.advance(2 * MIN)
    await service.tick()
    assert len(webhook.wait(4)) == 4  # initial ×2, reminder ×2
    setup.close()  # the backend goes away; nothing is kept in memory

    clock.now_ms = start + int(5.5 * MIN * 1000)  # it comes back after the street step was due
    restarted = AlertStore(url=db_url)
    try:
        service2 = make_service(restarted, clock)
        report = await service2.tick()
        assert report.escalations == 1 and report.reminders == 1  # the missed 4-min reminder collapses into one
        got = webhook.wait(7)
        assert paths(got[4:]) == ["/W01", "/W02", "/W03"]
        assert restarted.get_alert(record.id).remind_due_ms == start + 6 * 60_000
        clock.now_ms = start + 6 * 60_000
        report = await service2.tick()
        assert report.reminders == 1 and report.escalations == 0
        assert paths(webhook.wait(10)[7:]) == ["/W01", "/W02", "/W03"]
    finally:
        restarted.close()


async def test_notify_quiet_hours_defer_low_priority_to_morning_digest_but_never_sos(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    clock.now_ms = T0 - 3600 * 1000  # 23:00 Beijing
    service = make_service(setup, clock)
    await service.raise_alert(device_alert(clock(), "mat1"))
    await service.raise_alert(device_alert(clock(), "pir1"))
    await service.tick()
    assert webhook.messages == []  # muted at night
    await service.raise_alert(sos(clock()))
    assert paths(webhook.wait(2)) == ["/W01", "/W02"]  # SOS is never muted or delayed
    for rec in setup.list_alerts(alert_type=AlertType.SOS):
        await service.transition(rec.id, Action.ON_SITE, actor="W01", channel=Channel.CONSOLE)
    clock.now_ms = T0 + int(7.4 * 3600 * 1000)  # 07:24
    before = len(webhook.messages)
    await service.tick()
    assert len(webhook.messages) == before
    clock.now_ms = T0 + int(7.5 * 3600 * 1000)  # 07:30 digest
    report = await service.tick()
    assert report.digests == 1
    digest = webhook.wait(before + 1)[before:]
    assert [m["path"] for m in digest] == ["/W01"]
    assert "2 条" in digest[0]["title"], digest
    # Each device by its kind and room, as the worker knows it (alerts/wording.py), not by its id.
    assert "智能床垫（卧室）已超过" in digest[0]["message"] and "人体感应（客厅）已超过" in digest[0]["message"], digest
    statuses = {n.status for n in setup.notifications(worker_id="W01") if n.kind == "deferred"}
    assert statuses == {"sent"}


async def test_notify_digest_is_in_the_workers_language(store: AlertStore, webhook: Webhook, clock: FakeClock) -> None:
    """The morning digest follows the worker's ``lang`` like every single-alert message (it was always Chinese)."""
    doc = registry_with_channels(webhook)
    for worker in doc["workers"]:
        if worker["id"] == "W01":
            worker["lang"] = "en"
    store.import_registry(doc, now_ms=clock())
    clock.now_ms = T0 - 3600 * 1000  # 23:00 Beijing: low-priority alerts wait for the digest
    service = make_service(store, clock)
    await service.raise_alert(device_alert(clock(), "mat1"))
    await service.raise_alert(device_alert(clock(), "pir1"))
    clock.now_ms = T0 + int(7.5 * 3600 * 1000)  # 07:30 digest
    assert (await service.tick()).digests == 1
    [digest] = webhook.wait(1)
    assert digest["path"] == "/W01"
    assert digest["title"] == "[Summary] 2 reminders", digest
    body = digest["message"]
    assert "2 low-priority reminders:" in body, body
    assert "device offline: Mattress (bedroom) silent for 3 cadences" in body, body
    assert not re.search(r"[\u4e00-\u9fff]", body.replace("张桂英", "").replace("幸福路 12 号 3 栋 402", "")), body
    assert all(url.endswith("?lang=en") for url in re.findall(r"http://\S+", body)), body


async def test_notify_device_issues_are_batched_and_cleared_ones_dropped(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    service = make_service(setup, clock)
    await service.raise_alert(device_alert(clock(), "mat1"))
    await service.raise_alert(device_alert(clock() + 1000, "pir1"))
    await service.raise_alert(device_alert(clock() + 2000, "door1"))
    await service.raise_alert(device_alert(clock() + 3000, "door1", clears=True))  # came back
    await service.tick()
    assert webhook.messages == []
    clock.advance(15 * MIN)
    report = await service.tick()
    assert report.digests == 1
    [batch] = webhook.wait(1)
    assert batch["path"] == "/W01" and "2 条" in batch["title"]
    assert "door1" not in batch["message"]
    kinds = sorted(n.status for n in setup.notifications(worker_id="W01"))
    assert kinds == ["sent", "sent", "skipped"]


async def test_notify_failed_channel_is_retried(setup: AlertStore, webhook: Webhook, clock: FakeClock) -> None:
    webhook.fail_paths.add("/W01")
    service = make_service(setup, clock)
    record = await service.raise_alert(sos(clock()))
    assert record is not None
    webhook.wait(1)
    states = {n.worker_id: n.status for n in setup.notifications(alert_id=record.id)}
    assert states == {"W01": "retry", "W02": "sent"}
    webhook.fail_paths.clear()
    clock.advance(30)
    report = await service.tick()
    assert report.retries == 1
    assert [m["path"] for m in webhook.wait(2)] == ["/W02", "/W01"]
    n01 = [n for n in setup.notifications(alert_id=record.id) if n.worker_id == "W01"]
    assert [(n.status, n.attempts) for n in n01] == [("sent", 2)]


async def test_notify_repeat_sos_reaches_the_owner_again(setup: AlertStore, webhook: Webhook, clock: FakeClock) -> None:
    service = make_service(setup, clock)
    record = await service.raise_alert(sos(clock()))
    assert record is not None
    webhook.wait(2)
    await service.transition(record.id, Action.ACKNOWLEDGE, actor="W02", channel=Channel.CONSOLE)
    clock.advance(5)
    await service.raise_alert(sos(clock()))  # within the throttle window: counted, not re-sent
    clock.advance(60)
    repeated = await service.raise_alert(sos(clock()))
    assert repeated is not None and repeated.count == 3
    got = webhook.wait(3)
    assert got[2]["path"] == "/W02" and "再次触发" in got[2]["title"]


async def test_notify_links_reject_tampering_expiry_and_wrong_purpose(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    service = make_service(setup, clock)
    record = await service.raise_alert(sos(clock()))
    assert record is not None
    ack, page = links_in(webhook.wait(2)[0])
    with pytest.raises(LinkError) as info:
        await service.consume_link(tampered(ack))
    assert info.value.reason == "signature"
    with pytest.raises(LinkError) as info:
        await service.consume_link(page)
    assert info.value.reason == "purpose"
    with pytest.raises(LinkError) as info:
        await service.open_link(ack)
    assert info.value.reason == "purpose"
    other_key = LinkSigner(secret=b"another-secret-0123456789", base_url="http://x")
    forged = other_key.token(alert_id=record.id, worker_id="W01", action="acknowledge", now_ms=clock())
    with pytest.raises(LinkError):
        await service.consume_link(forged)
    clock.advance(2 * 3600 + 1)
    with pytest.raises(LinkError) as info:
        await service.consume_link(ack)
    assert info.value.reason == "expired"
    rejected = [e for e in setup.audit_entries() if e.action == AuditAction.LINK_REJECTED]
    assert [e.detail["reason"] for e in rejected] == ["signature", "purpose", "signature", "expired"]
    assert setup.get_alert(record.id).state == "open"


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


async def test_notify_email_channel_through_local_smtp(
    store: AlertStore, webhook: Webhook, clock: FakeClock, smtp: tuple[int, list[Any]]
) -> None:
    port, received = smtp
    doc = copy.deepcopy(registry_with_channels(webhook))
    doc["workers"][1]["channels"] = [f"mailto://127.0.0.1:{port}?from=alerts@example.org&to=duty@example.org"]
    store.import_registry(doc, now_ms=clock())
    service = make_service(store, clock)
    record = await service.raise_alert(sos(clock()))
    assert record is not None
    assert len(received) == 1
    envelope = received[0]
    assert envelope.rcpt_tos == ["duty@example.org"]
    text = envelope.original_content.decode()
    assert "Subject: =?utf-8?" in text
    sent = {n.worker_id: (n.channel, n.status) for n in store.notifications(alert_id=record.id)}
    assert sent == {"W01": ("json", "sent"), "W02": ("mailto", "sent")}
