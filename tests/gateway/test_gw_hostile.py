"""A hostile home gateway against the real broker config and ACL (issue 13): each attack refused or harmless.

Every test waits for a positive signal (a message that was sent after the attack arrives) before it checks
that the attack had no effect, so an absence is never asserted after a bare sleep.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gw_helpers import DEVICES, MakeListener, directory_for
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support import z2m_fixtures as fx
from support.backend import backend_login
from test_gw_broker import NOW, gateway, of_site, running
from test_gw_z2m_broker import Z2m as Z2mBridge

from eldercare.servers.mosquitto import MESSAGE_SIZE_LIMIT
from eldercare.stack import Broker
from firmware_sim.wire import WireMessage
from gateway.budget import SiteBudget
from gateway.contract import command_topic
from gateway.deadletter import DeadLetterStore
from gateway.dedupe import Deduplicator
from gateway.downlink import CommandPublisher
from gateway.errors import Reason
from gateway.metrics import GatewayMetrics
from gateway.models import DeviceKind, Reading
from gateway.provisioning import RESERVED_PREFIX, ProvisioningError, SiteDevices, StaticDirectory, check_site_id
from gateway.service import GatewayService, ListSink
from gateway.sessions import SplitListener, priority_client_id

pytestmark = pytest.mark.integration


class Hostile:
    """A raw paho client logged in with a gateway's (valid) credentials, doing what firmware should not."""

    def __init__(
        self, broker: Broker, site: str, *, client_id: str, port: int | None = None, clean: bool = True
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=MQTTProtocolVersion.MQTTv311
        )
        self.client.username_pw_set(site, broker.gateway_password(site))
        self.received: list[mqtt.MQTTMessage] = []
        self.granted: list[int] = []
        self.connack: list[str] = []
        self.disconnected = threading.Event()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.received.append(m)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(broker.host, port or broker.port)
        self.client.loop_start()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.connack.append(str(reason))
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[object], _p: object) -> None:
        self.granted += [int(getattr(c, "value", 0x80)) for c in codes]
        self._subscribed.set()

    def wait_connack(self, timeout: float = 10) -> str:
        assert self._connected.wait(timeout), "no CONNACK"
        return self.connack[0]

    def subscribe(self, *filters: str) -> None:
        self._subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        assert self._subscribed.wait(10), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hostile(broker: Broker) -> Iterator[list[Hostile]]:
    """Hostile clients of a test, closed at the end."""
    clients: list[Hostile] = []
    yield clients
    for c in clients:
        c.close()


def _door(site: str, seq: int) -> WireMessage:
    return WireMessage(f"ec/v1/{site}/door/door1/event", b'{"event":"open","seq":%d,"ts":%d}' % (seq, NOW))


