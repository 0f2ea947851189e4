"""Gas detector end to end on real components: one gas alarm through the real broker raises one GAS alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.backend import backend_settings, registry_for, running
from support.receivers import Webhook

from detection.models import AlertType, Severity
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_gas_alarm, encode_gas_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path, webhook: Webhook
) -> AsyncIterator[Backend]:
    settings = backend_settings(broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path)
    registry = registry_for(unique_site, webhook.url)
    registry["sites"][0]["devices"].append({"device": "gas1", "kind": "gas", "room": "kitchen"})
    app = Backend(settings, registry=registry)
    async with running(app):
        yield app


async def test_gas_alarm_raises_one_life_safety_alert_and_notifies_at_once(
    backend: Backend, broker: Broker, unique_site: str, webhook: Webhook
) -> None:
    with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
        t = int(time.time() * 1000)
        gw.publish(encode_gas_event(**gw.wire.stamp("gas1"), ts=t - 2000, event="test"))
        gw.publish(encode_gas_alarm(**gw.wire.stamp("gas1"), ts=t, lel=25, valve_closed=True))

        messages = await asyncio.to_thread(webhook.wait, 2, 20.0)
        assert sorted(m["path"] for m in messages) == ["/W01", "/W02"]
        assert "燃气泄漏报警" in webhook.to("W01")[0]["message"]
        alerts = backend.store.list_alerts(site=unique_site)
        assert [(a.type, a.severity, a.count) for a in alerts] == [(AlertType.GAS, Severity.CRITICAL, 1)]
