"""Fixtures of the gateway tests: listeners on the real broker scoped to a test's own sites.

``make_listener`` is parametrized over both receive clients (:data:`gateway.listener.CLIENT_KINDS`), so every
gateway test that uses it runs against the real mosquitto with our own MQTT client and with paho.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from gw_helpers import Listener, MakeListener, site_filters
from support.backend import backend_login

from eldercare.stack import Broker
from gateway.contract import main_filters, priority_filters
from gateway.deadletter import DeadLetterStore
from gateway.listener import CLIENT_KINDS, ClientKind, MqttListener
from gateway.mqtt_wire import NativeListener
from gateway.sessions import SplitListener, priority_client_id


@pytest.fixture(params=CLIENT_KINDS)
def mqtt_client(request: pytest.FixtureRequest) -> ClientKind:
    """The receive client under test."""
    kind: ClientKind = request.param
    return kind


@pytest.fixture
async def make_listener(broker: Broker, mqtt_client: ClientKind) -> AsyncIterator[MakeListener]:
    """Start backend listeners subscribed to given sites; their sessions are discarded at the end.

    ``split=True`` gives the backend's default receive path instead of one session: a :class:`SplitListener` of two
    sessions of the client under test, the given sites' life-safety events on ``{client_id}-priority``.
    """
    started: list[Listener] = []

    def session(
        client_id: str, subscriptions: Sequence[str], kwargs: dict[str, object]
    ) -> MqttListener | NativeListener:
        common = {
            **backend_login(broker),
            "client_id": client_id,
            "subscriptions": subscriptions,
        }
        if mqtt_client == "native":
            if kwargs.get("mqtt5", False):
                raise ValueError("MQTT 5 sessions are paho's; the native client speaks MQTT 3.1.1")
            kwargs = {k: v for k, v in kwargs.items() if k != "mqtt5"}
            return NativeListener(**common, **kwargs)  # type: ignore[arg-type]
        return MqttListener(**common, **kwargs)  # type: ignore[arg-type]

    async def make(*sites: str, client_id: str | None = None, split: bool = False, **kwargs: object) -> Listener:
        client_id = client_id or f"test-{uuid.uuid4().hex[:8]}"
        subscriptions = kwargs.pop("subscriptions", None)
        listener: Listener
        if split:
            main = session(client_id, [f for s in sites for f in main_filters(s)], kwargs)
            urgent = session(priority_client_id(client_id), [f for s in sites for f in priority_filters(s)], kwargs)
            listener = SplitListener(main=main, priority=urgent)
        else:
            listener = session(client_id, subscriptions or site_filters(*sites), kwargs)  # type: ignore[arg-type]
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