async def test_a_gateway_cannot_take_over_the_backends_client_id(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    hostile: list[Hostile],
) -> None:
    """R1: connecting with the backend's client id neither kicks the backend off nor touches its session."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    backend_id = f"backend-{uuid.uuid4().hex[:8]}"
    sink = ListSink()
    service = GatewayService(directory=directory_for(site, victim), deadletter=deadletter, sink=sink)
    listener = await make_listener(site, victim, client_id=backend_id)
    async with running(service, listener), gateway(broker, victim) as gw:
        for clean in (True, False):  # a clean session would discard the backend's; a persistent one resume it
            attacker = Hostile(broker, site, client_id=backend_id, clean=clean)
            hostile.append(attacker)
            assert await asyncio.to_thread(attacker.wait_connack) == "Success"
        await asyncio.to_thread(gw.publish_all, [_door(victim, 1)])
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.DOOR)) == 1)
        assert listener.connected and listener.connects == 1, "the backend was disconnected by a gateway"
        assert not listener.session_present or listener.connects == 1
    # Gateways cannot log in on the backend's listener at all (nor the backend on the gateways').
    assert not await asyncio.to_thread(
        broker.can_connect, site, broker.gateway_password(site), port=broker.backend_port
    )
    assert not await asyncio.to_thread(broker.can_connect, broker.backend_user, broker.backend_password)


async def test_a_gateway_cannot_take_over_the_backends_priority_session(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    hostile: list[Hostile],
) -> None:
    """R1 for the second session: the life-safety session's client id (``{client id}-priority``, under the reserved
    prefix in production) is as out of a gateway's reach as the main one; a neighbour's press still arrives on it."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    backend_id = f"backend-{uuid.uuid4().hex[:8]}"
    sink = ListSink()
    pressed: list[Reading] = []
    service = GatewayService(
        directory=directory_for(site, victim), deadletter=deadletter, sink=sink, fast_path=pressed.append
    )
    listener = await make_listener(site, victim, client_id=backend_id, split=True)
    assert isinstance(listener, SplitListener)
    assert listener.priority.client_id == priority_client_id(backend_id) != backend_id
    async with running(service, listener), gateway(broker, victim) as gw:
        for clean in (True, False):  # a clean session would discard the priority one; a persistent one resume it
            attacker = Hostile(broker, site, client_id=priority_client_id(backend_id), clean=clean)
            hostile.append(attacker)
            assert await asyncio.to_thread(attacker.wait_connack) == "Success"
        press = WireMessage(f"ec/v1/{victim}/call_button/btn1/event", b'{"event":"press","seq":1,"ts":%d}' % NOW)
        await asyncio.to_thread(gw.publish_all, [press])
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.CALL_BUTTON)) == 1)
        for session in listener.sessions:
            assert session.connected and session.connects == 1, f"{session.client_id} was disconnected by a gateway"
    assert [(r.site, r.event) for r in pressed] == [(victim, "press")]
    assert priority_client_id("eldercare-backend").startswith(RESERVED_PREFIX)  # no site id can be it
    with pytest.raises(ProvisioningError):
        check_site_id(priority_client_id("eldercare-backend"))


