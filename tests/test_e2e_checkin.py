"""Issue 19, check-in before a page, end to end on real components (broker, influxd, store, backend).

A behavioural alert (inactivity, with thresholds of seconds instead of minutes) is held; the backend publishes
the downlink ``cmd: checkin`` on the home's call-button topic. Answered with the call button's ``cancel``: the
alert never pages and the "elder fine" answer is stored. Unanswered: the alert pages the grid worker after the
window, with the check-in in its explanation; the worker's "false alarm" outcome reaches the engine as a label.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest
from support.backend import until
from support.checkin import FAST, WINDOW_S
from support.receivers import Webhook

from alerts.lifecycle import Action, Channel, Outcome
from alerts.store.checkins import CheckInStep, CheckInStore
from detection.models import AlertType
from eldercare.backend import Backend
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_call_button_event, encode_motion_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def backend(webhook: Webhook, detect_backend: Callable[..., Awaitable[Backend]]) -> Backend:
    # Seconds-scale thresholds through the operator's setting (ELDERCARE_DETECT), as a deployment would set them.
    return await detect_backend(FAST, channel_for=webhook.url)


def _steps(backend: Backend, site: str, what: str) -> list[CheckInStep]:
    return [s for s in CheckInStore(backend.store).for_site(site) if s.what == what]


async def _prompted(gw: GatewayPublisher, site: str) -> dict[str, object]:
    """Send one motion event, then wait for the check-in command on the home's call button."""
    gw.publish_all([encode_motion_event(**gw.wire.stamp("pir1"), ts=int(time.time() * 1000), room="living")])
    # Sent to every device of the home that can ask: the wristband and the call button.
    commands = await asyncio.to_thread(lambda: gw.wait_for_commands(2, timeout=30.0))
    assert sorted(c.topic.split("/", 3)[3] for c in commands[:2]) == ["call_button/btn1/cmd", "wristband/band1/cmd"]
    [command] = [c for c in commands[:2] if c.topic.endswith(f"{site}/call_button/btn1/cmd")]
    payload: dict[str, object] = json.loads(command.payload)
    assert payload["cmd"] == "checkin" and payload["window_s"] == WINDOW_S
    assert str(payload["prompt"]).startswith(f"{site}-") and "text_zh" in payload
    return payload


async def test_an_unanswered_check_in_pages_after_the_window(
    backend: Backend, broker: Broker, unique_site: str, webhook: Webhook
) -> None:
    with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
        payload = await _prompted(gw, unique_site)
        # Nobody answers: the worker is paged, and the alert says the elder was asked.
        await asyncio.to_thread(webhook.wait, 1, 30.0)
        [alert] = await until(lambda: backend.store.list_alerts(site=unique_site, alert_type=AlertType.INACTIVITY))
        assert "no answer within" in alert.explanation
        [paged] = await until(lambda: _steps(backend, unique_site, "paged"))
        assert paged.prompt_id == payload["prompt"] and paged.detail == "none"
        assert paged.time_ms - paged.prompt_ms >= WINDOW_S * 1000
        # The worker finds the elder fine: the outcome is a label the engine learns from (AlertService(labels=)).
        assert backend.engine is not None
        fine_before = backend.engine.homes[unique_site].day.fine_labels
        await backend.service.transition(
            alert.id, Action.RESOLVE, actor="W01", channel=Channel.PHONE, outcome=Outcome.FALSE_ALARM
        )
        assert backend.engine.homes[unique_site].day.fine_labels == fine_before + 1
    trail = [(e.action, e.detail.get("cmd")) for e in backend.store.audit_entries(entity_id=unique_site)]
    assert ("command.sent", "checkin") in trail and ("checkin.prompt", None) in trail


async def test_a_cancel_from_the_call_button_answers_the_check_in_without_a_page(
    backend: Backend, broker: Broker, unique_site: str
) -> None:
    with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
        payload = await _prompted(gw, unique_site)
        gw.publish_all([encode_call_button_event(**gw.wire.stamp("btn1"), ts=int(time.time() * 1000), event="cancel")])
        # "I'm fine": the answer is stored as the prompt's outcome, and the held alert never reached the store.
        [answered] = await until(lambda: _steps(backend, unique_site, "answered"))
        assert answered.prompt_id == payload["prompt"] and answered.types == ("inactivity",)
        assert answered.time_ms - answered.prompt_ms < WINDOW_S * 1000
        assert [s.what for s in CheckInStore(backend.store).for_site(unique_site)][-2:] == ["answered", "prompt"]
        assert backend.store.list_alerts(site=unique_site, alert_type=AlertType.INACTIVITY) == []
