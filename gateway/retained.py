"""Clearing what a gateway left retained at the broker on a topic no registered device publishes on.

A gateway's account may set the retain flag on anything it publishes (mosquitto's ACL cannot refuse the flag per
topic, and ``retain_available false`` would break the gateways' retained online status and Last Will), and the
broker keeps one retained message per topic for ever, in memory and in its persistence file. With made-up device ids
a gateway could leave one on as many topics as it likes (``ec/v1/{site}/{kind}/{any id}/status``): the broker's
memory, which every home needs, grew with each (``tests/test_e2e_hostile_gateway.py``). The backend refuses such a
message (``unknown_device``, ``kind_mismatch``, ``bad_topic``, ``unknown_site``: no registered device publishes on
that topic, so nothing legitimate is retained there) and now also clears the topic at the broker: a zero-length
retained publish, which MQTT defines as "delete the retained message". The clear is sent whether or not the message
was retained (a live subscriber cannot tell: MQTT 3.1.1 clears the flag on live deliveries); on a topic with nothing
retained it is a no-op.

The backend hears its own clear as a zero-length message on the same topic, refuses it the same way (recorded in the
dead-letter record like any other) and does not clear again: only a message with a payload asks for a clear. Topics
are collected per durable batch and sent with the stored-confirmations, at QoS 0 on the same connection
(:class:`gateway.confirm.ConfirmationSender`); one lost with a broken connection is cleared again the next time the
broker replays it (the backend's next subscription without a session) or the gateway publishes there again.
Zigbee2MQTT topics are not cleared (the backend may not write under ``z2m/``: it would command the home's devices).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from gateway.errors import Reason
from gateway.metrics import GatewayMetrics
from gateway.models import CONTRACT_PREFIX

if TYPE_CHECKING:
    from gateway.confirm import ConfirmationSender

CLEARED_REASONS: Final = frozenset({Reason.UNKNOWN_SITE, Reason.UNKNOWN_DEVICE, Reason.KIND_MISMATCH, Reason.BAD_TOPIC})
"""Refusals of what a topic names: no registered device publishes there, so whatever is retained there is cleared."""

MAX_PENDING: Final = 100_000
"""Topics waiting for their clear at most (one confirmation interval's worth); beyond it they are counted."""

_CONTRACT_TOPIC: Final = CONTRACT_PREFIX + "/"


def clears(topic: str, reason: Reason, payload: bytes) -> bool:
    """True if a refusal of ``payload`` on ``topic`` for ``reason`` asks for the topic's retained message to go.

    >>> clears("ec/v1/h1/door/made-up/status", Reason.UNKNOWN_DEVICE, b'{"online":true}')
    True
    >>> clears("ec/v1/h1/door/made-up/status", Reason.UNKNOWN_DEVICE, b"")  # the backend's own clear, heard back
    False
    >>> clears("ec/v1/h1/door/door1/status", Reason.BAD_JSON, b"{")  # a registered device's topic: never cleared
    False
    >>> clears("z2m/h1/made-up", Reason.UNKNOWN_DEVICE, b"{}")
    False
    """
    return bool(payload) and reason in CLEARED_REASONS and topic.startswith(_CONTRACT_TOPIC)


class RetainedClears:
    """Refused topics waiting to be cleared at the broker, each once per drain, in the order first refused.

    >>> q = RetainedClears(max_pending=2, metrics=GatewayMetrics())
    >>> q.add(["ec/v1/h1/door/a/status", "ec/v1/h1/door/b/status", "ec/v1/h1/door/a/status", "ec/v1/h1/door/c/status"])
    >>> q.drain(), q.dropped, q.metrics.retained_clears.labels(result="dropped")._value.get()
    (['ec/v1/h1/door/a/status', 'ec/v1/h1/door/b/status'], 1, 1.0)
    >>> q.sent(2); q.metrics.retained_clears.labels(result="sent")._value.get(), len(q)
    (2.0, 0)
    >>> import asyncio
    >>> from gateway.confirm import ConfirmationSender
    >>> nowhere = ConfirmationSender(host="127.0.0.1", port=1, username="u", password="p", client_id="c")
    >>> asyncio.run(RetainedClears().send(nowhere))  # nothing waiting: no connection is asked for
    0
    """

    def __init__(self, *, max_pending: int = MAX_PENDING, metrics: GatewayMetrics | None = None) -> None:
        self.max_pending = max_pending
        self.metrics = metrics
        self._topics: dict[str, None] = {}
        self.dropped = 0
        """Topics not queued because :attr:`max_pending` were waiting (cleared when refused again)."""

    def __len__(self) -> int:
        return len(self._topics)

    def add(self, topics: Iterable[str]) -> None:
        """Queue ``topics`` for a clear (a topic already waiting is not queued twice)."""
        for topic in topics:
            if topic in self._topics:
                continue
            if len(self._topics) >= self.max_pending:
                self.dropped += 1
                if self.metrics is not None:
                    self.metrics.retained_clears.labels(result="dropped").inc()
                continue
            self._topics[topic] = None

    def drain(self) -> list[str]:
        """The topics waiting, oldest first; the queue is empty afterwards."""
        topics, self._topics = list(self._topics), {}
        return topics

    def sent(self, n: int) -> None:
        """Count ``n`` clears written to the broker."""
        if self.metrics is not None and n:
            self.metrics.retained_clears.labels(result="sent").inc(n)

    async def send(self, sender: ConfirmationSender) -> int:
        """Write a clear for each topic waiting on ``sender``'s connection (QoS 0); return how many were written."""
        if not self._topics:
            return 0
        n = await sender.publish_many([(topic, b"") for topic in self.drain()], retain=True)
        self.sent(n)
        return n