async def test_wildcard_sys_and_share_subscriptions_of_a_gateway_receive_nothing_foreign(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    hostile: list[Hostile],
) -> None:
    """R2: ``#``, ``$SYS/#`` and guessed ``$share`` groups give a gateway nothing; the backend loses nothing."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    sink = ListSink()
    service = GatewayService(directory=directory_for(site, victim), deadletter=deadletter, sink=sink)
    listener = await make_listener(site, victim)  # no share group: refused since issue 18 (test_gw_share_group.py)
    attacker = Hostile(broker, site, client_id=site)
    hostile.append(attacker)
    assert await asyncio.to_thread(attacker.wait_connack) == "Success"
    guesses = [f"$share/{g}/ec/v1/+/+/+/event" for g in ("ingest", "eldercare", "backend", "workers", "g")]
    await asyncio.to_thread(attacker.subscribe, "#", "$SYS/#", "$share/ingest/#", *guesses)
    n = 200
    async with running(service, listener), gateway(broker, victim) as gw:
        await asyncio.to_thread(gw.publish_all, [_door(victim, i) for i in range(1, n + 1)])
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.DOOR)) == n, timeout=20)
        # Positive signal for the attacker's side: its own command arrives, after everything else was sent.
        async with CommandPublisher(**backend_login(broker)) as pub:
            await pub.publish(command_topic(site, DeviceKind.CALL_BUTTON, "btn1"), b'{"cmd":"help_coming"}')
        for _ in range(200):
            if attacker.received:
                break
            await asyncio.sleep(0.02)
    assert [m.topic for m in attacker.received] == [f"ec/v1/{site}/call_button/btn1/cmd"]
    assert [r.seq for r in of_site(sink.readings, victim, kind=DeviceKind.DOOR)] == list(range(1, n + 1))


async def test_retained_events_do_not_raise_again_on_restart(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """R6: a retained call-button press is an alert once, live; replayed on a new subscription it is refused."""
    site = unique_site
    press = WireMessage(f"ec/v1/{site}/call_button/btn1/event", b'{"event":"press","seq":7,"ts":%d}' % NOW)
    first_fast: list[Reading] = []
    first = GatewayService(
        directory=directory_for(site), deadletter=deadletter, sink=ListSink(), fast_path=first_fast.append
    )
    listener = await make_listener(site)
    async with running(first, listener), gateway(broker, site) as gw:
        await asyncio.to_thread(gw.client.publish(press.topic, press.payload, qos=1, retain=True).wait_for_publish, 5)
        for _ in range(500):
            if first_fast:
                break
            await asyncio.sleep(0.01)
    assert [(r.event, r.seq) for r in first_fast] == [("press", 7)], "a live press with the retain flag is an SOS"

    # "Restart": a new session subscribes and the broker replays the retained press.
    fast: list[Reading] = []
    sink, metrics = ListSink(), GatewayMetrics()
    second = GatewayService(
        directory=directory_for(site), deadletter=deadletter, sink=sink, fast_path=fast.append, metrics=metrics
    )
    listener = await make_listener(site)
    async with running(second, listener), gateway(broker, site) as gw:
        await asyncio.to_thread(gw.publish_all, [_door(site, 1)])
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == 1)
        for _ in range(200):
            if deadletter.query(reason=Reason.RETAINED_EVENT):
                break
            await asyncio.sleep(0.02)
    entries = deadletter.query(reason=Reason.RETAINED_EVENT)
    assert [(e.topic, e.payload) for e in entries] == [(press.topic, press.payload)]
    assert fast == [] and of_site(sink.readings, site, kind=DeviceKind.CALL_BUTTON) == []
    assert metrics.value("dead_letters_total", reason="retained_event") == 1
    # The gateway's retained online status is still accepted (status topics may stay retained).
    assert of_site(sink.readings, site, kind=DeviceKind.GATEWAY)


async def test_oversize_payloads_are_dropped_by_the_broker_or_dead_lettered_cut(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore, hostile: list[Hostile]
) -> None:
    """R5: above the broker limit nothing is forwarded (a huge packet ends the connection); above 4 KiB the
    backend keeps only the first bytes and dead-letters the message as oversize with its real size."""
    site = unique_site
    broker.provision([site])
    sink = ListSink()
    service = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink)
    listener = await make_listener(site)
    mat = f"ec/v1/{site}/mattress/mat1/telemetry"
    over_contract = b'{"seq":1,"ts":1,"x":"' + b"a" * 10_000 + b'"}'
    over_broker = b'{"seq":2,"ts":1,"x":"' + b"b" * (MESSAGE_SIZE_LIMIT + 10) + b'"}'
    async with running(service, listener), gateway(broker, site) as gw:
        for payload in (over_contract, over_broker):
            await asyncio.to_thread(gw.client.publish(mat, payload, qos=1).wait_for_publish, 5)
        await asyncio.to_thread(gw.publish_all, [_door(site, 1)])
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == 1)
        for _ in range(200):
            if deadletter.query(reason=Reason.OVERSIZE):
                break
            await asyncio.sleep(0.02)
        # A 1 MiB packet is refused before the broker buffers it: the connection is closed.
        big = site + "b"  # another account: a second connection of ``site`` would replace the gateway's own
        broker.provision([big])
        attacker = Hostile(broker, big, client_id=big)
        hostile.append(attacker)
        await asyncio.to_thread(attacker.wait_connack)
        attacker.client.publish(f"ec/v1/{big}/mattress/mat1/telemetry", b"c" * (1 << 20), qos=1)
        assert await asyncio.to_thread(attacker.disconnected.wait, 10), "a 1 MiB packet did not end the connection"
        await asyncio.to_thread(gw.publish_all, [_door(site, 2)])
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == 2)
    entries = deadletter.query(reason=Reason.OVERSIZE)
    assert [(e.size, len(e.payload)) for e in entries] == [(len(over_contract), 4096)]
    assert entries[0].payload == over_contract[:4096]


async def test_deeply_nested_json_is_bad_json_without_a_traceback(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R8: JSON nested thousands deep is ``bad_json``; no traceback is logged per message."""
    site = unique_site
    sink, metrics = ListSink(), GatewayMetrics()
    service = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink, metrics=metrics)
    listener = await make_listener(site)
    nested = b'{"event":"open","seq":1,"ts":1,"x":' + b"[" * 2000 + b"]" * 2000 + b"}"
    status = f"ec/v1/{site}/gateway/gw-{site}/status"
    huge = [
        json.dumps({"online": True, "seq": 10**20, "ts": NOW}).encode(),
        json.dumps({"online": True, "seq": 1, "ts": NOW, "uptime_s": 2**64 - 1}).encode(),
    ]
    async with running(service, listener), gateway(broker, site) as gw:
        door = f"ec/v1/{site}/door/door1/event"
        for _ in range(3):
            await asyncio.to_thread(gw.client.publish(door, nested[:4096], qos=1).wait_for_publish, 5)
        for payload in huge:
            await asyncio.to_thread(gw.client.publish(status, payload, qos=1).wait_for_publish, 5)
        await asyncio.to_thread(gw.publish_all, [_door(site, 5)])
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == 1)
        deadline = time.monotonic() + 5
        while len(deadletter.query(site=site)) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    reasons = sorted(e.reason.value for e in deadletter.query(site=site))
    assert reasons == ["bad_json"] * 3 + ["out_of_range"] * 2
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    assert metrics.value("dead_letters_total", reason="bad_json") == 3


