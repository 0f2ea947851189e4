"""Downstream commands through the real broker: the home gateway of the addressed site receives them."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.backend import backend_login

from eldercare.servers._child import free_port
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from gateway.contract import command_topic
from gateway.downlink import CommandPublisher
from gateway.errors import PublishError
from gateway.models import DeviceKind


@pytest.mark.integration
async def test_command_reaches_the_gateway_of_its_site_only(broker: Broker, unique_site: str) -> None:
    site, other = unique_site, unique_site + "o"
    broker.provision([site, other])
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    neighbour = GatewayPublisher(
        site=other, password=broker.gateway_password(other), host=broker.host, port=broker.port
    )
    await asyncio.to_thread(gw.connect)
    await asyncio.to_thread(neighbour.connect)
    try:
        async with CommandPublisher(**backend_login(broker)) as pub:
            topic = command_topic(site, DeviceKind.CALL_BUTTON, "btn1")
            await pub.publish(topic, b'{"cmd":"help_coming","seq":1}')
            await pub.publish(topic, b'{"cmd":"help_coming","seq":2}')
            commands = await asyncio.to_thread(gw.wait_for_commands, 2, timeout=10)
    finally:
        await asyncio.to_thread(gw.close)
        await asyncio.to_thread(neighbour.close)
    assert [c.topic for c in commands] == [topic, topic]
    assert [c.payload for c in commands] == [b'{"cmd":"help_coming","seq":1}', b'{"cmd":"help_coming","seq":2}']
    assert commands[0].device == "btn1"
    assert neighbour.commands == []


async def test_only_command_topics_are_accepted() -> None:
    pub = CommandPublisher(host="127.0.0.1", port=1, username="backend", password="x")
    with pytest.raises(ValueError, match="not a command topic"):
        await pub.publish("ec/v1/h1/door/d1/event", b"{}")
    with pytest.raises(ValueError, match="not a command topic"):
        await pub.publish("ec/v1/+/call_button/b1/cmd", b"{}")


async def test_unreachable_broker_raises_a_typed_error_after_retries() -> None:
    port = free_port()
    pub = CommandPublisher(
        host="127.0.0.1", port=port, username="backend", password="x", max_attempts=3, retry_min_s=0.01, timeout_s=2
    )
    topic = command_topic("h1", DeviceKind.CALL_BUTTON, "btn1")
    with pytest.raises(PublishError) as caught:
        await pub.publish(topic, b"{}")
    assert caught.value.topic == topic and caught.value.attempts == 3 and caught.value.detail
    await pub.close()


@pytest.mark.integration
async def test_publisher_reconnects_after_losing_its_connection(
    broker: Broker, unique_site: str, caplog: pytest.LogCaptureFixture
) -> None:
    site = unique_site
    broker.provision([site])
    gw = GatewayPublisher(site=site, password=broker.gateway_password(site), host=broker.host, port=broker.port)
    await asyncio.to_thread(gw.connect)
    client_id = f"cmd-{unique_site}"
    try:
        async with CommandPublisher(
            **backend_login(broker),
            client_id=client_id,
            retry_min_s=0.05,
        ) as pub:
            topic = command_topic(site, DeviceKind.CALL_BUTTON, "btn1")
            await pub.publish(topic, b'{"n":1}')
            # Another connection with the same client id makes the broker drop ours (session takeover).
            assert await asyncio.to_thread(probe_credentials_as, broker, client_id), "takeover connection refused"
            await asyncio.sleep(0.2)
            await pub.publish(topic, b'{"n":2}')
            commands = await asyncio.to_thread(gw.wait_for_commands, 2, timeout=10)
    finally:
        await asyncio.to_thread(gw.close)
    assert [c.payload for c in commands] == [b'{"n":1}', b'{"n":2}']
    assert "attempt 1" in caplog.text  # the second publish found the connection gone and reconnected


def probe_credentials_as(broker: Broker, client_id: str) -> bool:
    """Connect once as the backend with a given client id, then disconnect."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(broker.backend_user, broker.backend_password)
    ok = threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: ok.set() if not reason.is_failure else None
    client.connect(broker.host, broker.backend_port)
    for _ in range(100):
        client.loop(timeout=0.05)
        if ok.is_set():
            break
    client.disconnect()
    return ok.is_set()
