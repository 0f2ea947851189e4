"""Fixtures of the gateway tests: listeners on the real broker scoped to a test's own sites.

``make_listener`` is parametrized over both receive clients (:data:`gateway.listener.CLIENT_KINDS`), so every
gateway test that uses it runs against the real mosquitto with our own MQTT client and with paho.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from gw_helpers import MakeListener, site_filters

from eldercare.stack import Broker
from gateway.deadletter import DeadLetterStore
from gateway.listener import CLIENT_KINDS, ClientKind, MqttListener
from gateway.mqtt_wire import NativeListener


@pytest.fixture(params=CLIENT_KINDS)
def mqtt_client(request: pytest.FixtureRequest) -> ClientKind:
    """The receive client under test."""
    kind: ClientKind = request.param
    return kind


@pytest.fixture
async def make_listener(broker: Broker, mqtt_client: ClientKind) -> AsyncIterator[MakeListener]:
    """Start backend listeners subscribed to given sites; their sessions are discarded at the end."""
    started: list[MqttListener | NativeListener] = []

    async def make(*sites: str, client_id: str | None = None, **kwargs: object) -> MqttListener | NativeListener:
        common = {
            "host": broker.host,
            "port": broker.backend_port,
            "username": broker.backend_user,
            "password": broker.backend_password,
            "client_id": client_id or f"test-{uuid.uuid4().hex[:8]}",
            "subscriptions": kwargs.pop("subscriptions", None) or site_filters(*sites),
        }
        listener: MqttListener | NativeListener
        if mqtt_client == "native":
            if kwargs.pop("mqtt5", False):
                raise ValueError("MQTT 5 sessions are paho's; the native client speaks MQTT 3.1.1")
            listener = NativeListener(**common, **kwargs)  # type: ignore[arg-type]
        else:
            listener = MqttListener(**common, **kwargs)  # type: ignore[arg-type]
        await listener.start()
        await listener.wait_ready(timeout=10)
        started.append(listener)
        return listener

    yield make
    for listener in started:
        await listener.close(end_session=True)


@pytest.fixture
def deadletter(tmp_path: Path) -> Iterator[DeadLetterStore]:
    """A dead-letter record in the test's scratch directory."""
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        yield store
