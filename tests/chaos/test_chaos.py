"""Fault injection under steady QoS 1 load (issue 13): kill -9 the broker, influxd and the backend in turn.

Asserted on the real servers: every acknowledged reading is in InfluxDB exactly once (the broker kill has the
bound mosquitto can give, see docs/storage.md), and every SOS pressed during or right after a fault is one alert
in the store, no more (no duplicate after a restart) and no less. Every wait is for a positive signal.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest
from chaos_helpers import BackendProcess, SteadyLoad, count_mattress, wait
from support.backend import backend_login

from alerts.store.repository import AlertStore
from detection.models import AlertType
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import AUTOSAVE_CHANGES
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import WireMessage, encode_call_button_event, encode_mattress_telemetry
from gateway.listener import MqttListener
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

AUTOSAVE_BOUND = AUTOSAVE_CHANGES
"""At most this many acknowledged messages are not yet in mosquitto's saved database (autosave_interval)."""


def press(broker: Broker, site: str, seq: int) -> None:
    """Press the call button of ``site`` once (QoS 1; the gateway resends it until the broker acknowledges)."""
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    gw.connect(timeout=30)
    try:
        now = time.time_ns() // 1_000_000
        gw.publish_all([encode_call_button_event(**gw.wire.stamp("btn1"), ts=now, event="press")], timeout=60)
    finally:
        gw.close()


def presses_in_store(store: AlertStore, site: str) -> int:
    return len(store.list_alerts(site=site, alert_type=AlertType.CALL_BUTTON))


async def test_kill_broker_influxd_and_backend_under_load(
    own_broker: Broker, own_influxd: Influxd, tmp_path: Path
) -> None:
    broker, influxd = own_broker, own_influxd
    db = f"chaos_{uuid.uuid4().hex[:8]}"
    load_site = "hload"
    sos_sites = {"broker": "hsos1", "influxd": "hsos2", "backend": "hsos3"}
    broker.provision([load_site, *sos_sites.values()])
    backend = BackendProcess(
        broker=broker, influxd=influxd, db=db, data_dir=tmp_path / "app", sites=[load_site, *sos_sites.values()]
    )
    influx = InfluxClient(url=influxd.url, db=db)
    backend.start()
    load = SteadyLoad(broker=broker, site=load_site, rate=200)
    load.start()
    store = AlertStore(url=backend.database_url)
    try:
        wait(lambda: load.sent >= 400, 30, "load running")

        # 1. influxd SIGKILLed: readings go to the spool, an SOS still becomes an alert, the spool drains after.
        influxd.kill()
        await asyncio.to_thread(press, broker, sos_sites["influxd"], 1)
        wait(lambda: presses_in_store(store, sos_sites["influxd"]) == 1, 30, "SOS alert while influxd is down", backend)
        influxd.start()

        # 2. backend SIGKILLed: the broker queues; an SOS pressed meanwhile is raised right after the restart.
        backend.kill()
        await asyncio.to_thread(press, broker, sos_sites["backend"], 1)
        backend.start()
        ready_ms = time.time_ns() // 1_000_000  # the backend logged that it is connected and subscribed
        wait(lambda: presses_in_store(store, sos_sites["backend"]) == 1, 30, "SOS alert after backend restart", backend)
        (record,) = store.list_alerts(site=sos_sites["backend"], alert_type=AlertType.CALL_BUTTON)
        print(f"chaos: SOS pressed while the backend was down stored {record.created_ms - ready_ms} ms after ready")

        # 3. broker SIGKILLed under load: gateways buffer and resend, the backend reconnects to its session.
        broker.kill()
        broker.start()
        await asyncio.to_thread(press, broker, sos_sites["broker"], 1)
        wait(lambda: presses_in_store(store, sos_sites["broker"]) == 1, 60, "SOS alert after broker restart", backend)

        assert backend.alive(), backend.log_tail()
        t_finish = time.monotonic()
        acked = await asyncio.to_thread(load.finish)
        print(f"chaos: sent {load.sent}, acknowledged {acked} after {time.monotonic() - t_finish:.1f} s")
        deadline = time.monotonic() + 120
        stored = -1
        while time.monotonic() < deadline:
            stored = await count_mattress(influx, load_site)
            if stored >= acked:
                break
            await asyncio.sleep(0.2)
        print(f"chaos: stored {stored} of {acked} acknowledged")
        # The broker kill can lose what it acknowledged since its last save (at most AUTOSAVE_BOUND messages);
        # the influxd and backend kills lose nothing, and nothing is ever stored twice.
        assert acked - AUTOSAVE_BOUND <= stored <= acked, (stored, acked, backend.log_tail())
        # One alert per press, none raised twice by a restart, no other life-safety alert invented.
        backend.stop()
        for what, site in sos_sites.items():
            assert presses_in_store(store, site) == 1, what
        assert store.list_alerts(site=load_site, alert_type=AlertType.CALL_BUTTON) == []
    finally:
        store.close()
        if load.is_alive():
            load.finish(timeout=5)
        backend.stop()
        await influx.aclose()