async def test_a_flood_of_bad_payloads_keeps_other_homes_dead_letters_and_counts_its_own(
    broker: Broker, make_listener: MakeListener, unique_site: str, tmp_path: Path
) -> None:
    """One gateway publishing refused messages as fast as it can fills the dead-letter record: with one cap for the
    whole record it deleted every other home's entries (a neighbour's misconfigured device lost its evidence,
    silently). Each home now has a budget (1 % of the record); its entries beyond it are folded into counted
    records per home and reason, so every refused message is still either an entry or counted."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    flood, max_rows = 600, 500
    sink = ListSink()
    with DeadLetterStore(path=tmp_path / "deadletter.sqlite3", max_rows=max_rows) as letters:
        service = GatewayService(directory=directory_for(site, victim), deadletter=letters, sink=sink)
        listener = await make_listener(site, victim)
        bad = b'{"event":"open","seq":1,"ts":1'  # cut JSON: bad_json
        async with running(service, listener), gateway(broker, victim) as neighbour, gateway(broker, site) as gw:
            mine = [WireMessage(f"ec/v1/{victim}/door/door1/event", bad) for _ in range(3)]
            await asyncio.to_thread(neighbour.publish_all, mine)
            attack = [WireMessage(f"ec/v1/{site}/door/door1/event", bad + b" %d" % i) for i in range(flood)]
            await asyncio.to_thread(gw.publish_all, attack, timeout=60)
            await asyncio.to_thread(neighbour.publish_all, [_door(victim, 1)])
            # Batches are made durable in arrival order: the flood's refusals are stored once this reading is.
            await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.DOOR)) == 1, timeout=60)
        kept = letters.query(site=victim)
        assert [(e.reason, e.payload) for e in kept] == [(Reason.BAD_JSON, bad)] * 3, "the neighbour's entries went"
        accounted = len(letters.query(site=site, limit=flood)) + sum(c.count for c in letters.counted(site=site))
        assert accounted == flood, "refused messages were dropped without being counted"
        assert len(letters.query(site=site, limit=flood)) == max_rows // 100
        (counted,) = letters.counted(site=site)
        assert (counted.reason, counted.count) == (Reason.BAD_JSON, flood - max_rows // 100)
        assert counted.first_ms <= counted.last_ms


async def test_made_up_gateway_ids_are_refused_and_cannot_push_another_homes_devices_out_of_the_dedupe_window(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """A gateway status was accepted under any device id of the home: each made-up id was a new device for the
    deduplicator (a bounded LRU shared by every home), the engine and InfluxDB (a new series). Enough of them pushed
    a neighbour's devices out of the window, and its redelivered copy was taken for a new reading. Only the
    registry's gateway id is accepted now (``unknown_device`` otherwise); the window is smaller here than in
    production (200,000 devices) only to keep the flood short."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    sink = ListSink()
    service = GatewayService(
        directory=directory_for(site, victim), deadletter=deadletter, sink=sink, dedupe=Deduplicator(max_devices=50)
    )
    listener = await make_listener(site, victim)
    ids = [f"gw-made-up-{i}" for i in range(200)]
    status = json.dumps({"online": True, "seq": 1, "ts": NOW}).encode()
    async with running(service, listener), gateway(broker, victim) as neighbour, gateway(broker, site) as gw:
        await asyncio.to_thread(neighbour.publish_all, [_door(victim, 1)])
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.DOOR)) == 1)
        made_up = [WireMessage(f"ec/v1/{site}/gateway/{g}/status", status) for g in ids]
        await asyncio.to_thread(gw.publish_all, made_up)
        # The neighbour's gateway republishes what it holds unconfirmed (a copy), then something new.
        await asyncio.to_thread(neighbour.publish_all, [_door(victim, 1), _door(victim, 2)])
        await sink.wait_for(lambda rs: any(r.seq == 2 for r in of_site(rs, victim, kind=DeviceKind.DOOR)))
    assert [r.seq for r in of_site(sink.readings, victim, kind=DeviceKind.DOOR)] == [1, 2], "a copy was taken as new"
    assert {r.device for r in of_site(sink.readings, site, kind=DeviceKind.GATEWAY)} == {f"gw-{site}"}
    refused = deadletter.query(site=site, limit=1000)
    assert sorted(e.topic.split("/")[4] for e in refused) == sorted(ids)
    assert {e.reason for e in refused} == {Reason.UNKNOWN_DEVICE}


