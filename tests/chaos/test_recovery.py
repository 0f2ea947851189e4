"""Recovery never delays a life-safety alert (issue 13, R7), on the real servers.

The backend restarts from a snapshot while InfluxDB is down, so it cannot replay the stored history and stays
"catching up"; an SOS pressed meanwhile must still be raised at once. Before, the restart read the whole history
before it processed anything (an SOS 20.8 s late after a kill; with InfluxDB down, not at all).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.backend import backend_settings, registry_for

from detection.models import AlertType
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_wristband_event

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


async def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sos_is_raised_while_the_detection_state_is_still_catching_up(
    broker: Broker, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    influxd = Influxd(data_dir=tmp_path / "influxdb")
    influxd.start()
    settings = backend_settings(broker=broker, influxd=influxd, site=unique_site, db=unique_db, data_dir=tmp_path)
    registry = registry_for(unique_site)
    first = Backend(settings, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop=stop))
    try:
        await asyncio.wait_for(first.recovered.wait(), 30)  # no snapshot yet: nothing to replay
        stop.set()
        await asyncio.wait_for(task, 30)  # a clean stop writes the snapshot
        assert first.snapshot_path.exists()

        influxd.kill()  # the history cannot be read: the next start stays catching up
        second = Backend(settings, registry=registry)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop=stop))
        await asyncio.wait_for(second.ready.wait(), 30)
        assert second.recovery.catching_up
        with GatewayPublisher(site=unique_site, password=broker.gateway_password(unique_site), port=broker.port) as gw:
            now = time.time_ns() // 1_000_000
            gw.publish_all([encode_wristband_event(**gw.wire.stamp("band1"), ts=now, event="sos")])
            await _until(lambda: second.store.list_alerts(site=unique_site, alert_type=AlertType.SOS), 10, "SOS alert")
        assert second.recovery.catching_up, "the SOS was raised only after recovery"
        assert second.recovery.error is not None  # the history read is failing and being retried

        influxd.start()  # the history comes back: recovery finishes, the SOS is not raised a second time
        await asyncio.wait_for(second.recovered.wait(), 60)
        assert not second.recovery.catching_up
        await _until(lambda: second.engine is not None and second.engine.readings >= 1, 5, "engine fed")
        assert len(second.store.list_alerts(site=unique_site, alert_type=AlertType.SOS)) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        influxd.stop()
