"""Fixtures of the gateway tests: listeners on the real broker scoped to a test's own sites."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from gw_helpers import MakeListener, site_filters

from eldercare.stack import Broker
from gateway.deadletter import DeadLetterStore
from gateway.listener import MqttListener


@pytest.fixture
async def make_listener(broker: Broker) -> AsyncIterator[MakeListener]:
    """Start backend listeners subscribed to given sites; their sessions are discarded at the end."""
    started: list[MqttListener] = []

    async def make(*sites: str, client_id: str | None = None, **kwargs: object) -> MqttListener:
        listener = MqttListener(
            host=broker.host,
            port=broker.backend_port,
            username=broker.backend_user,
            password=broker.backend_password,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            subscriptions=kwargs.pop("subscriptions", None) or site_filters(*sites),
            **kwargs,  # type: ignore[arg-type]
        )
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
