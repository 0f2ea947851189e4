"""The backend's two sessions (gateway/sessions.py) without a broker: filters, priority order, acknowledgements."""

from __future__ import annotations

import asyncio
import typing
from collections import deque
from collections.abc import AsyncGenerator, Sequence

import pytest
from paho.mqtt.client import topic_matches_sub as topic_matches

from gateway.codecs import call_button, door, gas, mattress, motion, smoke, wristband
from gateway.contract import (
    MAIN_SUBSCRIPTIONS,
    PRIORITY_KINDS,
    PRIORITY_SUBSCRIPTIONS,
    SUBSCRIPTIONS,
    is_priority_topic,
)
from gateway.listener import SplitListener, create_listener
from gateway.models import LIFE_SAFETY_EVENTS, DeviceKind, MessageType, RawMessage
from gateway.mqtt_wire import NativeListener

CODECS = [mattress.CODEC, wristband.CODEC, door.CODEC, smoke.CODEC, gas.CODEC, call_button.CODEC, motion.CODEC]


def test_the_priority_kinds_are_those_whose_contract_events_include_a_life_safety_one() -> None:
    kinds = set()
    for codec in CODECS:
        decoder = codec.decoders.get(MessageType.EVENT)
        tags = {s.__struct_config__.tag for s in typing.get_args(decoder.type)} if decoder is not None else set()
        if any((codec.kind, tag) in LIFE_SAFETY_EVENTS for tag in tags):
            kinds.add(codec.kind)
    assert kinds == set(PRIORITY_KINDS)


@pytest.mark.parametrize("kind", [k.value for k in DeviceKind] + ["toaster"])
@pytest.mark.parametrize("mtype", ["telemetry", "event", "status", "cmd"])
def test_every_topic_goes_to_at_most_one_session_and_the_right_one(kind: str, mtype: str) -> None:
    topic = f"ec/v1/h1/{kind}/d1/{mtype}"
    main = any(topic_matches(f, topic) for f in MAIN_SUBSCRIPTIONS)
    priority = any(topic_matches(f, topic) for f in PRIORITY_SUBSCRIPTIONS)
    assert not (main and priority)
    assert priority == is_priority_topic(topic) == (mtype == "event" and kind in {k.value for k in PRIORITY_KINDS})
    everything = any(topic_matches(f, topic) for f in SUBSCRIPTIONS)
    # Only an event of a kind the contract does not know is no longer received (docs/operations.md).
    assert (main or priority) == (everything and not (mtype == "event" and kind == "toaster"))
    assert any(topic_matches(f, "z2m/h1/lamp") for f in MAIN_SUBSCRIPTIONS)


def test_create_listener_gives_two_sessions_by_default_and_refuses_overlapping_filters() -> None:
    common = {"host": "127.0.0.1", "username": "u", "password": "p", "client_id": "eldercare-backend"}
    listener = create_listener(**common)  # type: ignore[arg-type]
    assert isinstance(listener, SplitListener)
    assert isinstance(listener.main, NativeListener) and isinstance(listener.priority, NativeListener)
    assert (listener.main.client_id, listener.priority.client_id) == ("eldercare-backend", "eldercare-backend-priority")
    assert listener.main.filters == MAIN_SUBSCRIPTIONS and listener.priority.filters == PRIORITY_SUBSCRIPTIONS
    paho = create_listener(client="paho", **common)  # type: ignore[arg-type]
    assert isinstance(paho, SplitListener) and {type(s).__name__ for s in paho.sessions} == {"MqttListener"}
    assert isinstance(create_listener(priority_subscriptions=(), **common), NativeListener)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not overlap"):
        create_listener(subscriptions=SUBSCRIPTIONS, **common)  # type: ignore[arg-type]


class FakeSession:
    """A session whose messages the test puts in; records what was acknowledged on it."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.connected = True
        self.connects = 1
        self.session_present = False
        self.last_error: str | None = None
        self.items: deque[RawMessage] = deque()
        self.acked: list[RawMessage] = []
        self.closed = False
        self._arrived = asyncio.Event()

    @property
    def queue_depth(self) -> int:
        return len(self.items)

    def put(self, *topics: str) -> None:
        self.items.extend(RawMessage(t, b"{}", i + 1, 1, False, 0) for i, t in enumerate(topics))
        self._arrived.set()

    async def start(self) -> None:
        pass

    async def wait_ready(self, timeout: float = 10.0) -> None:
        pass

    async def close(self, *, end_session: bool = False) -> None:
        self.closed = True
        self._arrived.set()

    async def batches(self, *, max_batch: int = 5000, max_wait_s: float = 0.01) -> AsyncGenerator[list[RawMessage]]:
        while True:
            while not self.items:
                if self.closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            yield [self.items.popleft() for _ in range(min(max_batch, len(self.items)))]

    def ack(self, messages: Sequence[RawMessage]) -> int:
        self.acked += messages
        return len(messages)


async def test_waiting_priority_messages_are_handed_out_first_and_acknowledged_on_their_session() -> None:
    main, priority = FakeSession("b"), FakeSession("b-priority")
    listener = SplitListener(main=main, priority=priority)
    main.put(*["ec/v1/flood/mattress/m1/telemetry"] * 7)
    batches = listener.batches(max_batch=3)
    first = await anext(batches)
    assert [m.topic for m in first] == ["ec/v1/flood/mattress/m1/telemetry"] * 3
    priority.put("ec/v1/h2/call_button/b1/event")
    # Main batches are ready too (the flood); the press goes first.
    assert [m.topic for m in await anext(batches)] == ["ec/v1/h2/call_button/b1/event"]
    second = await anext(batches)
    assert listener.queue_depth == 1
    assert listener.ack([*first, *second]) == 6 and len(main.acked) == 6 and priority.acked == []
    press = RawMessage("ec/v1/h2/call_button/b1/event", b"{}", 1, 1, False, 0)
    door = RawMessage("ec/v1/h2/door/d1/event", b"{}", 9, 1, False, 0)
    assert listener.ack([press, door]) == 2 and priority.acked == [press] and main.acked[-1] == door
    await listener.close()
    assert [b async for b in batches] == []  # ends after close (what was left is redelivered by the broker)


async def test_the_state_is_both_sessions() -> None:
    main, priority = FakeSession("b"), FakeSession("b-priority")
    listener = SplitListener(main=main, priority=priority)
    assert listener.connected and listener.last_error is None
    priority.connected, priority.last_error = False, "connect refused: not authorized"
    assert not listener.connected
    assert listener.last_error == "priority session b-priority: connect refused: not authorized"
    main.connected, main.last_error = False, "connection refused"
    assert listener.last_error == "connection refused"
    with pytest.raises(ValueError, match="different client ids"):
        SplitListener(main=main, priority=main)
