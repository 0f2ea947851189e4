"""Issue 7 acceptance, end to end on real components.

The simulated call button is pressed → the backend (gateway → InfluxDB → detection → alert store) raises
one alert → a real webhook receiver gets the notification with a signed link → following the link
acknowledges it → reminders stop → the call button receives "help is coming" → resolve with an outcome →
the audit log shows each step with actor and time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.backend import backend_settings, registry_for, running
from support.receivers import Webhook

from alerts.lifecycle import Action, Channel, Outcome
from detection.models import AlertType
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_call_button_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LINK_RE = re.compile(r"http://127\.0\.0\.1:8000/m/(\.?[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)")
"""A one-tap link's token; itsdangerous starts it with "." when the compressed claim is shorter (3 in 5,000)."""


@pytest.fixture
async def backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> AsyncIterator[Backend]:
    settings = backend_settings(broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path)
    app = Backend(settings, registry=registry_for(unique_site, webhook.url))
    async with running(app):
        yield app


async def test_call_button_press_reaches_a_worker_and_help_is_coming(
    backend: Backend, broker: Broker, unique_site: str, webhook: Webhook
) -> None:
    with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
        pressed_ms = int(time.time() * 1000)
        gw.publish(encode_call_button_event(**gw.wire.stamp("btn1"), ts=pressed_ms, event="press"))

        # The grid worker (W01) and the community duty officer (W02) are told at once; the street waits.
        messages = await asyncio.to_thread(webhook.wait, 2, 20.0)
        assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]
        first = webhook.to("W01")[0]
        assert "张桂英" in first["message"] and "幸福路 12 号" in first["message"]
        open_alerts = backend.store.list_alerts(site=unique_site)
        assert [(a.type, a.count) for a in open_alerts] == [(AlertType.CALL_BUTTON, 1)]
        alert_id = open_alerts[0].id

        # Following the ack link acknowledges the alert, as W01, from the link channel.
        ack_token = LINK_RE.findall(first["message"])[0]
        result = await backend.service.consume_link(ack_token)
        assert result.applied and result.record.state == "acknowledged" and result.record.owner_id == "W01"

        # The call button hears that help is coming.
        commands = await asyncio.to_thread(lambda: gw.wait_for_commands(1, timeout=10.0))
        assert commands[0].topic.endswith(f"{unique_site}/call_button/btn1/cmd")
        assert "help_coming" in commands[0].payload.decode()

        # Acknowledged: no reminders and no street escalation, even ten minutes later.
        sent_before = len(webhook.messages)
        await backend.service.tick(now_ms=pressed_ms + 10 * 60_000)
        assert len(webhook.messages) == sent_before

        await backend.service.transition(alert_id, Action.ON_SITE, actor="W01", channel=Channel.PHONE)
        done = await backend.service.transition(
            alert_id, Action.RESOLVE, actor="W01", channel=Channel.PHONE, outcome=Outcome.ASSISTED_AT_HOME, note="扶起"
        )
        assert done.record.state == "resolved" and done.record.outcome == "assisted_at_home"

    entries = backend.store.audit_entries(entity_id=str(alert_id))
    trail = [(e.action, e.actor, e.detail.get("to")) for e in entries]
    assert trail[:2] == [("alert.raised", "system", None), ("alert.notified", "system", None)]
    transitions = [(actor, to) for action, actor, to in trail if action == "alert.transition"]
    assert transitions == [("W01", "acknowledged"), ("W01", "on_site"), ("W01", "resolved")], trail
    assert ("command.sent", "W01", None) in trail
    assert all(e.time_ms >= pressed_ms - 1000 for e in entries)
