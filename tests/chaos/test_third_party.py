"""What a broker kill -9 loses of a third-party gateway's acknowledged messages (no outbox), backend up vs down.

A gateway without an outbox (Zigbee2MQTT, older firmware: PUBACK is the end) publishes QoS 1 at a steady rate; the
broker is killed mid-stream and restarted; the gateway resends what it had not had acknowledged. Counted exactly:
every message is acknowledged in the end, so ``sent - distinct received`` are the acknowledged messages the broker
lost. With the backend connected the broker forwards each message as it acknowledges it, and what the backend has
received it makes durable even if the connection breaks; with the backend down the messages wait in the broker's
queue, which is on disk only as of its last save (docs/storage.md, "What survives what").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from chaos_helpers import SteadyLoad, wait
from support.backend import backend_login

from eldercare.servers.mosquitto import AUTOSAVE_CHANGES
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_mattress_telemetry
from gateway.mqtt_wire import NativeListener

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

RATE = 1_000
"""Messages per second of the gateway (a district of ~17,000 homes at the contract's cadence)."""


class _Backend:
    """The backend's receive client, acknowledging each batch at once (a backend that keeps up)."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.listener = NativeListener(
            **backend_login(broker),
            client_id=f"eldercare-tp-{site}",
            subscriptions=(f"ec/v1/{site}/+/+/telemetry",),
            reconnect_min_s=0.2,
            reconnect_max_s=0.5,
        )
        self.seqs: set[int] = set()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.listener.start()
        await self.listener.wait_ready()
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for batch in self.listener.batches(max_wait_s=0.01):
            self.seqs.update(json.loads(m.payload)["seq"] for m in batch)
            self.listener.ack(batch)

    async def stop(self, *, end_session: bool = False) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        await self.listener.close(end_session=end_session)


@pytest.mark.parametrize("backend_up", [True, False], ids=["backend-connected", "backend-down"])
async def test_broker_kill_loses_of_a_third_party_gateway(own_broker: Broker, backend_up: bool) -> None:
    broker = own_broker
    site = "htp"
    broker.provision([site])
    backend = _Backend(broker, site)
    await backend.start()
    if not backend_up:
        await backend.stop()  # the session stays: the broker queues for it
    load = SteadyLoad(broker=broker, site=site, rate=RATE)
    load.start()
    try:
        await asyncio.to_thread(wait, lambda: load.sent >= 3 * RATE + 500, 60, "3.5 s of load")
        broker.kill()
        broker.start()
        await asyncio.to_thread(wait, lambda: load.sent >= 5 * RATE, 60, "load going on after the restart")
    finally:
        acked = await asyncio.to_thread(load.finish)
    assert acked == load.sent  # the gateway resent what the dead broker had not acknowledged
    if not backend_up:
        await backend.start()
    # Positive end signal: a message published last arrives after everything the broker still holds.
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    now = time.time_ns() // 1_000_000
    marker = encode_mattress_telemetry(site=site, device="mat9", seq=10**9, ts=now, occupied=True)
    assert await asyncio.to_thread(gw.publish_all, [marker], timeout=60) == 1
    await asyncio.to_thread(gw.close)
    await asyncio.to_thread(wait, lambda: 10**9 in backend.seqs, 60, "the marker")
    await backend.stop(end_session=True)
    received = len(backend.seqs - {10**9})
    lost = load.sent - received
    mode = "connected" if backend_up else "down"
    print(f"chaos: third-party gateway, backend {mode}: {load.sent} acknowledged, {received} delivered, {lost} lost")
    assert 0 <= lost < AUTOSAVE_CHANGES
    if backend_up:
        assert lost <= RATE // 10, "more than 0.1 s of traffic lost with the backend reading everything at once"
