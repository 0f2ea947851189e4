"""Feedback to the home: acknowledging an SOS / call-button alert sends "help is coming" through the real broker."""

from __future__ import annotations

import asyncio
import json

import pytest
from store_helpers import FakeClock, Webhook, links_in, make_service, registry_with_channels

from alerts.audit import AuditAction, Entity
from alerts.lifecycle import Action, Channel
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity
from eldercare.servers._child import free_port
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from gateway.downlink import CommandPublisher


def press(site: str, time_ms: int, alert_type: AlertType = AlertType.CALL_BUTTON, device: str = "btn1") -> Alert:
    return Alert(
        site=site,
        type=alert_type,
        severity=Severity.CRITICAL,
        time_ms=time_ms,
        explanation=f"{device} pressed",
        explanation_zh=f"{device} 被按下",
        device=device,
    )


@pytest.mark.integration
async def test_notify_ack_sends_help_coming_to_the_pressed_button(
    store: AlertStore, webhook: Webhook, clock: FakeClock, broker: Broker, unique_site: str
) -> None:
    doc = registry_with_channels(webhook)
    doc["sites"][0]["site"] = unique_site
    store.import_registry(doc, now_ms=clock())
    broker.provision([unique_site])
    home = GatewayPublisher(
        site=unique_site, password=broker.gateway_password(unique_site), host=broker.host, port=broker.port
    )
    await asyncio.to_thread(home.connect)
    try:
        async with CommandPublisher(
            host=broker.host, port=broker.backend_port, username=broker.backend_user, password=broker.backend_password
        ) as publisher:
            service = make_service(store, clock, commands=publisher)
            record = await service.raise_alert(press(unique_site, clock()))
            assert record is not None
            webhook.wait(2)
            ack_token = links_in(webhook.to("W01")[0])[0]
            clock.advance(20)
            await service.consume_link(ack_token)
            commands = await asyncio.to_thread(home.wait_for_commands, 1, timeout=10)
            # Setting off is announced too (and only then "on the way"); arriving is not announced. The duty
            # officer clicks 网格员已出发 at the console: the elder hears the grid worker who took it is coming, not
            # the officer at the desk (the re-review heard "社区值班员田文华已出发，正在赶来").
            await service.transition(record.id, Action.EN_ROUTE, actor="W02", channel=Channel.CONSOLE)
            commands = await asyncio.to_thread(home.wait_for_commands, 2, timeout=10)
            await service.transition(record.id, Action.ON_SITE, actor="W01", channel=Channel.CONSOLE)
    finally:
        await asyncio.to_thread(home.close)
    taken, coming = commands[:2]
    assert taken.topic == coming.topic == f"ec/v1/{unique_site}/call_button/btn1/cmd"
    payload = json.loads(taken.payload)
    assert payload["cmd"] == "help_coming" and payload["alert"] == record.id and payload["by"] == "李网格"
    # Taking the alert is not a promise that someone is coming: the elder is told it is being handled by whom
    # (the reviewer heard "工作人员田文华正在赶来" when the desk officer clicked 接单 and nobody had set off).
    assert payload["text_zh"] == "已收到您的求助，网格员李网格正在处理，请保持冷静，尽量留在原地。"
    assert "正在赶来" not in payload["text_zh"] and "on the way" not in payload["text"]
    payload = json.loads(coming.payload)
    assert payload["text_zh"] == "网格员李网格已出发，正在赶来。" and "on the way" in payload["text"]
    sent = [e for e in store.audit_entries(entity=Entity.ALERT) if e.action == AuditAction.COMMAND_SENT]
    assert payload["by"] == "李网格"
    assert [(e.actor, e.detail["topic"]) for e in sent] == [("W01", taken.topic), ("W02", coming.topic)]
    assert len(home.commands) == 2  # the ON_SITE step sent nothing (its transition returned after the publish)


async def test_notify_broker_outage_does_not_undo_the_ack(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    dead = CommandPublisher(
        host="127.0.0.1", port=free_port(), username="backend", password="x", max_attempts=1, timeout_s=1
    )
    service = make_service(store, clock, commands=dead)
    record = await service.raise_alert(press("h0001", clock(), AlertType.SOS, device="band1"))
    assert record is not None
    result = await service.transition(record.id, Action.ACKNOWLEDGE, actor="W02", channel=Channel.CONSOLE)
    assert result.applied and result.record.state == "acknowledged"
    failed = [e for e in store.audit_entries(entity=Entity.ALERT) if e.action == AuditAction.COMMAND_FAILED]
    assert [e.detail["topic"] for e in failed] == ["ec/v1/h0001/wristband/band1/cmd"]


async def test_notify_no_command_for_other_alert_types(store: AlertStore, webhook: Webhook, clock: FakeClock) -> None:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    published: list[tuple[str, bytes]] = []

    class Recorder:
        async def publish(self, topic: str, payload: bytes) -> None:
            published.append((topic, payload))

    service = make_service(store, clock, commands=Recorder())
    record = await service.raise_alert(press("h0001", clock(), AlertType.FALL, device="band1"))
    assert record is not None
    await service.transition(record.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)
    assert published == []


async def test_a_desk_officer_is_never_announced_as_coming(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    """The officer takes the SOS at the console, then clicks 网格员已出发: the elder hears the officer handles it,
    then that a grid worker (not the officer, who owns the alert) is on the way."""
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    published: list[dict[str, str]] = []

    class Recorder:
        async def publish(self, topic: str, payload: bytes) -> None:
            published.append(json.loads(payload))

    service = make_service(store, clock, commands=Recorder())
    record = await service.raise_alert(press("h0001", clock(), AlertType.SOS, device="band1"))
    assert record is not None
    await service.transition(record.id, Action.ACKNOWLEDGE, actor="W02", channel=Channel.CONSOLE)
    await service.transition(record.id, Action.EN_ROUTE, actor="W02", channel=Channel.CONSOLE)
    assert [p["text_zh"] for p in published] == [
        "已收到您的求助，社区值班员王值班正在处理，请保持冷静，尽量留在原地。",
        "网格员已出发，正在赶来。",
    ]
    assert published[1]["text"] == "A grid worker is on the way." and published[1]["by"] == ""