async def test_a_payload_naming_another_home_or_device_is_read_as_its_topics(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """Identity comes from the topic only (which the ACL ties to the account): ids in the body are ignored."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    sink, fast = ListSink(), []
    service = GatewayService(
        directory=directory_for(site, victim), deadletter=deadletter, sink=sink, fast_path=fast.append
    )
    listener = await make_listener(site, victim)
    body = {"event": "press", "seq": 1, "ts": NOW, "site": victim, "device": "btn1", "gateway": f"gw-{victim}"}
    async with running(service, listener), gateway(broker, site) as gw:
        forged = WireMessage(f"ec/v1/{site}/call_button/btn1/event", json.dumps(body).encode())
        await asyncio.to_thread(gw.publish_all, [forged])
        got = await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.CALL_BUTTON)) == 1)
    assert of_site(got, victim) == []
    assert [(r.site, r.device, r.fields) for r in fast] == [(site, "btn1", {})]


class _WritingSink(ListSink):
    """A sink that takes a little time per batch, as an InfluxDB write round trip does."""

    async def accept(self, readings: Sequence[Reading]) -> None:
        await asyncio.sleep(0.02)
        await super().accept(readings)


async def test_another_homes_sos_does_not_wait_behind_one_gateways_flood(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """One gateway publishes valid telemetry faster than the backend makes it durable; a neighbour's call button is
    pressed meanwhile. With one session the broker kept one queue for every home, in arrival order, so the press
    reached the fast path only once the flood before it had been taken (12,000 to 16,000 of 20,000 readings made
    durable first). The backend's receive path has a second session for the life-safety kinds' events
    (gateway/sessions.py), whose batches are handed out first: the press is fast-pathed before the flood's first
    batches are durable. The backend is away while the flood queues here, which makes the backlog exact; a live
    flood outpacing the backend builds the same queue, only more slowly."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    flood = 20_000
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    away = await make_listener(site, victim, client_id=client_id, split=True)
    await away.close()  # keeps the session: the broker queues for it
    async with gateway(broker, site) as gw, gateway(broker, victim) as neighbour:
        telemetry = [
            WireMessage(f"ec/v1/{site}/mattress/mat1/telemetry", b'{"seq":%d,"ts":%d,"occupied":true}' % (i, NOW))
            for i in range(1, flood + 1)
        ]
        await asyncio.to_thread(gw.publish_all, telemetry, timeout=120)
        press = WireMessage(f"ec/v1/{victim}/call_button/btn1/event", b'{"event":"press","seq":1,"ts":%d}' % NOW)
        await asyncio.to_thread(neighbour.publish_all, [press])
    sink = _WritingSink()
    flood_durable_at_press: list[int] = []

    def fast(reading: Reading) -> None:
        flood_durable_at_press.append(len(of_site(sink.readings, site, kind=DeviceKind.MATTRESS)))

    service = GatewayService(directory=directory_for(site, victim), deadletter=deadletter, sink=sink, fast_path=fast)
    back = await make_listener(site, victim, client_id=client_id, split=True)
    async with running(service, back):
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.MATTRESS)) == flood, timeout=120)
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.CALL_BUTTON)) == 1)
    assert len(flood_durable_at_press) == 1
    assert flood_durable_at_press[0] < flood // 4, f"the press waited for {flood_durable_at_press[0]} readings"


