"""The backend's two broker sessions as one listener: life-safety events on their own session, handed out first.

Why two: the broker delivers one session's messages in arrival order with a bounded in-flight window, so with one
session a gateway flooding valid telemetry made a neighbour's SOS wait until the flood before it had been made
durable (12,000 to 16,000 of 20,000 readings; ``test_another_homes_sos_does_not_wait_behind_one_gateways_flood``).
The **priority session** (client id ``{client id}-priority``) subscribes only to the life-safety kinds' ``event``
topics (:data:`gateway.contract.PRIORITY_SUBSCRIPTIONS`), the **main session** to everything else
(:data:`gateway.contract.MAIN_SUBSCRIPTIONS`); the filters do not overlap, so no message comes twice. Each session
has its own queue and in-flight window at the broker, its own connection and reconnect loop, persistent session and
manual acknowledgements exactly as one listener alone (:class:`gateway.listener.MqttListener` or
:class:`gateway.mqtt_wire.NativeListener`, the same client for both).

:meth:`SplitListener.batches` hands out a priority batch before any main batch whenever one is waiting;
:meth:`SplitListener.ack` sends each message's acknowledgement on the session it came on (decided by its topic, since
the filters do not overlap; ``RawMessage.connection`` numbers connections per session).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Final, Protocol

from gateway.contract import is_priority_topic
from gateway.models import RawMessage

PRIORITY_SUFFIX: Final = "-priority"
"""Appended to the backend's client id for its priority session (still under the reserved ``eldercare`` prefix)."""

_FORMING_S: Final = 0.05
"""At most this long a main batch waits for a priority batch that is being formed (one loop turn in practice)."""


def priority_client_id(client_id: str) -> str:
    """The priority session's client id for the main session's ``client_id``.

    >>> priority_client_id("eldercare-backend")
    'eldercare-backend-priority'
    """
    return client_id + PRIORITY_SUFFIX


class Session(Protocol):
    """One receive client with a persistent session (:class:`gateway.listener.MqttListener`, ``NativeListener``)."""

    client_id: str
    connected: bool
    connects: int
    session_present: bool
    last_error: str | None

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet handed out."""
        ...

    async def start(self) -> None:
        """Start connecting in the background."""
        ...

    async def wait_ready(self, timeout: float = ...) -> None:
        """Wait until connected and subscribed."""
        ...

    async def close(self, *, end_session: bool = ...) -> None:
        """Disconnect; unacknowledged messages stay with the broker."""
        ...

    def batches(self, *, max_batch: int = ..., max_wait_s: float = ...) -> AsyncGenerator[list[RawMessage], None]:
        """Yield batches of received messages."""
        ...

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge messages once durable."""
        ...


class SplitListener:
    """Two sessions, one listener interface: ``async with listener: async for batch in listener.batches(): ...``.

    Args:
        main: the session subscribed to everything but the life-safety events.
        priority: the session subscribed to the life-safety events only.
        is_priority: which session a message's topic belongs to (must agree with the two sessions' filters).
    """

    def __init__(
        self, *, main: Session, priority: Session, is_priority: Callable[[str], bool] = is_priority_topic
    ) -> None:
        if main.client_id == priority.client_id:
            raise ValueError("the two sessions need different client ids")
        self.main = main
        self.priority = priority
        self.is_priority = is_priority
        self.client_id = main.client_id

    @property
    def sessions(self) -> tuple[Session, Session]:
        """Both sessions, priority first."""
        return (self.priority, self.main)

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start both sessions; each connects, subscribes and reconnects with backoff on its own."""
        await self.priority.start()
        try:
            await self.main.start()
        except BaseException:
            await self.priority.close()
            raise

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until both sessions are connected and subscribed (raises ``TimeoutError``)."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(self.priority.wait_ready(timeout), self.main.wait_ready(timeout))

    async def close(self, *, end_session: bool = False) -> None:
        """Disconnect both; unacknowledged messages stay with the broker unless ``end_session`` discards them."""
        await asyncio.gather(self.priority.close(end_session=end_session), self.main.close(end_session=end_session))

    async def __aenter__(self) -> SplitListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- state ----------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while both sessions are connected."""
        return self.priority.connected and self.main.connected

    @property
    def connects(self) -> int:
        """Connections made by the session that made the most (1 each: neither has reconnected)."""
        return max(self.priority.connects, self.main.connects)

    @property
    def session_present(self) -> bool:
        """True if the broker resumed both sessions on their last connection."""
        return self.priority.session_present and self.main.session_present

    @property
    def last_error(self) -> str | None:
        """Why a session is not connected (the main session's first), else the last error of either."""
        main, priority = self.main, self.priority
        if not main.connected and main.last_error is not None:
            return main.last_error
        if priority.last_error is not None and (not priority.connected or main.last_error is None):
            return f"priority session {priority.client_id}: {priority.last_error}"
        return main.last_error

    @property
    def queue_depth(self) -> int:
        """Messages received by either session and not yet handed out."""
        return self.priority.queue_depth + self.main.queue_depth

    # -- consuming ------------------------------------------------------------------------------------------

    async def batches(
        self, *, max_batch: int = 5000, max_wait_s: float = 0.01
    ) -> AsyncGenerator[list[RawMessage], None]:
        """Yield batches of either session, a waiting priority batch always first; ends after :meth:`close`.

        A batch holds one session's messages only. Priority batches never linger; main batches as one session's.
        """
        urgent = self.priority.batches(max_batch=max_batch, max_wait_s=0)
        rest = self.main.batches(max_batch=max_batch, max_wait_s=max_wait_s)
        next_urgent: asyncio.Future[list[RawMessage] | None] | None = None
        next_rest: asyncio.Future[list[RawMessage] | None] | None = None
        try:
            while True:
                if next_urgent is None:
                    next_urgent = asyncio.ensure_future(anext(urgent, None))
                if next_rest is None:
                    next_rest = asyncio.ensure_future(anext(rest, None))
                await asyncio.wait({next_urgent, next_rest}, return_when=asyncio.FIRST_COMPLETED)
                if not next_urgent.done() and self.priority.queue_depth:
                    # A priority message is there but its batch is still being formed: it goes before this one.
                    await asyncio.wait({next_urgent}, timeout=_FORMING_S)
                if next_urgent.done():
                    batch, next_urgent = next_urgent.result(), None
                else:
                    assert next_rest.done()
                    batch, next_rest = next_rest.result(), None
                if batch is None:
                    return  # closed: what either session still holds is redelivered by the broker
                yield batch
        finally:
            pending = [f for f in (next_urgent, next_rest) if f is not None]
            for f in pending:
                f.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for gen in (urgent, rest):
                with contextlib.suppress(RuntimeError):  # still running in a cancelled read: ended by it
                    await gen.aclose()

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge each message on the session it came on, once durable; returns how many PUBACKs were sent."""
        is_priority = self.is_priority
        urgent = [m for m in messages if is_priority(m.topic)]
        if not urgent:
            return self.main.ack(messages)
        if len(urgent) == len(messages):
            return self.priority.ack(messages)
        return self.priority.ack(urgent) + self.main.ack([m for m in messages if not is_priority(m.topic)])
