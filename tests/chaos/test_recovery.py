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
from firmware_sim.wire import encode_device_status, encode_wristband_event
from gateway.models import DeviceKind, MessageType, Reading
from ingest.influx import InfluxClient
from ingest.schema import to_lines

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


HISTORY = 120_000
"""Mattress readings stored while the backend was away (after its snapshot): a stream of several windows."""


def _history(site: str, start_ms: int, span_ms: int) -> list[Reading]:
    """Readings stored after the snapshot that the backend never saw: mattress samples across ``span_ms``, then
    the smoke detector's tamper status at the end (only the replay can raise its alert)."""
    step = span_ms / HISTORY
    out = [
        Reading(
            site=site,
            kind=DeviceKind.MATTRESS,
            device="mat1",
            type=MessageType.TELEMETRY,
            seq=i + 1,
            ts_ms=start_ms + int(i * step),
            received_ms=start_ms + int(i * step),
            fields={"occupied": False},
        )
        for i in range(HISTORY)
    ]
    end = start_ms + span_ms
    tamper = Reading(
        site=site,
        kind=DeviceKind.SMOKE,
        device="smoke1",
        type=MessageType.STATUS,
        seq=7,
        ts_ms=end,
        received_ms=end,
        fields={"battery": 90, "tamper": True},
    )
    return [*out, tamper]


async def test_influxd_killed_in_the_middle_of_the_history_stream(
    own_broker: Broker, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    """Recovery resumes where the stream broke: the rebuilt state is complete and no alert is raised twice.

    The door's tamper alert was raised live after the snapshot (its status is in the history too); the smoke
    detector's status was stored but never seen by detection. influxd is SIGKILLed while the backend streams the
    history back.
    """
    site, broker = unique_site, own_broker
    influxd = Influxd(data_dir=tmp_path / "influxdb")
    influxd.start()
    settings = backend_settings(broker=broker, influxd=influxd, site=site, db=unique_db, data_dir=tmp_path)
    registry = registry_for(site)
    first = Backend(settings, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop=stop))
    try:
        # Subscribed (a message published before the backend's first subscription is not queued for it) and live.
        await asyncio.wait_for(first.ready.wait(), 60)
        await asyncio.wait_for(first.recovered.wait(), 30)
        await first.save_snapshot_async()
        snapshot = first.snapshot_path.read_bytes()  # the last snapshot before the "crash"
        watermark = first.engine.now_ms  # type: ignore[union-attr]
        door = GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port)
        with door as gw:
            now = time.time_ns() // 1_000_000
            gw.publish_all([encode_device_status(**gw.wire.stamp("door1"), kind="door", ts=now, tamper=True)])
            await _until(lambda: first.store.list_alerts(site=site, alert_type=AlertType.TAMPER), 30, "door tamper")
        stop.set()
        await asyncio.wait_for(task, 30)
        first.snapshot_path.write_bytes(snapshot)

        history = _history(site, watermark - 9 * 60_000, 9 * 60_000 + 5_000)
        async with InfluxClient(url=influxd.url, db=unique_db) as client:
            for i in range(0, len(history), 20_000):
                await client.write("\n".join(to_lines(history[i : i + 20_000])).encode(), precision="ns")

        second = Backend(settings, registry=registry)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop=stop))
        # Kill influxd once the stream has delivered part of the history, not all of it.
        await _until(lambda: second.recovery.replayed > 0, 60, "history streaming")
        assert second.recovery.catching_up and second.recovery.replayed < HISTORY
        influxd.kill()
        replayed_at_kill = second.recovery.replayed
        await _until(lambda: second.recovery.error is not None, 30, "the broken stream noticed")
        assert second.recovery.catching_up
        influxd.start()
        await asyncio.wait_for(second.recovered.wait(), 120)
        print(f"chaos: influxd killed after {replayed_at_kill} readings replayed; {second.recovery}")

        assert second.engine is not None
        devices = second.engine.homes[site].devices
        assert devices["mat1"].last_seq == HISTORY, "the history after the break was replayed"
        assert devices["smoke1"].tamper and devices["door1"].tamper
        await _until(
            lambda: any(a.device == "smoke1" for a in second.store.list_alerts(site=site, alert_type=AlertType.TAMPER)),
            10,
            "smoke tamper raised from the history",
        )
        tamper = second.store.list_alerts(site=site, alert_type=AlertType.TAMPER)
        assert sorted((a.device, a.count) for a in tamper) == [("door1", 1), ("smoke1", 1)]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        influxd.stop()


async def test_an_sos_found_in_the_stored_history_is_raised_before_the_catch_up_ends(
    own_broker: Broker, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    """An SOS the backend had made durable and acknowledged, killed before its alert was stored (the milliseconds of an
    insert; longer while the database is down): only the replay of the stored history finds it. It is raised as soon
    as the replay reads it, not after the rest of the history (before: once the whole catch-up was over)."""
    site, broker = unique_site, own_broker
    influxd = Influxd(data_dir=tmp_path / "influxdb")
    influxd.start()
    settings = backend_settings(broker=broker, influxd=influxd, site=site, db=unique_db, data_dir=tmp_path)
    registry = registry_for(site)
    first = Backend(settings, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop=stop))
    try:
        await asyncio.wait_for(first.recovered.wait(), 60)
        await first.save_snapshot_async()
        snapshot = first.snapshot_path.read_bytes()
        watermark = first.engine.now_ms  # type: ignore[union-attr]
        stop.set()
        await asyncio.wait_for(task, 30)
        first.snapshot_path.write_bytes(snapshot)  # the last snapshot before the "crash"

        history = _history(site, watermark - 9 * 60_000, 9 * 60_000 + 5_000)
        t_sos = watermark - 8 * 60_000
        sos = Reading(site=site, kind=DeviceKind.WRISTBAND, device="band1", type=MessageType.EVENT, seq=1,
                      ts_ms=t_sos, received_ms=t_sos, fields={}, event="sos")  # fmt: skip
        history.append(sos)
        async with InfluxClient(url=influxd.url, db=unique_db) as client:
            for i in range(0, len(history), 20_000):
                await client.write("\n".join(to_lines(history[i : i + 20_000])).encode(), precision="ns")

        second = Backend(settings, registry=registry)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop=stop))
        await _until(lambda: second.store.list_alerts(site=site, alert_type=AlertType.SOS), 60, "the SOS raised")
        replayed = second.recovery.replayed
        assert second.recovery.catching_up, "raised only once the whole history was replayed"
        await asyncio.wait_for(second.recovered.wait(), 120)
        print(f"chaos: SOS raised after {replayed} of {second.recovery.replayed} stored readings replayed")
        (alert,) = second.store.list_alerts(site=site, alert_type=AlertType.SOS)
        assert (alert.raised_ms, alert.count) == (t_sos, 1), "its own time, raised once"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        influxd.stop()
