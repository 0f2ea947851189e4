"""End-to-end acknowledgement: tell each home gateway which of its readings the backend holds durably.

mosquitto acknowledges a QoS 1 publish before it has saved it, so a broker killed with messages in memory loses
them although the gateway saw its PUBACK (docs/storage.md, "What survives what"). The project's own gateways
therefore keep every reading in a local outbox until the *backend* confirms it, and republish the rest. Once a
batch is durable (InfluxDB or the fsynced spool, the point where the backend PUBACKs it), its ``(device, seq)``
are collected here; every ``interval_s`` one message per gateway carries everything confirmed since the last one:

``ec/v1/{site}/gateway/{gw}/cmd``  ``{"cmd": "stored", "seqs": {"mat1": [[1041, 1060], [1062, 1062]]}}``

``seqs`` maps each device to closed ranges of sequence numbers. Confirmations go out at QoS 0: a lost one only
makes the gateway republish readings the backend then drops as duplicates (or stores again over the same point).
A gateway that does not read them ignores an unknown ``cmd``, as the contract asks (docs/contract.md).

>>> c = StoredConfirmations()
>>> c.add([("h1", "mat1", 3), ("h1", "mat1", 1), ("h1", "mat1", 2), ("h1", "band1", 9), ("h1", "mat1", 7)])
>>> [(t, p.decode()) for t, p in c.drain()]
[('ec/v1/h1/gateway/gw-h1/cmd', '{"cmd":"stored","seqs":{"mat1":[[1,3],[7,7]],"band1":[[9,9]]}}')]
>>> c.drain()
[]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

import msgspec

from gateway.models import CONTRACT_PREFIX
from gateway.mqtt_wire import DISCONNECT, PINGREQ, connect_packet
from gateway.tasks import cancel_and_wait

_LOG: Final = logging.getLogger(__name__)

STORED_CMD: Final = "stored"
"""The ``cmd`` value of a confirmation."""

_ENCODER: Final = msgspec.json.Encoder()


def default_gateway(site: str) -> str:
    """The gateway id a registry entry without one gets (docs/registry.md)."""
    return f"gw-{site}"


def stored_topic(site: str, gateway: str) -> str:
    """The downlink topic confirmations of ``site`` go to (a gateway already reads ``ec/v1/{site}/+/+/cmd``).

    >>> stored_topic("h1", "gw-h1")
    'ec/v1/h1/gateway/gw-h1/cmd'
    """
    return f"{CONTRACT_PREFIX}/{site}/gateway/{gateway}/cmd"


def ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted, merged closed ranges of sequence numbers.

    >>> ranges([5, 1, 2, 3, 3, 9, 10])
    [[1, 3], [5, 5], [9, 10]]
    """
    out: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


class StoredConfirmations:
    """Confirmed ``(site, device, seq)`` waiting to be sent, coalesced per gateway (not thread-safe: one loop)."""

    def __init__(self, *, gateway_of: Callable[[str], str | None] | None = None) -> None:
        self._gateway_of = gateway_of
        self._pending: dict[str, dict[str, list[int]]] = {}

    def __len__(self) -> int:
        return sum(len(seqs) for devices in self._pending.values() for seqs in devices.values())

    def add(self, keys: Iterable[tuple[str, str, int]]) -> None:
        """Remember durable readings (called once their batch is durable)."""
        pending = self._pending
        for site, device, seq in keys:
            pending.setdefault(site, {}).setdefault(device, []).append(seq)

    def drain(self) -> list[tuple[str, bytes]]:
        """One ``(topic, payload)`` per gateway for everything added since the last drain."""
        pending, self._pending = self._pending, {}
        out: list[tuple[str, bytes]] = []
        for site, devices in pending.items():
            gateway = (self._gateway_of(site) if self._gateway_of is not None else None) or default_gateway(site)
            body = {"cmd": STORED_CMD, "seqs": {device: ranges(seqs) for device, seqs in devices.items()}}
            out.append((stored_topic(site, gateway), _ENCODER.encode(body)))
        return out


