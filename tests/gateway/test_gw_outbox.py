"""The gateway outbox of the end-to-end acknowledgement (issue 13), through the real broker and ACL.

The backend side is :class:`gateway.confirm.StoredConfirmations` sent by :class:`ConfirmationSender`, as the
pipeline does; the gateway side is firmware_sim's :class:`GatewayPublisher`.
"""

from __future__ import annotations

import asyncio

import pytest
from support.backend import backend_login

from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_mattress_telemetry
from gateway.confirm import ConfirmationSender, StoredConfirmations
from gateway.downlink import CommandPublisher
from gateway.listener import MqttListener

pytestmark = pytest.mark.integration

NOW = 1_767_225_600_000


def _gateway(broker: Broker, site: str, **kwargs: object) -> GatewayPublisher:
    return GatewayPublisher(
        site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port, **kwargs
    )


def _sender(broker: Broker, site: str) -> ConfirmationSender:
    return ConfirmationSender(
        **backend_login(broker),
        client_id=f"ack-{site}",
    )


def _backend(broker: Broker) -> CommandPublisher:
    return CommandPublisher(**backend_login(broker))


async def _until(check: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_confirmed_readings_leave_the_outbox_and_are_not_commands(broker: Broker, unique_site: str) -> None:
    site = unique_site
    broker.provision([site])
    gw = _gateway(broker, site, outbox=100)
    await asyncio.to_thread(gw.connect)
    try:
        messages = [
            encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=NOW + i, occupied=False, hr=None, rr=None)
            for i in range(5)
        ]
        assert await asyncio.to_thread(gw.publish_all, messages) == 5
        assert gw.unconfirmed == 5  # PUBACKed by the broker, but not yet confirmed by the backend
        confirmations = StoredConfirmations()
        confirmations.add([(site, "mat1", 1), (site, "mat1", 2), (site, "mat1", 4)])
        sender = _sender(broker, site)
        try:
            assert await sender.publish_many(confirmations.drain()) == 1
            await _until(lambda: gw.confirmed == 3, 10, "confirmation at the gateway")
        finally:
            await sender.close()
        assert gw.unconfirmed == 2
        assert gw.commands == []  # a confirmation is not a command for the devices
    finally:
        await asyncio.to_thread(gw.close)


async def test_an_unconfirmed_reading_is_republished_and_a_gateway_without_outbox_ignores_confirmations(
    broker: Broker, unique_site: str
) -> None:
    site = unique_site
    broker.provision([site])
    listener = MqttListener(
        **backend_login(broker),
        client_id=f"outbox-{site}",
        subscriptions=(f"ec/v1/{site}/+/+/telemetry",),
    )
    await listener.start()
    await listener.wait_ready()
    gw = _gateway(broker, site, outbox=100, resend_after_s=0.2)
    old = _gateway(broker, site + "o")
    broker.provision([site, site + "o"])
    await asyncio.to_thread(gw.connect)
    await asyncio.to_thread(old.connect)
    batches = listener.batches(max_wait_s=0.01)
    try:
        first = encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=NOW, occupied=False, hr=None, rr=None)
        await asyncio.to_thread(gw.publish_all, [first])
        await asyncio.sleep(0.3)  # past resend_after_s: the next publish sends the unconfirmed one again first
        second = encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=NOW + 1, occupied=False, hr=None, rr=None)
        await asyncio.to_thread(gw.publish_all, [second])
        seen: list[bytes] = []
        while len(seen) < 3:
            batch = await asyncio.wait_for(anext(batches), 10)
            seen += [m.payload for m in batch]
            listener.ack(batch)
        assert seen == [first.payload, first.payload, second.payload]
        assert gw.republished == 1

        confirmations = StoredConfirmations()
        confirmations.add([(site + "o", "mat1", 1)])
        sender = _sender(broker, site)
        try:
            assert await sender.publish_many(confirmations.drain()) == 1
        finally:
            await sender.close()
        async with _backend(broker) as pub:
            marker = b'{"cmd":"help_coming"}'
            await pub.publish(f"ec/v1/{site}o/call_button/btn1/cmd", marker)
            commands = await asyncio.to_thread(old.wait_for_commands, 1)
        assert [c.payload for c in commands] == [marker]  # the confirmation before it was ignored
        assert old.confirmed == 0 and old.unconfirmed == 0
    finally:
        await batches.aclose()
        await listener.close(end_session=True)
        await asyncio.to_thread(gw.close)
        await asyncio.to_thread(old.close)