async def test_broker_kill_with_messages_queued_for_the_backend(own_broker: Broker) -> None:
    """R3: 5,000 messages acknowledged while the backend is away, then kill -9 of the broker.

    With ``autosave_interval 5`` (seconds) 7,456 of 10,000 were lost; saving on changes keeps all but at most
    the last ``AUTOSAVE_BOUND`` (mosquitto acknowledges before it saves; docs/storage.md).
    """
    broker = own_broker
    site = "hqueued"
    broker.provision([site])
    client_id = "eldercare-queued"
    listener = _session_listener(broker, site, client_id)
    await listener.start()
    await listener.wait_ready()
    await listener.close()  # the persistent session stays: the broker queues for it
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    n = 5_000
    t0 = time.time_ns() // 1_000_000
    messages = _mattress_samples(gw, t0, n)
    assert await asyncio.to_thread(gw.publish_all, messages, timeout=120) == n
    await asyncio.to_thread(gw.crash)
    broker.kill()
    broker.start()
    listener = _session_listener(broker, site, client_id)
    await listener.start()
    await listener.wait_ready()
    seqs: set[bytes] = set()
    batches = listener.batches(max_wait_s=0.05)
    deadline = time.monotonic() + 60
    try:
        while len(seqs) < n and time.monotonic() < deadline:
            try:
                batch = await asyncio.wait_for(anext(batches), 2)
            except TimeoutError:
                break  # nothing more for 2 s after a positive stream: the broker has sent what it saved
            seqs.update(m.payload for m in batch)
            listener.ack(batch)
    finally:
        await batches.aclose()
        await listener.close(end_session=True)
    assert listener.session_present, "the persistent session itself did not survive"
    lost = n - len(seqs)
    print(f"chaos: broker kill with {n} queued: {len(seqs)} redelivered, {lost} lost")
    assert 0 <= lost < AUTOSAVE_BOUND, f"{lost} of {n} acknowledged messages lost"


def _session_listener(broker: Broker, site: str, client_id: str) -> MqttListener:
    """The backend's persistent-session listener for one home's telemetry (the broker queues for it while away)."""
    return MqttListener(
        **backend_login(broker),
        client_id=client_id,
        subscriptions=(f"ec/v1/{site}/+/+/telemetry",),
    )


def _mattress_samples(gw: GatewayPublisher, t0: int, n: int) -> list[WireMessage]:
    """``n`` mattress telemetry messages of ``gw``'s home, 1 ms apart from ``t0``."""
    return [
        encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=t0 + i, occupied=True, hr=60.0, rr=14.0, movement=1)
        for i in range(n)
    ]


async def test_broker_kill_keeps_exactly_what_was_saved(own_broker: Broker) -> None:
    """R3, exact: a kill -9 of the broker keeps every message acknowledged before its last save, none after.

    mosquitto acknowledges a QoS 1 publish before it saves it; ``SIGUSR1`` makes it save now (the same save as
    the autosave). 3,000 messages, a save, 500 more (fewer than the autosave interval: no save of its own), then
    kill -9: exactly the first 3,000 come back, in order, and the 500 are lost: what docs/storage.md states.
    """
    assert AUTOSAVE_BOUND > 500
    broker = own_broker
    site = "hsaved"
    broker.provision([site])
    client_id = "eldercare-saved"

    first = _session_listener(broker, site, client_id)
    await first.start()
    await first.wait_ready()
    await first.close()  # the persistent session stays: the broker queues for it
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    t0 = time.time_ns() // 1_000_000
    messages = _mattress_samples(gw, t0, 3_500)
    assert await asyncio.to_thread(gw.publish_all, messages[:3_000], timeout=120) == 3_000
    saved = broker.server.persistence_file
    before = saved.stat().st_ino if saved.exists() else None
    assert broker.server.proc is not None
    broker.server.proc.send_signal(signal.SIGUSR1)
    # The save writes a new file and renames it over the old one: a new inode is a finished save.
    await asyncio.to_thread(wait, lambda: saved.stat().st_ino != before, 30, "the broker's save on SIGUSR1")
    assert await asyncio.to_thread(gw.publish_all, messages[3_000:], timeout=120) == 500
    await asyncio.to_thread(gw.crash)
    broker.kill()
    broker.start()

    second = _session_listener(broker, site, client_id)
    await second.start()
    await second.wait_ready()
    payloads: list[bytes] = []
    batches = second.batches(max_wait_s=0.05)
    try:
        while len(payloads) < 3_000:
            batch = await asyncio.wait_for(anext(batches), 30)
            payloads += [m.payload for m in batch]
            second.ack(batch)
        # The 3,001st message would be one acknowledged after the save: the broker must not have it. The positive
        # signal that the redelivery is over is a fresh message after it, published now on the same session.
        marker = encode_mattress_telemetry(
            **gw.wire.stamp("mat1"), ts=t0 + 9_999, occupied=True, hr=61.0, rr=14.0, movement=1
        )
        gw2 = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
        await asyncio.to_thread(gw2.connect)
        assert await asyncio.to_thread(gw2.publish_all, [marker], timeout=60) == 1
        await asyncio.to_thread(gw2.close)
        while marker.payload not in payloads:
            batch = await asyncio.wait_for(anext(batches), 30)
            payloads += [m.payload for m in batch]
            second.ack(batch)
    finally:
        await batches.aclose()
        await second.close(end_session=True)
    assert second.session_present
    sent = [m.payload for m in messages]
    print(f"chaos: broker kill after a save: {len(payloads) - 1} of 3,500 redelivered")
    assert payloads == [*sent[:3_000], marker.payload], "exactly the messages acknowledged before the save, in order"
