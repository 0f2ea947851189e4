"""Zigbee2MQTT home end to end on real components: an SOS button's `action: "emergency"` raises one call alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import z2m_fixtures as fx
from support.backend import backend_settings, registry_for, running
from support.receivers import Webhook

from detection.models import AlertType, Severity
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> AsyncIterator[Backend]:
    settings = backend_settings(broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path)
    registry = registry_for(unique_site, webhook.url)
    # A Z2M home: its devices are registered by IEEE address.
    registry["sites"][0]["devices"] = [
        {"device": ieee, "kind": kind.value, "room": "bedroom"} for ieee, kind in fx.KINDS.items()
    ]
    app = Backend(settings, registry=registry)
    async with running(app):
        yield app


@pytest.fixture
def z2m(broker: Broker, unique_site: str) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_site, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set(unique_site, broker.gateway_password(unique_site))
    client.will_set(f"z2m/{unique_site}/bridge/state", b'{"state":"offline"}', qos=1, retain=True)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


async def test_z2m_emergency_press_raises_one_call_alert_within_a_second(
    backend: Backend, z2m: mqtt.Client, unique_site: str, webhook: Webhook
) -> None:
    base = f"z2m/{unique_site}"

    def publish(rest: str, payload: bytes, retain: bool = False) -> None:
        z2m.publish(f"{base}/{rest}", payload, qos=1, retain=retain).wait_for_publish(10)

    await asyncio.to_thread(publish, "bridge/state", b'{"state":"online"}', True)
    await asyncio.to_thread(publish, "bridge/devices", fx.bridge_devices(), True)
    pressed = time.monotonic()
    await asyncio.to_thread(publish, fx.name_of(fx.SOS), fx.SOS_EMERGENCY)
    await asyncio.to_thread(publish, fx.name_of(fx.SOS), fx.SOS_EMPTY)  # the legacy "" follow-up: no second press
    for _ in range(200):
        if backend.store.list_alerts(site=unique_site):
            break
        await asyncio.sleep(0.01)
    raised_s = time.monotonic() - pressed
    alerts = backend.store.list_alerts(site=unique_site)
    assert [(a.type, a.severity, a.count) for a in alerts] == [(AlertType.CALL_BUTTON, Severity.CRITICAL, 1)]
    assert alerts[0].device == fx.SOS
    assert raised_s < 1.0, raised_s
    messages = await asyncio.to_thread(webhook.wait, 2, 20.0)
    assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]
    await asyncio.to_thread(publish, "bridge/devices", b"", True)


async def test_z2m_radar_fall_raises_one_fall_alert_within_a_second(
    backend: Backend, z2m: mqtt.Client, unique_site: str, webhook: Webhook
) -> None:
    base = f"z2m/{unique_site}"

    def publish(rest: str, payload: bytes, retain: bool = False) -> None:
        z2m.publish(f"{base}/{rest}", payload, qos=1, retain=retain).wait_for_publish(10)

    await asyncio.to_thread(publish, "bridge/state", b'{"state":"online"}', True)
    await asyncio.to_thread(publish, "bridge/devices", fx.bridge_devices(), True)
    radar = fx.name_of(fx.FALL_RADAR)
    await asyncio.to_thread(publish, radar, fx.FALL_RADAR_NORMAL)
    await asyncio.to_thread(publish, radar, fx.FALL_RADAR_WARNING)  # the radar's pre-alarm: nothing yet
    fell = time.monotonic()
    await asyncio.to_thread(publish, radar, fx.FALL_RADAR_ALARM)
    await asyncio.to_thread(publish, radar, fx.FALL_RADAR_ALARM)  # the snapshot again (e.g. a linkquality change)
    for _ in range(200):
        if backend.store.list_alerts(site=unique_site):
            break
        await asyncio.sleep(0.01)
    raised_s = time.monotonic() - fell
    messages = await asyncio.to_thread(webhook.wait, 2, 20.0)  # the workers are told: the alert went all the way
    alerts = backend.store.list_alerts(site=unique_site)
    assert [(a.type, a.severity, a.count, a.device) for a in alerts] == [
        (AlertType.FALL, Severity.CRITICAL, 1, fx.FALL_RADAR)
    ]
    assert raised_s < 1.0, raised_s
    assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]
    await asyncio.to_thread(publish, "bridge/devices", b"", True)