class StoredSender(Protocol):
    """Sends drained confirmations: :class:`ConfirmationSender` (mosquitto) or a partition worker's NATS downlink."""

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Send ``messages``; return how many were written (a failure is logged, not raised)."""
        ...


def publish_packet(topic: str, payload: bytes, *, retain: bool = False) -> bytes:
    """An MQTT 3.1.1 PUBLISH at QoS 0 (no packet id, nothing comes back); ``retain`` sets the RETAIN flag.

    >>> publish_packet("a/b", b"{}").hex()
    '30070003612f627b7d'
    >>> publish_packet("a/b", b"", retain=True).hex()  # clears what is retained on a/b
    '31050003612f62'
    """
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + payload
    n, length = len(body), bytearray()
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | (0x80 if n else 0))
        if not n:
            break
    return (b"\x31" if retain else b"\x30") + bytes(length) + body


class ConfirmationSender:
    """Fire-and-forget QoS 0 publishes on a connection of its own (MQTT 3.1.1, clean session).

    The confirmations are one downlink message per gateway and second; through aiomqtt each publish cost 162 µs
    of CPU (an asyncio event and a loop turn per message), as much as ingesting 3-4 readings, so they are written
    as raw PUBLISH packets (a few µs each) with the CONNECT of :mod:`gateway.mqtt_wire`. Nothing is acknowledged
    at QoS 0: a broken connection drops what was being sent and is opened again on the next call; the gateways
    republish what stays unconfirmed.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        keepalive_s: int = 60,
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive_s, self.timeout_s = keepalive_s, timeout_s
        self._username, self._password = username, password
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._last_write = 0.0
        self._failures = 0
        self.sent = 0

    async def _connected(self) -> asyncio.StreamWriter:
        writer, reading = self._writer, self._reading
        if writer is not None and reading is not None and not reading.done() and not writer.is_closing():
            return writer
        await self._drop()
        reader, fresh = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
        try:
            fresh.write(
                connect_packet(
                    client_id=self.client_id,
                    username=self._username,
                    password=self._password,
                    keepalive=self.keepalive_s,
                    clean=True,
                )
            )
            connack = await asyncio.wait_for(reader.readexactly(4), self.timeout_s)
            if connack[0] != 0x20 or connack[3] != 0:
                raise ConnectionRefusedError(f"broker refused the connection (CONNACK {connack.hex()})")
        except BaseException:
            fresh.close()
            raise
        self._writer, self._reading = fresh, asyncio.create_task(self._discard(reader), name="confirmations-read")
        self._last_write = time.monotonic()
        return fresh

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        # Only PINGRESPs come back; reading them also tells when the broker closed the connection (EOF).
        with contextlib.suppress(OSError):
            while await reader.read(4096):
                pass

    async def _drop(self) -> None:
        writer, reading, self._writer, self._reading = self._writer, self._reading, None, None
        if reading is not None:
            await cancel_and_wait(reading)
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def publish_many(self, messages: Sequence[tuple[str, bytes]], *, retain: bool = False) -> int:
        """Send ``messages`` (an empty call keeps the connection alive); return how many were written."""
        if not messages and (self._writer is None or time.monotonic() - self._last_write < self.keepalive_s / 2):
            return 0
        try:
            writer = await self._connected()
            packets = b"".join(publish_packet(t, p, retain=retain) for t, p in messages)
            writer.write(packets if messages else PINGREQ)
            await asyncio.wait_for(writer.drain(), self.timeout_s)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self._failures += 1
            if self._failures == 1 or self._failures % 100 == 0:
                _LOG.warning("confirmations not sent (%d messages; failure %d): %s", len(messages), self._failures, exc)
            await self._drop()
            return 0
        self._failures = 0
        self._last_write = time.monotonic()
        self.sent += len(messages)
        return len(messages)

    async def close(self) -> None:
        """Disconnect cleanly."""
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(OSError):
                self._writer.write(DISCONNECT)
        await self._drop()
