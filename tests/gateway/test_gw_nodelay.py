"""A life-safety message on its way from the broker to the backend's batches is not held back (issue 17).

First, the broker sends each message to the backend at once, not held back by Nagle's algorithm.

The backend acknowledges a QoS 1 message only once it is durable, so its socket sends the broker nothing of its own
for milliseconds at a time; while its event loop is busy (decoding a batch, feeding the detectors) it does not read
either, and the kernel delays the TCP ACK of what arrived. With Nagle on (mosquitto's default) the broker keeps every
new small message in its socket until that ACK comes: a life-safety message published meanwhile reached the backend
only after the loop had read the data before it, one more turn of the loop later (the loaded benchmark's largest
step, docs/benchmarks.md). Counted here in TCP segments received by the backend's own listener on the real broker,
with the loop busy in 20 ms stretches: with Nagle the trickle arrived several messages per segment.

Then, a batch of telemetry that lingers for more messages is handed out as soon as an event arrives (before, an SOS
arriving during the 10 ms linger waited for its end: the loaded benchmark's "parsed → batch" step, ≤ 10 ms).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid

from gw_helpers import MakeListener, native_backend

from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_mattress_telemetry, encode_motion_event, encode_wristband_event

MESSAGES = 100
_TCPI_SEGS_IN = 140
"""Offset of ``tcpi_segs_in`` (u32) in Linux's ``struct tcp_info`` (since 4.2)."""


def segments_in(sock: socket.socket) -> int:
    """TCP segments this socket has received so far (Linux)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    value: int = struct.unpack_from("I", info, _TCPI_SEGS_IN)[0]
    return value


def trickle(gw: GatewayPublisher, count: int) -> None:
    """One message at a time, each acknowledged by the broker before the next (a home's steady telemetry)."""
    for i in range(count):
        gw.publish_all([encode_motion_event(**gw.wire.stamp("pir1"), ts=time.time_ns() // 1_000_000 + i)])
        time.sleep(0.002)


async def test_each_message_of_a_trickle_reaches_the_unacknowledging_backend_in_its_own_segment(
    broker: Broker, unique_site: str
) -> None:
    site = unique_site
    broker.provision([site])
    listener = native_backend(broker, site, client_id=f"nodelay-{uuid.uuid4().hex[:8]}")
    await listener.start()
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    try:
        await listener.wait_ready(timeout=10)
        conn = listener._conn
        assert conn is not None and conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        await asyncio.to_thread(gw.connect)
        before = segments_in(sock)
        sent = asyncio.ensure_future(asyncio.to_thread(trickle, gw, MESSAGES))
        while not sent.done():
            time.sleep(0.02)  # the loop busy with other work, as under load; the socket is not read meanwhile
            await asyncio.sleep(0)
        await sent
        # Nothing is acknowledged (as while the backend makes a batch durable); wait until all arrived.
        async with asyncio.timeout(10):
            while listener.queue_depth < MESSAGES:
                await asyncio.sleep(0.01)
        segments = segments_in(sock) - before
    finally:
        await asyncio.to_thread(gw.close)
        await listener.close(end_session=True)
    # Measured: Nagle on 26 segments (twice), off 85-93: a few segments per busy stretch with Nagle, each holding
    # what waited for the ACK of the message before.
    assert segments >= MESSAGES // 2, f"{MESSAGES} messages arrived in {segments} TCP segments"


async def test_an_event_ends_the_telemetry_batchs_linger_at_once(
    broker: Broker, unique_site: str, make_listener: MakeListener
) -> None:
    """A batch of telemetry lingers for more (``max_wait_s``); an SOS arriving meanwhile must not wait it out."""
    site = unique_site
    broker.provision([site])
    listener = await make_listener(site)  # both receive clients (the native one and the paho fallback)
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    batches = listener.batches(max_batch=100, max_wait_s=60.0)  # a linger far longer than the wait below
    try:
        await asyncio.to_thread(gw.connect)
        status = await asyncio.wait_for(anext(batches), 10)  # the gateway's status on connect: not lingered on
        assert [m.topic.rsplit("/", 1)[1] for m in status] == ["status"]
        now = time.time_ns() // 1_000_000
        telemetry = encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=now, occupied=True, hr=70, rr=14)
        await asyncio.to_thread(gw.publish_all, [telemetry])
        async with asyncio.timeout(10):
            while listener.queue_depth < 1:
                await asyncio.sleep(0.005)
        taking = asyncio.ensure_future(anext(batches))
        async with asyncio.timeout(10):  # the telemetry is taken: the batch is lingering now
            while listener.queue_depth:
                await asyncio.sleep(0.005)
        assert not taking.done()
        sos = encode_wristband_event(**gw.wire.stamp("band1"), ts=now, event="sos")
        await asyncio.to_thread(gw.publish_all, [sos])
        batch = await asyncio.wait_for(taking, 10)
        assert [m.topic for m in batch] == [telemetry.topic, sos.topic]
    finally:
        await batches.aclose()
        await asyncio.to_thread(gw.close)
