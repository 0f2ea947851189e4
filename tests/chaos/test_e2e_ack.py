"""End-to-end acknowledgement (issue 13): a broker kill -9 loses nothing a gateway with an outbox published.

mosquitto acknowledges a QoS 1 publish before it saves it, so a kill -9 loses what it acknowledged since its last
save (tests/chaos/test_chaos.py). Here the backend is away, a gateway publishes readings and one call-button press,
the broker saves part of the queue (``SIGUSR1``, the autosave's own save), acknowledges the rest, and is killed.
Without the outbox (an older gateway: PUBACK is the end) exactly the unsaved readings and the press are gone; with
it the gateway republishes everything the backend has not confirmed after it reconnects, and every reading is in
InfluxDB exactly once and the press is exactly one alert. Then the backend is killed and a copy of everything is
published again: still exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest
from chaos_helpers import BackendProcess, count_mattress, wait

from alerts.store.repository import AlertStore
from detection.models import AlertType
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import WireMessage, encode_call_button_event, encode_mattress_telemetry
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SAVED = 2_000
"""Readings the broker has in its last save before the kill."""
UNSAVED = 500
"""Readings (and the press) it acknowledged after that save: fewer than the autosave interval, so not saved."""


def _samples(gw: GatewayPublisher, t0: int, n: int) -> list[WireMessage]:
    return [
        encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=t0 + i, occupied=True, hr=60.0, rr=14.0, movement=1)
        for i in range(n)
    ]


def _save(broker: Broker) -> None:
    """Make the broker save its in-memory database now and wait until the new file is in place."""
    saved = broker.server.persistence_file
    before = saved.stat().st_ino if saved.exists() else None
    assert broker.server.proc is not None
    broker.server.proc.send_signal(signal.SIGUSR1)
    # The save writes a new file and renames it over the old one: a new inode is a finished save.
    wait(lambda: saved.stat().st_ino != before, 30, "the broker's save on SIGUSR1")


async def _until_stored(influx: InfluxClient, site: str, n: int, backend: BackendProcess) -> int:
    """Wait until at least ``n`` mattress readings of ``site`` are stored; return the count."""
    deadline = time.monotonic() + 60
    stored = -1
    while time.monotonic() < deadline:
        stored = await count_mattress(influx, site)
        if stored >= n:
            return stored
        await asyncio.sleep(0.2)
    raise AssertionError(f"{stored} of {n} readings stored\n{backend.log_tail()}")


def _presses(store: AlertStore, site: str) -> int:
    return len(store.list_alerts(site=site, alert_type=AlertType.CALL_BUTTON))


@pytest.mark.parametrize("outbox", [0, 10_000], ids=["puback-only", "outbox"])
async def test_broker_kill_with_queued_readings_loses_nothing_with_the_outbox(
    own_broker: Broker, own_influxd: Influxd, tmp_path: Path, outbox: int
) -> None:
    broker, influxd = own_broker, own_influxd
    site = "hack"
    db = f"chaos_{uuid.uuid4().hex[:8]}"
    broker.provision([site])
    backend = BackendProcess(broker=broker, influxd=influxd, db=db, data_dir=tmp_path / "app", sites=[site])
    influx = InfluxClient(url=influxd.url, db=db)
    backend.start()  # creates the backend's persistent session ...
    backend.stop()  # ... and leaves: the broker queues for it
    gw = GatewayPublisher(
        site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port, outbox=outbox
    )
    await asyncio.to_thread(gw.connect, timeout=30)
    store = AlertStore(url=backend.database_url)
    try:
        t0 = time.time_ns() // 1_000_000 - 60_000
        readings = _samples(gw, t0, SAVED + UNSAVED)
        press = encode_call_button_event(**gw.wire.stamp("btn1"), ts=t0 + SAVED + UNSAVED, event="press")
        assert await asyncio.to_thread(gw.publish_all, readings[:SAVED], timeout=120) == SAVED
        await asyncio.to_thread(_save, broker)
        unsaved = [*readings[SAVED:], press]
        assert await asyncio.to_thread(gw.publish_all, unsaved, timeout=120) == UNSAVED + 1
        assert gw.unconfirmed == (SAVED + UNSAVED + 1 if outbox else 0)  # the backend is away: nothing confirmed

        broker.kill()  # every message above was PUBACKed; the last UNSAVED + 1 exist only in the dead broker's memory
        broker.start()
        await asyncio.to_thread(wait, lambda: gw.connect_count >= 2 and gw.connected, 60, "gateway reconnected")
        backend.start()

        if outbox:
            # The positive signal: the backend confirmed every reading the gateway kept (it republished them all).
            confirmed = await asyncio.to_thread(gw.wait_confirmed, timeout=120)
            assert confirmed, (gw.unconfirmed, backend.log_tail())
            assert gw.republished >= UNSAVED + 1
            expected = SAVED + UNSAVED
        else:
            # The positive signal: a reading published after the restart is stored, so everything queued before
            # it has been handled too.
            marker = _samples(gw, t0 + 100_000, 1)
            assert await asyncio.to_thread(gw.publish_all, marker, timeout=60) == 1
            expected = SAVED + 1
        stored = await _until_stored(influx, site, expected, backend)
        print(f"chaos e2e-ack (outbox={outbox}): {stored} stored, {gw.republished} republished")
        if outbox:
            assert stored == SAVED + UNSAVED, "every acknowledged reading exactly once"
            await asyncio.to_thread(
                wait, lambda: _presses(store, site) == 1, 30, "the press raised as one alert", backend
            )
        else:
            assert stored == SAVED + 1, "the broker kept its last save and nothing after it"
            assert _presses(store, site) == 0, "the press acknowledged after the save was lost with the broker"
            return

        # The backend dies and everything comes again (a gateway that missed the confirmations would do this):
        # the deterministic point identity keeps one point per reading, and the open alert takes the copy.
        backend.kill()
        backend.start()
        again = [*readings, press]
        assert await asyncio.to_thread(gw.publish_all, again, timeout=120) == len(again)
        assert await asyncio.to_thread(gw.wait_confirmed, timeout=120), backend.log_tail()
        marker = _samples(gw, t0 + 100_000, 1)
        assert await asyncio.to_thread(gw.publish_all, marker, timeout=60) == 1
        assert await asyncio.to_thread(gw.wait_confirmed, timeout=60), backend.log_tail()
        assert await _until_stored(influx, site, SAVED + UNSAVED + 1, backend) == SAVED + UNSAVED + 1
        assert _presses(store, site) == 1
    finally:
        store.close()
        await asyncio.to_thread(gw.close)
        backend.stop()
        await influx.aclose()
