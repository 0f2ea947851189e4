"""One home gateway's credentials against the whole backend (gateway → InfluxDB → detection → snapshot).

The attacker holds one home's box and publishes only what its ACL allows (its own site's topics); every test checks
that another home, or the backend as a whole, is not affected. Each waits for a positive signal (a message sent
after the attack was processed) before it looks, never for a bare sleep.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.backend import backend_login, backend_settings, registry_for, running, until

from alerts.audit import AuditAction
from detection.models import AlertType
from detection.snapshot import load_snapshot
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import WireMessage, encode_call_button_event
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

YEAR_2100_MS = 4_102_444_800_000


def two_homes(site: str, victim: str) -> dict[str, Any]:
    """The docs/registry.md home twice: the attacker's ``site`` and its neighbour ``victim``."""
    doc = registry_for(site)
    other = copy.deepcopy(doc["sites"][0])
    other.update(site=victim, gateway=f"gw-{victim}", address="幸福路 14 号 1 栋 101")
    resident = other["residents"][0]
    resident.update(id="R0002", name="王秀兰", id_number="110101194202020041", phone="13900000002")
    doc["sites"].append(other)
    return doc


@pytest.fixture
async def backend(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path
) -> AsyncIterator[Backend]:
    site, victim = unique_site, unique_site + "v"
    settings = backend_settings(broker=broker, influxd=influxd, site=site, db=unique_db, data_dir=tmp_path)
    broker.provision([site, victim])
    app = Backend(settings, registry=two_homes(site, victim))
    async with running(app):
        await asyncio.wait_for(app.recovered.wait(), 30)
        yield app


def _door(site: str, seq: int, ts: int) -> WireMessage:
    return WireMessage(f"ec/v1/{site}/door/door1/event", b'{"event":"open","seq":%d,"ts":%d}' % (seq, ts))


def _last_seq(app: Backend, site: str, device: str) -> int | None:
    home = app.engine.homes.get(site) if app.engine is not None else None
    dev = home.devices.get(device) if home is not None else None
    return dev.last_seq if dev is not None else None


async def test_far_off_timestamps_move_no_clock_and_a_64_bit_overflow_does_not_stop_every_homes_snapshot(
    backend: Backend, broker: Broker, unique_site: str, tmp_path: Path
) -> None:
    """A wrong device clock is the reading's own problem: the engine's event time follows the backend's clock (year
    2100 and 1970 change nothing for the neighbour), and a ``ts`` past 64 bits (2^64) used to make the engine's
    snapshot fail with ``OverflowError`` for every home (the device's lag went into the state unchecked): every
    periodic and the shutdown snapshot were lost, so a restart replayed ever more history."""
    site, victim = unique_site, unique_site + "v"
    now = int(time.time() * 1000)
    attack = [_door(site, 1, YEAR_2100_MS), _door(site, 2, 1), _door(site, 3, 2**64)]
    with (
        GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port) as attacker,
        GatewayPublisher(site=victim, password=broker.gateway_password(victim), port=broker.port) as neighbour,
    ):
        await asyncio.to_thread(attacker.publish_all, attack)
        # Published once the broker acknowledged the attack, so it reaches the backend after it: the positive signal.
        # Its clock is a minute ahead (within the allowed skew), so it is newer than anything the home saw before.
        await asyncio.to_thread(neighbour.publish_all, [_door(victim, 1, now + 60_000)])
        await until(lambda: _last_seq(backend, victim, "door1") == 1)

    engine = backend.engine
    assert engine is not None
    assert engine.now_ms < YEAR_2100_MS, "a device clock moved the engine's event time"
    assert engine.homes[victim].last_seen_ms < YEAR_2100_MS
    assert engine.homes[site].last_seen_ms < YEAR_2100_MS, "a wrong clock moved its own home into the future"

    await backend.save_snapshot_async()  # raised OverflowError for every home before
    snapshot = load_snapshot(backend.snapshot_path)
    assert {site, victim} <= {h.site for h in snapshot.homes}

    with DeadLetterStore.in_data_dir(tmp_path) as letters:
        refused = letters.query(site=site)
    assert [(e.reason, e.payload) for e in refused] == [(Reason.OUT_OF_RANGE, attack[2].payload)]


