"""Gateway service against the real mosquitto: round trips, ACLs, dead letters, Last Will, redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import paho.mqtt.client as mqtt
import pytest
from gw_helpers import Listener, MakeListener, cut_connection, directory_for
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import (
    HomeWire,
    WireMessage,
    encode_apnea,
    encode_call_button_event,
    encode_device_status,
    encode_door_event,
    encode_fall,
    encode_gas_alarm,
    encode_gas_event,
    encode_mattress_event,
    encode_mattress_telemetry,
    encode_motion_event,
    encode_motion_telemetry,
    encode_smoke_alarm,
    encode_smoke_event,
    encode_smoke_fault,
    encode_wristband_event,
    encode_wristband_telemetry,
)
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.listener import MqttListener, RawMessage
from gateway.metrics import GatewayMetrics
from gateway.models import DeviceKind, MessageType, Reading
from gateway.service import GatewayService, ListSink
from gateway.sessions import SplitListener

pytestmark = pytest.mark.integration

NOW = time.time_ns() // 1_000_000


def every_message(w: HomeWire, ts: int) -> list[WireMessage]:
    """One message of every kind × type × event the simulator can send."""
    return [
        encode_mattress_telemetry(**w.stamp("mat1"), ts=ts, occupied=True, hr=62.5, rr=14.0, movement=3),
        encode_mattress_event(**w.stamp("mat1"), ts=ts, event="out_of_bed"),
        encode_mattress_event(**w.stamp("mat1"), ts=ts, event="in_bed"),
        encode_apnea(**w.stamp("mat1"), ts=ts, duration_s=21.5),
        encode_device_status(**w.stamp("mat1"), kind="mattress", ts=ts, rssi=-60, fw="m-1.2"),
        encode_wristband_telemetry(
            **w.stamp("band1"), ts=ts, worn=True, hr=71, spo2=97, steps=1200, skin_temp=33.1, battery=80
        ),
        encode_wristband_event(**w.stamp("band1"), ts=ts, event="sos"),
        encode_fall(**w.stamp("band1"), ts=ts, confidence=0.93),
        encode_wristband_event(**w.stamp("band1"), ts=ts, event="removed"),
        encode_wristband_event(**w.stamp("band1"), ts=ts, event="worn"),
        encode_device_status(**w.stamp("band1"), kind="wristband", ts=ts, battery=80),
        encode_door_event(**w.stamp("door1"), ts=ts, event="open"),
        encode_door_event(**w.stamp("door1"), ts=ts, event="close"),
        encode_device_status(**w.stamp("door1"), kind="door", ts=ts, battery=90, tamper=False),
        encode_smoke_alarm(**w.stamp("smoke1"), ts=ts, level=12),
        encode_smoke_event(**w.stamp("smoke1"), ts=ts, event="silence"),
        encode_smoke_event(**w.stamp("smoke1"), ts=ts, event="test"),
        encode_smoke_event(**w.stamp("smoke1"), ts=ts, event="clear"),
        encode_smoke_fault(**w.stamp("smoke1"), ts=ts, code="E07"),
        encode_device_status(**w.stamp("smoke1"), kind="smoke", ts=ts, battery=70, battery_v=2.9, temp=24.5),
        encode_gas_alarm(**w.stamp("gas1"), ts=ts, lel=20, valve_closed=True),
        encode_gas_event(**w.stamp("gas1"), ts=ts, event="clear"),
        encode_device_status(**w.stamp("gas1"), kind="gas", ts=ts, rssi=-60),
        encode_call_button_event(**w.stamp("btn1"), ts=ts, event="press"),
        encode_call_button_event(**w.stamp("btn1"), ts=ts, event="cancel"),
        encode_device_status(**w.stamp("btn1"), kind="call_button", ts=ts, battery=95),
        encode_motion_telemetry(**w.stamp("pir1"), ts=ts, count=4, window_s=300, room="kitchen"),
        encode_motion_event(**w.stamp("pir1"), ts=ts, room="kitchen"),
        encode_device_status(**w.stamp("pir1"), kind="motion", ts=ts, battery=60),
    ]


@contextlib.asynccontextmanager
async def gateway(broker: Broker, site: str) -> AsyncIterator[GatewayPublisher]:
    """A simulated home gateway of ``site`` (the broker knows its account)."""
    broker.provision([site])
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    try:
        yield gw
    finally:
        await asyncio.to_thread(gw.close)


@contextlib.asynccontextmanager
async def running(service: GatewayService, listener: Listener) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(service.run(listener, max_wait_s=0.005), name="gateway-service")
    try:
        yield task
    finally:
        await listener.close(end_session=True)
        await asyncio.wait_for(task, 10)


def of_site(readings: Sequence[Reading], site: str, *, kind: DeviceKind | None = None) -> list[Reading]:
    return [r for r in readings if r.site == site and (kind is None or r.kind is kind)]


def _seq(m: WireMessage) -> int:
    return int(json.loads(m.payload)["seq"])


async def test_every_device_kind_round_trips(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    site = unique_site
    sink, fast = ListSink(), []
    metrics = GatewayMetrics()
    service = GatewayService(
        directory=directory_for(site), deadletter=deadletter, sink=sink, metrics=metrics, fast_path=fast.append
    )
    listener = await make_listener(site)
    async with running(service, listener), gateway(broker, site) as gw:
        sent = every_message(gw.wire, NOW)
        await asyncio.to_thread(gw.publish_all, sent)
        readings = list(await sink.wait_for(lambda rs: len(of_site(rs, site)) >= len(sent) + 1))
    assert deadletter.count() == 0, deadletter.query()
    got = [r for r in of_site(readings, site) if r.kind is not DeviceKind.GATEWAY]
    assert [(r.device, r.seq) for r in got] == [(m.topic.split("/")[4], _seq(m)) for m in sent]
    assert {r.kind for r in got} == set(DeviceKind) - {DeviceKind.GATEWAY}
    online = of_site(readings, site, kind=DeviceKind.GATEWAY)
    assert online[0].fields["online"] is True and online[0].type is MessageType.STATUS
    by_event = {(r.kind, r.type, r.event): r for r in got}
    assert len(by_event) == len(sent)
    assert by_event[(DeviceKind.MATTRESS, MessageType.TELEMETRY, None)].fields == {
        "occupied": True,
        "hr": 62.5,
        "rr": 14.0,
        "movement": 3,
    }
    assert by_event[(DeviceKind.WRISTBAND, MessageType.EVENT, "fall")].fields == {"confidence": 0.93}
    assert by_event[(DeviceKind.SMOKE, MessageType.EVENT, "fault")].fields == {"code": "E07"}
    assert all(not r.clock_skewed and r.ts_ms == NOW for r in got)
    # Life-safety readings reached the fast path, in order, before the batch was handed on.
    assert [(r.kind, r.event) for r in fast] == [
        (DeviceKind.WRISTBAND, "sos"),
        (DeviceKind.WRISTBAND, "fall"),
        (DeviceKind.SMOKE, "alarm"),
        (DeviceKind.GAS, "alarm"),
        (DeviceKind.CALL_BUTTON, "press"),
    ]
    assert metrics.value("readings_decoded_total", kind="door") == 3
    assert metrics.value("life_safety_total") == 5
    assert metrics.value("messages_acked_total") >= len(sent)
    # Every batch with readings had its time-to-durable observed (the write-latency metric of /metrics).
    assert metrics.value("durable_seconds_count") >= 1
    assert metrics.value("durable_seconds_count") <= metrics.value("batch_size_count")


async def test_malformed_payload_of_every_class_is_dead_lettered_while_good_ones_arrive(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    site, stranger = unique_site, unique_site + "s"  # the stranger has a broker account but is not in the registry
    sink, metrics = ListSink(), GatewayMetrics()
    service = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink, metrics=metrics)
    base = f"ec/v1/{site}"
    mat = f"{base}/mattress/mat1/telemetry"
    good_seq = iter(range(1, 100))

    def good() -> WireMessage:
        return WireMessage(f"{base}/door/door1/event", b'{"event":"open","seq":%d,"ts":%d}' % (next(good_seq), NOW))

    bad = {
        Reason.BAD_TOPIC: WireMessage(f"{base}/toaster/t1/telemetry", b'{"seq":1,"ts":1}'),
        Reason.UNSUPPORTED_TYPE: WireMessage(f"{base}/door/door1/telemetry", b'{"seq":1,"ts":1}'),
        Reason.UNKNOWN_DEVICE: WireMessage(f"{base}/door/ghost/event", b'{"event":"open","seq":1,"ts":1}'),
        Reason.KIND_MISMATCH: WireMessage(f"{base}/smoke/door1/event", b'{"event":"alarm","seq":1,"ts":1}'),
        Reason.OVERSIZE: WireMessage(mat, b'{"seq":1,"ts":1,"x":"' + b"a" * 9000 + b'"}'),
        Reason.BAD_JSON: WireMessage(mat, b'{"seq":1,"ts":'),
        Reason.BAD_SCHEMA: WireMessage(mat, b'{"seq":"one","ts":1,"occupied":true}'),
        Reason.OUT_OF_RANGE: WireMessage(
            f"{base}/mattress/mat1/telemetry", b'{"seq":2,"ts":1,"occupied":true,"hr":400}'
        ),
    }
    listener = await make_listener(site, stranger)
    async with running(service, listener), gateway(broker, site) as gw, gateway(broker, stranger) as other:
        messages = [good()]
        for message in bad.values():
            messages += [message, good()]
        await asyncio.to_thread(gw.publish_all, messages)
        await asyncio.to_thread(
            other.publish_all, [encode_door_event(**other.wire.stamp("door1"), ts=NOW, event="open")]
        )
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == len(bad) + 1)
        # The stranger's online status and its door event are both refused as unknown_site.
        for _ in range(200):
            if len(deadletter.query(reason=Reason.UNKNOWN_SITE)) >= 2:
                break
            await asyncio.sleep(0.02)
    doors = of_site(sink.readings, site, kind=DeviceKind.DOOR)
    assert [r.seq for r in doors] == list(range(1, len(bad) + 2))
    entries = {e.reason: e for e in deadletter.query(site=site)}
    assert set(entries) == set(bad)
    for reason, message in bad.items():
        entry = entries[reason]
        assert entry.topic == message.topic and entry.detail
        assert entry.size == len(message.payload)
        assert entry.payload == message.payload[: deadletter.max_payload_bytes]
    assert entries[Reason.OVERSIZE].truncated
    strangers = deadletter.query(site=stranger)
    assert {e.reason for e in strangers} == {Reason.UNKNOWN_SITE}
    assert f"ec/v1/{stranger}/door/door1/event" in {e.topic for e in strangers}
    assert of_site(sink.readings, stranger) == []
    assert metrics.value("dead_letters_total", reason="bad_json") == 1
    assert metrics.value("dead_letters_total", reason="unknown_site") == len(strangers)
    assert deadletter.count_by_reason()[Reason.UNKNOWN_SITE] == len(strangers)


async def test_gateway_credentials_cannot_publish_to_another_site(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    sink = ListSink()
    service = GatewayService(directory=directory_for(site, victim), deadletter=deadletter, sink=sink)
    forged = WireMessage(f"ec/v1/{victim}/call_button/btn1/event", b'{"event":"press","seq":1,"ts":%d}' % NOW)
    # An MQTT 5 client sees the broker's refusal in the PUBACK reason code.
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"forger-{uuid.uuid4().hex[:6]}", protocol=MQTTProtocolVersion.MQTTv5
    )
    codes: list[int] = []
    client.on_publish = lambda _c, _u, _mid, reason, _p: codes.append(reason.value)
    client.username_pw_set(site, broker.gateway_password(site))
    listener = await make_listener(site, victim)
    async with running(service, listener):
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            client.publish(forged.topic, forged.payload, qos=1).wait_for_publish(5)
            own = client.publish(f"ec/v1/{site}/door/door1/event", b'{"event":"open","seq":1,"ts":%d}' % NOW, qos=1)
            own.wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        await sink.wait_for(lambda rs: len(of_site(rs, site)) == 1)
        await asyncio.sleep(0.2)  # a forged message, had it passed, would be right behind
    assert codes == [135, 0]  # 0x87 Not authorized, then success
    assert of_site(sink.readings, victim) == []
    assert deadletter.count() == 0


async def test_gateway_last_will_is_seen_when_its_connection_dies(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    site = unique_site
    sink = ListSink()
    service = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink)
    listener = await make_listener(site)
    broker.provision([site])
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    async with running(service, listener):
        await asyncio.to_thread(gw.connect)
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.GATEWAY)) == 1)
        gw.crash()  # power cut: the socket closes without DISCONNECT
        statuses = await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.GATEWAY)) == 2)
    online, will = of_site(statuses, site, kind=DeviceKind.GATEWAY)
    assert online.fields["online"] is True and online.device == gw.gateway
    assert will.fields == {"online": False} and will.seq is None and will.device == gw.gateway
    # The Will is retained: a backend that connects later still learns that the home is offline.
    late = ListSink()
    later = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=late)
    async with running(later, await make_listener(site)):
        retained = await late.wait_for(lambda rs: len(of_site(rs, site)) == 1)
    assert retained[0].fields == {"online": False}


class FailingSink:
    """A sink whose storage is down: nothing becomes durable, so nothing may be acknowledged."""

    def __init__(self) -> None:
        self.attempts = 0

    async def accept(self, readings: Sequence[Reading]) -> None:
        self.attempts += 1
        raise OSError("storage down")


@pytest.mark.parametrize(
    ("mqtt_client", "mqtt5"),
    [("native", False), ("paho", False), ("paho", True)],  # MQTT 5 sessions are paho's (native speaks 3.1.1)
    ids=["native-mqtt311", "paho-mqtt311", "paho-mqtt5"],
)
async def test_unacknowledged_messages_are_redelivered_to_the_same_session(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore, mqtt5: bool
) -> None:
    site = unique_site
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    failing = FailingSink()
    crashed = GatewayService(
        directory=directory_for(site), deadletter=deadletter, sink=failing, retry_min_s=0.01, retry_max_s=0.05
    )
    first = await make_listener(site, client_id=client_id, mqtt5=mqtt5)
    task = asyncio.create_task(crashed.run(first))
    async with gateway(broker, site) as gw:
        sent = [
            encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=NOW + i, occupied=True, hr=60 + i) for i in range(20)
        ]
        await asyncio.to_thread(gw.publish_all, sent)
        while failing.attempts < 3:
            await asyncio.sleep(0.02)
        # The service dies before the sink was durable: nothing was acknowledged.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await first.close()  # keeps the session
        sink = ListSink()
        restarted = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink)
        second = await make_listener(site, client_id=client_id, mqtt5=mqtt5)
        assert second.session_present
        async with running(restarted, second):
            got = await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.MATTRESS)) == len(sent))
    assert [r.seq for r in of_site(got, site, kind=DeviceKind.MATTRESS)] == [_seq(m) for m in sent]
    assert [r.fields["hr"] for r in of_site(got, site, kind=DeviceKind.MATTRESS)] == [60 + i for i in range(20)]


class StopsStoring:
    """Stores into ``stored`` (the database, which outlives the process) until ``failing`` is set."""

    def __init__(self, stored: list[Reading]) -> None:
        self.stored = stored
        self.failing = False
        self.attempts = 0

    async def accept(self, readings: Sequence[Reading]) -> None:
        if self.failing:
            self.attempts += 1
            raise OSError("storage down")
        self.stored.extend(readings)


async def _until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_restart_with_messages_outstanding_on_both_sessions_stores_each_message_once(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """The backend's two sessions (gateway/sessions.py) die with unacknowledged messages on each: the priority
    session's SOS, alarm and press were fast-pathed but never durable, the main session's telemetry and door events
    not durable either. Restarted under the same client id, both sessions are resumed and everything is stored, each
    message once; what was durable and acknowledged before the crash does not come again."""
    site = unique_site
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    stored: list[Reading] = []
    sink = StopsStoring(stored)
    fast: list[Reading] = []
    crashed = GatewayService(
        directory=directory_for(site),
        deadletter=deadletter,
        sink=sink,
        fast_path=fast.append,
        retry_min_s=0.01,
        retry_max_s=0.05,
    )
    first = await make_listener(site, client_id=client_id, split=True)
    task = asyncio.create_task(crashed.run(first, max_wait_s=0.005))

    def keys(readings: Sequence[Reading]) -> list[tuple[str, int | None]]:
        return [(r.device, r.seq) for r in of_site(readings, site) if r.kind is not DeviceKind.GATEWAY]

    async with gateway(broker, site) as gw:

        def burst(n: int) -> list[WireMessage]:
            w = gw.wire
            return [
                *(encode_mattress_telemetry(**w.stamp("mat1"), ts=NOW + i, occupied=True, hr=60) for i in range(n)),
                encode_wristband_event(**w.stamp("band1"), ts=NOW, event="sos"),
                encode_door_event(**w.stamp("door1"), ts=NOW, event="open"),
                encode_smoke_alarm(**w.stamp("smoke1"), ts=NOW, level=12),
                encode_call_button_event(**w.stamp("btn1"), ts=NOW, event="press"),
            ]

        before = burst(50)
        await asyncio.to_thread(gw.publish_all, before)
        await _until(lambda: len(keys(stored)) == len(before), "the first burst was not stored")
        sink.failing = True
        after = burst(200)
        await asyncio.to_thread(gw.publish_all, after)
        # The priority session's events were taken and fast-pathed, and nothing since has become durable.
        await _until(lambda: len([r for r in fast if r.site == site]) == 6, "the second burst's alarms were not taken")
        await _until(lambda: sink.attempts >= 3, "the sink was not retried")
        assert len(keys(stored)) == len(before)
        task.cancel()  # the process dies: nothing more is acknowledged, the sessions stay with the broker
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await first.close()

    restarted = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=StopsStoring(stored))
    second = await make_listener(site, client_id=client_id, split=True)
    assert isinstance(second, SplitListener)
    assert second.main.session_present and second.priority.session_present
    async with running(restarted, second):
        await _until(lambda: len(keys(stored)) >= len(before) + len(after), "the outstanding messages never came")
        await asyncio.sleep(0.3)  # a copy delivered twice would land meanwhile
    got = keys(stored)
    assert sorted(got) == sorted((m.topic.split("/")[4], _seq(m)) for m in before + after)
    assert len(got) == len(set(got)), "a message was stored twice"


async def test_acknowledged_messages_are_not_redelivered(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    site = unique_site
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    sink = ListSink()
    service = GatewayService(directory=directory_for(site), deadletter=deadletter, sink=sink)
    first = await make_listener(site, client_id=client_id)
    task = asyncio.create_task(service.run(first))
    async with gateway(broker, site) as gw:
        await asyncio.to_thread(gw.publish_all, [encode_door_event(**gw.wire.stamp("door1"), ts=NOW, event="open")])
        await sink.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) == 1)
        await first.close()
        await task
        again = ListSink()
        second = await make_listener(site, client_id=client_id)
        async with running(GatewayService(directory=directory_for(site), deadletter=deadletter, sink=again), second):
            await asyncio.to_thread(
                gw.publish_all, [encode_door_event(**gw.wire.stamp("door1"), ts=NOW, event="close")]
            )
            got = await again.wait_for(lambda rs: len(of_site(rs, site, kind=DeviceKind.DOOR)) >= 1)
            await asyncio.sleep(0.2)
    assert [r.event for r in of_site(got, site, kind=DeviceKind.DOOR)] == ["close"]


async def test_after_a_reconnect_stale_acks_are_skipped_and_the_broker_redelivers(
    broker: Broker, make_listener: MakeListener, unique_site: str
) -> None:
    site = unique_site
    listener = await make_listener(site, reconnect_min_s=1, reconnect_max_s=1)
    async with gateway(broker, site) as gw:
        await asyncio.to_thread(gw.publish_all, [encode_door_event(**gw.wire.stamp("door1"), ts=NOW, event="open")])
        batches = listener.batches(max_wait_s=0)
        first: list[RawMessage] = []
        while not first:
            first = [m for m in await anext(batches) if "/door/" in m.topic]
        cut_connection(listener)
        while listener.connects < 2 or not listener.connected:
            await asyncio.sleep(0.02)
        assert listener.ack(first) == 0  # its message id means nothing on the new connection
        again: list[RawMessage] = []
        while not again:  # the status retained by the broker comes again too; wait for the door
            again = [m for m in await anext(batches) if "/door/" in m.topic]
        assert listener.ack(again) == 1
    assert [(m.topic, m.payload) for m in again] == [(m.topic, m.payload) for m in first]
    assert again[0].connection != first[0].connection


async def test_ending_the_session_discards_what_the_broker_kept(
    broker: Broker, make_listener: MakeListener, unique_site: str
) -> None:
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    first = await make_listener(unique_site, client_id=client_id)
    await first.close(end_session=True)
    second = await make_listener(unique_site, client_id=client_id)
    assert not second.session_present


async def test_a_full_inbox_holds_the_network_thread_back_without_losing_anything(
    broker: Broker, make_listener: MakeListener, unique_site: str
) -> None:
    site = unique_site
    listener = await make_listener(site, capacity=5)
    seen: list[RawMessage] = []
    deepest = 0
    async with gateway(broker, site) as gw:
        sent = [encode_motion_event(**gw.wire.stamp("pir1"), ts=NOW + i) for i in range(60)]
        await asyncio.to_thread(gw.publish_all, sent)
        batches = listener.batches(max_batch=3, max_wait_s=0)
        while len([m for m in seen if "/motion/" in m.topic]) < len(sent):
            deepest = max(deepest, listener.queue_depth)
            batch = await anext(batches)
            assert len(batch) <= 3
            seen += batch
            listener.ack(batch)
            await asyncio.sleep(0.005)  # a slow consumer
    assert deepest <= 5
    assert [m.payload for m in seen if "/motion/" in m.topic] == [m.payload for m in sent]


async def test_refused_credentials_are_reported_and_retried_not_fatal(broker: Broker) -> None:
    listener = MqttListener(
        host=broker.host,
        port=broker.backend_port,
        username=broker.backend_user,
        password="wrong",
        client_id=f"bad-{uuid.uuid4().hex[:6]}",
        reconnect_min_s=1,
        reconnect_max_s=1,
    )
    await listener.start()
    try:
        for _ in range(300):  # a positive signal first: the refusal is reported (up to 30 s on a loaded machine)
            if listener.last_error is not None:
                break
            await asyncio.sleep(0.1)
        assert listener.last_error is not None and "refused" in listener.last_error
        with pytest.raises(TimeoutError):
            await listener.wait_ready(timeout=1.5)  # and it keeps retrying without becoming ready
        assert not listener.connected
    finally:
        await listener.close()


async def test_an_event_is_handed_out_without_waiting_for_a_batch_to_fill(
    broker: Broker, make_listener: MakeListener, unique_site: str
) -> None:
    """Telemetry lingers to form batches; a batch with an event (SOS, fall, alarm…) is handed out at once."""
    site = unique_site
    listener = await make_listener(site)
    async with gateway(broker, site) as gw:
        batches = listener.batches(max_wait_s=60)  # a linger far longer than the wait below
        await asyncio.to_thread(gw.publish_all, [encode_wristband_event(**gw.wire.stamp("band1"), ts=NOW, event="sos")])
        got: list[RawMessage] = []
        while not any(m.topic.endswith("/band1/event") for m in got):
            got += await asyncio.wait_for(anext(batches), 10)
        listener.ack(got)
    assert [json.loads(m.payload)["seq"] for m in got if m.topic.endswith("/band1/event")] == [1]
