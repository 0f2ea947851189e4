"""The own MQTT 3.1.1 subscriber (gateway/mqtt_wire.py) where it differs from paho: a resumed session larger than the
inbox on the real mosquitto, and a broker that breaks the protocol or goes silent (a scripted broker on a socket,
since mosquitto never sends a malformed packet)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from gw_helpers import native_backend

from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_motion_event
from gateway.models import RawMessage
from gateway.mqtt_wire import NativeListener

NOW = time.time_ns() // 1_000_000


async def test_a_resumed_session_larger_than_the_inbox_is_received_in_order(broker: Broker, unique_site: str) -> None:
    """The broker sends the queue right after CONNACK, before the SUBACK: a full inbox must not hide the SUBACK."""
    site = unique_site
    broker.provision([site])
    client_id = f"resume-{uuid.uuid4().hex[:8]}"
    away = native_backend(broker, site, client_id=client_id)
    await away.start()
    await away.wait_ready()
    await away.close()  # the session stays: the broker queues for it while the backend is down
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    sent = [encode_motion_event(**gw.wire.stamp("pir1"), ts=NOW + i) for i in range(50)]
    try:
        await asyncio.to_thread(gw.publish_all, sent)
    finally:
        await asyncio.to_thread(gw.close)
    back = native_backend(broker, site, client_id=client_id, capacity=5)
    await back.start()
    seen: list[RawMessage] = []
    deepest = 0
    try:
        await back.wait_ready(timeout=10)
        assert back.session_present
        batches = back.batches(max_batch=4, max_wait_s=0)
        while len([m for m in seen if "/motion/" in m.topic]) < len(sent):
            deepest = max(deepest, back.queue_depth)
            batch = await asyncio.wait_for(anext(batches), 10)
            seen += batch
            assert back.ack(batch) == len([m for m in batch if m.qos])
    finally:
        await back.close(end_session=True)
    assert deepest <= 5
    assert [m.payload for m in seen if "/motion/" in m.topic] == [m.payload for m in sent]


# -- a scripted broker ---------------------------------------------------------------------------------------------

CONNACK = b"\x20\x02\x00\x00"
SUBACK = b"\x90\x03\x00\x01\x01"


def publish(topic: str, payload: bytes, mid: int) -> bytes:
    """A QoS 1 PUBLISH packet."""
    t = topic.encode()
    body = len(t).to_bytes(2, "big") + t + mid.to_bytes(2, "big") + payload
    assert len(body) < 128
    return bytes([0x32, len(body)]) + body


GOOD = publish("ec/v1/s1/motion/pir1/event", b'{"seq": 1}', 7)

MALFORMED = {
    "reserved packet type": b"\xf0\x00",
    "remaining length over 4 bytes": b"\x30\xff\xff\xff\xff\x01",
    "topic past the packet": b"\x32\x05\x00\x40abc",
    "QoS 1 without packet id": b"\x32\x05\x00\x01a\x00\x00",
    "QoS 2 on a QoS 1 subscription": b"\x34\x05\x00\x01a\x00\x01",
    "CONNACK of 3 bytes": b"\x20\x03\x00\x00\x00",
}


class ScriptedBroker:
    """Accepts connections; for the n-th one runs ``script(n, reader, writer)`` after CONNECT/CONNACK/SUBSCRIBE."""

    def __init__(self, script: Callable[[int, asyncio.StreamReader, asyncio.StreamWriter], object]) -> None:
        self.script = script
        self.connections = 0
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _packet(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readexactly(2)
        assert head[1] < 128, "test packets are short"
        packet = head + await reader.readexactly(head[1])
        self.received.append(packet)
        return packet

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        n = self.connections
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            assert (await self._packet(reader))[0] == 0x10
            writer.write(CONNACK)
            assert (await self._packet(reader))[0] == 0x82
            writer.write(SUBACK)
            result = self.script(n, reader, writer)
            if asyncio.iscoroutine(result):
                await result
            while True:
                await self._packet(reader)
        writer.close()

    async def __aenter__(self) -> ScriptedBroker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@contextlib.asynccontextmanager
async def listening(port: int, *, keepalive: int = 30) -> AsyncIterator[NativeListener]:
    listener = NativeListener(
        host="127.0.0.1",
        port=port,
        username="backend",
        password="pw",
        client_id="backend-test",
        keepalive=keepalive,
        reconnect_min_s=0.05,
        reconnect_max_s=0.05,
        session_save_changes=0,  # the scripted broker has no persistence to make save
    )
    await listener.start()
    try:
        yield listener
    finally:
        await listener.close()


@pytest.mark.parametrize("packet", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_packet_ends_the_connection_and_the_next_one_delivers(packet: bytes) -> None:
    def script(n: int, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(packet if n == 1 else GOOD)

    async with ScriptedBroker(script) as fake, listening(fake.port) as listener:
        batches = listener.batches(max_wait_s=0)
        batch = await asyncio.wait_for(anext(batches), 10)
        assert [(m.topic, m.payload, m.mid) for m in batch] == [("ec/v1/s1/motion/pir1/event", b'{"seq": 1}', 7)]
        assert listener.protocol_errors == 1
        assert listener.last_error is not None and listener.last_error.startswith("protocol error")
        assert fake.connections == 2
        assert batch[0].connection == 2  # numbered per connection: acks of the first are void
        assert listener.ack(batch) == 1
        while b"\x40\x02\x00\x07" not in fake.received:  # the PUBACK reaches the broker
            await asyncio.sleep(0.01)


async def test_a_packet_split_across_reads_is_reassembled() -> None:
    async def script(_n: int, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(len(GOOD)):  # one byte per write, drained: many reads of one byte
            writer.write(GOOD[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)

    async with ScriptedBroker(script) as fake, listening(fake.port) as listener:
        batch = await asyncio.wait_for(anext(listener.batches(max_wait_s=0)), 10)
        assert [(m.topic, m.payload) for m in batch] == [("ec/v1/s1/motion/pir1/event", b'{"seq": 1}')]
        assert listener.protocol_errors == 0


async def test_keepalive_pings_and_a_silent_broker_is_left() -> None:
    """PINGREQ every half keep-alive; without any answer for 1.5 keep-alives the listener reconnects."""
    async with ScriptedBroker(lambda *_a: None) as fake, listening(fake.port, keepalive=1) as listener:
        await listener.wait_ready()
        while fake.connections < 2:  # the scripted broker never answers PINGREQ
            await asyncio.sleep(0.05)
        assert b"\xc0\x00" in fake.received
        await listener.wait_ready()


async def test_a_closed_listener_can_be_started_again(broker: Broker, unique_site: str) -> None:
    listener = native_backend(broker, unique_site, client_id=f"again-{uuid.uuid4().hex[:8]}")
    await listener.start()
    await listener.wait_ready()
    await listener.close()
    assert not listener.connected
    await listener.start()
    try:
        await listener.wait_ready()
        assert listener.connected and listener.connects == 2 and listener.session_present
    finally:
        await listener.close(end_session=True)


def test_an_unknown_receive_client_is_refused_by_name() -> None:
    from gateway.listener import create_listener

    with pytest.raises(ValueError, match="unknown MQTT client 'mosquitto': expected one of"):
        create_listener(client="mosquitto", host="127.0.0.1", username="u", password="p", client_id="c")  # type: ignore[arg-type]


async def test_a_close_that_meets_the_connack_ends_the_listener(
    broker: Broker, unique_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI hang: a backend stopped while its listener was connecting never stopped. Python 3.11's ``wait_for`` returns
    the result of a future that completed in the same loop turn as a cancellation and swallows the cancellation
    (gh-86296): the listener's task went on, connected and waited for the connection to end, and ``close`` waited
    for that task for ever. Here the close is issued from the CONNACK's own callback, which makes that race certain."""
    import gateway.mqtt_wire as wire

    broker.provision([unique_site])
    listener = native_backend(broker, unique_site, client_id=f"close-race-{uuid.uuid4().hex[:8]}")
    closing: list[asyncio.Task[None]] = []

    class CloseOnConnack(wire._Connection):  # noqa: SLF001 - the race needs the CONNACK's future
        def __init__(self, owner: NativeListener, number: int) -> None:
            super().__init__(owner, number)
            if not closing:  # registered before the listener's own wait: the close starts as the CONNACK lands
                self.connack.add_done_callback(lambda _: closing.append(asyncio.ensure_future(owner.close())))

    monkeypatch.setattr(wire, "_Connection", CloseOnConnack)
    await listener.start()
    deadline = time.monotonic() + 10
    while not closing:
        assert time.monotonic() < deadline, "no CONNACK from the broker"
        await asyncio.sleep(0.01)
    done, _ = await asyncio.wait(closing, timeout=10)
    assert done, "close() waited for ever"
    assert not listener.connected