async def test_a_gateway_pressing_its_own_button_as_fast_as_it_can_costs_few_store_writes_and_loses_no_press(
    backend: Backend, broker: Broker, unique_site: str
) -> None:
    """A gateway's account may publish its own call button's presses as fast as the broker takes them (its topics,
    valid payloads, the priority session). Each press was an alert raise of its own: one store write and one audit
    entry, each in a task run in arrival order, about 600 a second here, so a neighbour's press waited behind all
    of them (measured once: 20,000 presses published in 17 s, the neighbour's press raised 27 s after it was
    published). The raiser now merges the repeats that arrive while the one before is being stored
    (``tests/store/test_raise_repeats.py`` shows the order); the same 20,000 presses: raised 0.1 s after its
    publish, about 1,200 store writes. Nothing is merged away: the attacker's own alert counts every press."""
    site, victim = unique_site, unique_site + "v"
    now = int(time.time() * 1000)
    flood = 3000
    with (
        GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port) as attacker,
        GatewayPublisher(site=victim, password=broker.gateway_password(victim), port=broker.port) as neighbour,
    ):
        presses = [
            encode_call_button_event(site=site, device="btn1", seq=i, ts=now + i, event="press")
            for i in range(1, flood + 1)
        ]
        await asyncio.to_thread(attacker.publish_all, presses, timeout=120)
        press = encode_call_button_event(site=victim, device="btn1", seq=1, ts=now, event="press")
        await asyncio.to_thread(neighbour.publish_all, [press])
        (pressed,) = await until(lambda: backend.store.list_alerts(site=victim))
        (flooded,) = await until(lambda: [a for a in backend.store.list_alerts(site=site) if a.count == flood])

    assert (pressed.type, pressed.count, pressed.raised_ms) == (AlertType.CALL_BUTTON, 1, now)
    assert (flooded.raised_ms, flooded.last_seen_ms) == (now + 1, now + flood)
    entries = backend.store.audit_entries(entity_id=str(flooded.id), limit=flood + 10)
    # One entry per store write: the raise and each repeat, with how many presses it stood for when more than one.
    writes = [e.detail for e in entries if e.action in {AuditAction.ALERT_RAISED, AuditAction.ALERT_REPEATED}]
    assert sum(w.get("repeats", 1) for w in writes) == flood, "a press went uncounted"
    assert len(writes) < flood // 4, f"{len(writes)} store writes for {flood} presses"
    assert backend.raiser.merged >= flood - len(writes)


class _RetainedProbe:
    """A fresh subscriber (the backend's account) that reads what the broker holds retained under a home's status
    topics: the retained copies come right after the SUBACK, before the live sentinel a gateway publishes then."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.broker, self.site = broker, site

    def retained(self, sentinel: Callable[[], None]) -> dict[str, bytes]:
        got: dict[str, bytes] = {}
        done, subscribed = threading.Event(), threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
        login = backend_login(self.broker)
        client.username_pw_set(login["username"], login["password"])

        def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
            if m.retain:
                got[m.topic] = m.payload
            else:
                done.set()  # the sentinel: every retained copy came before it

        client.on_message = on_message
        client.on_subscribe = lambda *_a: subscribed.set()
        client.connect(login["host"], login["port"])
        client.loop_start()
        try:
            client.subscribe(f"ec/v1/{self.site}/+/+/status", qos=1)
            assert subscribed.wait(10), "no SUBACK"
            sentinel()
            assert done.wait(10), "the sentinel did not arrive"
        finally:
            client.disconnect()
            client.loop_stop()
        return got


async def test_what_a_gateway_leaves_retained_under_made_up_device_ids_is_cleared_from_the_broker(
    backend: Backend, broker: Broker, unique_site: str, tmp_path: Path
) -> None:
    """The ACL cannot refuse the retain flag, and the broker keeps one retained message per topic for ever: a
    gateway publishing retained statuses under made-up device ids grew the broker's memory (and its persistence file,
    and the replay every backend start without a session reads) with each id, for every home on the broker. The
    backend refuses them (``unknown_device``) and now clears each such topic at the broker (gateway/retained.py);
    the home's own gateway status, retained on purpose, stays."""
    site, made_up = unique_site, 200
    attacker = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"attacker-{uuid.uuid4().hex[:8]}")
    attacker.username_pw_set(site, broker.gateway_password(site))
    attacker.connect(broker.host, broker.port)
    attacker.loop_start()
    own = f"ec/v1/{site}/gateway/gw-{site}/status"
    status = json.dumps({"online": True, "seq": 1, "ts": int(time.time() * 1000)}).encode()

    def sentinel() -> None:  # a live status of the home's own gateway (not retained)
        attacker.publish(own, json.dumps({"online": True, "seq": 2, "ts": int(time.time() * 1000)}), qos=1)

    probe = _RetainedProbe(broker, site)
    try:
        infos = [attacker.publish(own, status, qos=1, retain=True)]
        infos += [
            attacker.publish(f"ec/v1/{site}/door/made-up-{i}/status", status, qos=1, retain=True)
            for i in range(made_up)
        ]
        for info in infos:
            info.wait_for_publish(10)
        with DeadLetterStore.in_data_dir(tmp_path) as letters:

            def refused() -> int:
                return len(letters.query(site=site, limit=10_000)) + sum(c.count for c in letters.counted(site=site))

            await until(lambda: refused() >= made_up)  # the backend has them all
            # Cleared: the broker holds the home's own status and nothing under a made-up id.
            held = await until(lambda: (r := probe.retained(sentinel)) and len(r) == 1 and r, timeout=30)
            assert held == {own: status}
            # The backend hears each clear back (a zero-length message on that topic), records it, and stops there.
            await until(lambda: refused() >= 2 * made_up)
            extra = attacker.publish(f"ec/v1/{site}/door/made-up-last/status", status, qos=1, retain=True)
            extra.wait_for_publish(10)
            await until(lambda: refused() >= 2 * made_up + 2)
            assert refused() == 2 * made_up + 2, "a clear was answered with another clear"
            sent = backend.metrics.retained_clears.labels(result="sent")._value.get()
            assert sent >= made_up + 1  # at least once each (a topic refused in two intervals is cleared twice)
            reasons = {e.reason for e in letters.query(site=site, limit=10_000)}
            assert reasons == {Reason.UNKNOWN_DEVICE}
        assert probe.retained(sentinel) == {own: status}
    finally:
        attacker.disconnect()
        attacker.loop_stop()