async def test_a_z2m_homes_press_does_not_wait_behind_another_homes_telemetry_flood(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    hostile: list[Hostile],
) -> None:
    """A Zigbee2MQTT home's call button publishes on ``z2m/<site>/<name>`` like every other device of that home, so
    its press comes on the main session, behind whatever another home's gateway flooded there: the press reached
    the fast path only once about three quarters of a 20,000-reading flood before it had been made durable. Each
    home now has a budget of messages that are not life-safety (``ELDERCARE_SITE_BUDGET``, :mod:`gateway.budget`):
    what a home sends beyond it is counted in the dead-letter record (``over_budget``), not stored and not confirmed
    (a gateway with an outbox sends it again later), so a flood costs a topic check per message instead of a decode
    and a write, and a press behind it is fast-pathed once the flood's burst is durable. The budget is smaller here
    than the production default only to keep the flood short."""
    site, victim = unique_site, unique_site + "z"
    broker.provision([site, victim])
    flood, burst = 20_000, 2_000
    registry = StaticDirectory(
        [
            SiteDevices(site=site, gateway=f"gw-{site}", devices=dict(DEVICES)),
            SiteDevices(site=victim, gateway=f"gw-{victim}", devices=dict(fx.KINDS)),
        ]
    )
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    away = await make_listener(site, victim, client_id=client_id, split=True)
    await away.close()  # keeps the session: the broker queues for it
    bridge = Z2mBridge(broker, victim)
    try:
        await asyncio.to_thread(bridge.publish, "bridge/devices", fx.bridge_devices())
        flooder = Hostile(broker, site, client_id=site)  # only the flood: no status of its own
        hostile.append(flooder)
        flooder.wait_connack()
        sent = [
            flooder.client.publish(
                f"ec/v1/{site}/mattress/mat1/telemetry", b'{"seq":%d,"ts":%d,"occupied":true}' % (i, NOW), qos=1
            )
            for i in range(1, flood + 1)
        ]
        for info in sent:
            await asyncio.to_thread(info.wait_for_publish, 120)
        await asyncio.to_thread(bridge.publish, fx.name_of(fx.SOS), fx.SOS_EMERGENCY)
        await asyncio.to_thread(bridge.publish, fx.name_of(fx.DOOR), b'{"contact":true,"battery":90}')
    finally:
        bridge.close()
    sink = _WritingSink()
    flood_durable_at_press: list[int] = []

    def fast(reading: Reading) -> None:
        flood_durable_at_press.append(len(of_site(sink.readings, site, kind=DeviceKind.MATTRESS)))

    service = GatewayService(
        directory=registry,
        deadletter=deadletter,
        sink=sink,
        fast_path=fast,
        budget=SiteBudget(rate_per_s=1.0, burst=burst),
    )
    back = await make_listener(site, victim, client_id=client_id, split=True)
    async with running(service, back):
        # Positive signal: the neighbour's door, published after its press, is durable (arrival order).
        await sink.wait_for(lambda rs: any(r.site == victim and r.device == fx.DOOR for r in rs), timeout=120)
    assert [(r.site, r.device, r.event) for r in sink.readings if r.is_life_safety] == [(victim, fx.SOS, "press")]
    assert len(flood_durable_at_press) == 1
    assert flood_durable_at_press[0] <= burst + 100, f"the press waited for {flood_durable_at_press[0]} readings"
    (counted,) = deadletter.counted(site=site)
    samples = deadletter.query(site=site, limit=flood)
    assert counted.reason is Reason.OVER_BUDGET
    assert {e.reason for e in samples} == {Reason.OVER_BUDGET}
    accounted = len(of_site(sink.readings, site)) + counted.count + len(samples)
    assert accounted == flood, "a message over the budget was neither stored nor counted"
    assert len(of_site(sink.readings, site)) <= burst + 100
    assert deadletter.query(site=victim) == []
