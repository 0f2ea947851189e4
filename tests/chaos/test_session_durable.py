"""The backend's persistent session survives a broker kill -9 right after its first subscribe (issue 13).

mosquitto keeps a new session (and its subscriptions) in memory until its next save, which comes only after
``autosave_interval`` changes. A broker killed before that restarts without the backend's subscription, so every
message a gateway publishes before the backend is back and subscribed again is acknowledged to the gateway and
dropped (no subscriber). A gateway without an outbox (third-party, paho at QoS 1 here) never sends it again.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.backend import backend_login

from eldercare.stack import Broker
from gateway.mqtt_wire import NativeListener

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _third_party_publish(broker: Broker, site: str, payloads: list[bytes]) -> None:
    """A gateway without an outbox: paho at QoS 1, done once the broker acknowledged every message."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site)
    client.username_pw_set(site, broker.gateway_password(site))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(f"ec/v1/{site}/mattress/mat1/telemetry", p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(timeout=30)
        assert all(info.is_published() for info in infos)
    finally:
        client.disconnect()
        client.loop_stop()


def _backend(broker: Broker, site: str, client_id: str) -> NativeListener:
    """The backend's receive client as the pipeline builds it (defaults), for one home's telemetry."""
    return NativeListener(
        **backend_login(broker),
        client_id=client_id,
        subscriptions=(f"ec/v1/{site}/+/+/telemetry",),
    )


async def test_first_subscription_survives_a_broker_kill_right_after_it(own_broker: Broker) -> None:
    broker = own_broker
    site = "hfirst"
    broker.provision([site])
    client_id = f"eldercare-first-{uuid.uuid4().hex[:6]}"

    first = _backend(broker, site, client_id)
    await first.start()
    await first.wait_ready()
    assert not first.session_present  # a fresh broker: the session was just created
    await first.close()  # the backend goes away (restart, deploy); its session should stay
    broker.kill()  # right after the first subscribe: no autosave yet
    broker.start()

    # A third-party gateway reconnects first and publishes; the broker acknowledges every message.
    n = 200
    payloads = [
        f'{{"v":1,"ts":{time.time_ns() // 1_000_000},"seq":{i},"occupied":true,"hr":60,"rr":14,"movement":1}}'.encode()
        for i in range(n)
    ]
    await asyncio.to_thread(_third_party_publish, broker, site, payloads)

    second = _backend(broker, site, client_id)
    await second.start()
    await second.wait_ready()
    resumed = second.session_present
    got: list[bytes] = []
    batches = second.batches(max_wait_s=0.05)
    try:
        # Positive end signal: a marker published after the backend is back arrives behind whatever was queued.
        marker = b'{"marker":true}'
        await asyncio.to_thread(_third_party_publish, broker, site, [marker])
        while marker not in got:
            batch = await asyncio.wait_for(anext(batches), 30)
            got += [m.payload for m in batch]
            second.ack(batch)
    finally:
        await batches.aclose()
        await second.close(end_session=True)
    lost = n - len(set(got) - {marker})
    print(f"chaos: broker kill after the first subscribe: {n - lost} of {n} acknowledged messages delivered")
    assert resumed, "the broker lost the backend's session (and its subscription)"
    assert lost == 0, f"{lost} of {n} acknowledged messages dropped for want of a subscriber"


async def test_session_save_waits_for_the_broker(own_broker: Broker) -> None:
    """The backend is ready only once the broker has written the new session to disk (a positive signal)."""
    broker = own_broker
    broker.provision(["hsave"])
    saved = broker.server.persistence_file
    before = saved.stat().st_ino if saved.exists() else None
    listener = _backend(broker, "hsave", f"eldercare-save-{uuid.uuid4().hex[:6]}")
    await listener.start()
    await listener.wait_ready()
    try:
        # No wait needed: ready means saved (the save wrote a new file and renamed it over the old one).
        assert saved.exists() and saved.stat().st_ino != before
        assert listener.session_saves == 1 and not listener.session_present
    finally:
        await listener.close(end_session=True)