async def test_readings_over_a_homes_budget_are_counted_not_stored_and_an_outbox_gets_them_stored_later(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    """The embedded backend with a small per-home budget (``ELDERCARE_SITE_BUDGET=100/200``; the default is 50 a
    second, 20,000 at once): a gateway publishing 1,000 readings at once has what is over the budget counted in the
    dead-letter record (``over_budget``), not stored and not confirmed; its outbox sends the unconfirmed again, and
    as the budget refills every reading is stored, each once. A gateway loses nothing to the budget; a flood costs
    the backend a decode per message beyond it (tests/gateway/test_gw_hostile.py shows what that saves others)."""
    site = unique_site
    settings = backend_settings(broker=broker, influxd=influxd, site=site, db=unique_db, data_dir=tmp_path)
    settings = settings.model_copy(update={"site_budget": "100/200"})
    sent = 1000
    now = int(time.time() * 1000) - 60_000
    readings = [
        WireMessage(f"ec/v1/{site}/mattress/mat1/telemetry", b'{"seq":%d,"ts":%d,"occupied":true}' % (i, now + i))
        for i in range(1, sent + 1)
    ]
    influx = InfluxClient(url=influxd.url, db=unique_db)
    app = Backend(settings, registry=registry_for(site))
    async with running(app):
        await asyncio.wait_for(app.recovered.wait(), 30)
        with GatewayPublisher(
            site=site, password=broker.gateway_password(site), port=broker.port, outbox=sent, resend_after_s=0.5
        ) as gw:
            await asyncio.to_thread(gw.publish_all, readings, timeout=60)

            def confirmed_all() -> bool:
                gw.resend_unconfirmed(older_than_s=0.5)
                return gw.unconfirmed == 0

            await until(confirmed_all, timeout=90)
            confirmed, republished = gw.confirmed, gw.republished
        results = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
    assert results[0].series[0].values[0][1] == sent, "a reading is missing or stored twice"
    assert confirmed == sent
    with DeadLetterStore.in_data_dir(tmp_path) as letters:
        samples = letters.query(site=site, limit=sent)
        counted = letters.counted(site=site)
    assert samples, "nothing was over the budget: the test shows nothing"
    assert {e.reason for e in samples} == {Reason.OVER_BUDGET}
    assert {c.reason for c in counted} <= {Reason.OVER_BUDGET}
    over = len(samples) + sum(c.count for c in counted)
    # Each copy over the budget stayed unconfirmed, so the outbox sent it again: at least one republish per copy.
    assert republished >= over, "a reading over the budget was confirmed"
