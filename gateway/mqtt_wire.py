"""A minimal MQTT 3.1.1 subscriber for the backend's one connection, on asyncio (``ELDERCARE_MQTT_CLIENT=native``).

Why our own: the receive path is the ingest ceiling, and paho spends it in Python per packet (a ``select``, three
``recv`` calls, a callback, a ``PUBACK`` written per message, a thread hop). This client parses every complete packet
of one socket read in one loop straight into :class:`~gateway.models.RawMessage` (topic strings are cached, since a
home sends on a handful of topics), and acknowledges a whole batch with one ``write``. It does only what the backend
needs: CONNECT with a persistent session (``clean_session=False``), SUBSCRIBE, receiving QoS 0/1 PUBLISH, PUBACK,
PINGREQ keep-alive, DISCONNECT. It never publishes; commands go out through :mod:`gateway.downlink`.

The delivery guarantee is the paho listener's, unchanged: a message is acknowledged only when the caller says it is
durable (:meth:`NativeListener.ack`), only on the connection it came on (after a reconnect the broker redelivers
instead, and the deduplicator drops the copy), and nothing is acknowledged on arrival. Flow control: the broker
sends at most ``max_inflight_messages`` unacknowledged messages, and when the inbox holds ``capacity`` messages the
rest of the read stays unparsed and the socket stops being read (``pause_reading``) until the consumer takes a batch,
so memory stays bounded (the capacity in messages, plus one socket read of bytes).

A connection is re-established with :func:`gateway.retry.retry`; a packet that breaks the protocol (a malformed
length, an unknown type, a topic running past its packet) ends the connection with a logged warning, and the next
connection resumes the session. Like the paho listener, this one does not speak TLS (the backend connects to the
broker on loopback or a private network).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import Final

from gateway.contract import MAX_PAYLOAD_BYTES, SUBSCRIPTIONS
from gateway.errors import MqttWireError
from gateway.models import RawMessage
from gateway.retry import Backoff, retry
from gateway.tasks import cancel_and_wait
from gateway.z2m.adapter import DEVICES_SUFFIX as Z2M_DEVICES_SUFFIX

_LOG: Final = logging.getLogger(__name__)

PINGREQ: Final = b"\xc0\x00"
DISCONNECT: Final = b"\xe0\x00"
_SUB_MID: Final = 1
_SAVE_MID: Final = 2
SESSION_SAVE_CHANGES: Final = 1000
"""Changes a new session sends so that mosquitto saves it at once (its ``autosave_interval`` on changes).

mosquitto keeps a new session and its subscriptions in memory until its next save; a broker killed before then
restarts without the backend's subscription and drops what gateways publish until the backend subscribes again
(issue 13). With ``autosave_on_changes``, every SUBSCRIBE and UNSUBSCRIBE is one change, so this many of them on
a filter nobody publishes to make the broker save (:meth:`NativeListener._save_session`)."""
SAVE_FILTER: Final = "ec/v1/eldercare-session/save/none/status"
"""Subscribed and unsubscribed to count changes: a reserved site id (``eldercare`` prefix), so nothing matches."""
_TOPIC_CACHE_MAX: Final = 50_000
_CONNACK_REASONS: Final = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def _varint(n: int) -> bytes:
    """MQTT "remaining length" encoding (1-4 bytes)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(*, client_id: str, username: str, password: str, keepalive: int, clean: bool) -> bytes:
    """CONNECT (MQTT 3.1.1) with user name and password."""
    flags = 0xC0 | (0x02 if clean else 0)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + keepalive.to_bytes(2, "big")
    body += _string(client_id) + _string(username) + _string(password)
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(mid: int, filters: Sequence[str], qos: int) -> bytes:
    """SUBSCRIBE to every filter at ``qos``."""
    body = mid.to_bytes(2, "big") + b"".join(_string(f) + bytes([qos]) for f in filters)
    return b"\x82" + _varint(len(body)) + body


def unsubscribe_packet(mid: int, filters: Sequence[str]) -> bytes:
    """UNSUBSCRIBE from every filter."""
    body = mid.to_bytes(2, "big") + b"".join(_string(f) for f in filters)
    return b"\xa2" + _varint(len(body)) + body


def only_telemetry(batch: Sequence[RawMessage]) -> bool:
    """True if every message is contract telemetry: only such a batch may wait for more to arrive.

    >>> only_telemetry([RawMessage("ec/v1/h1/mattress/m1/telemetry", b"", 1, 1, False, 0)])
    True
    >>> only_telemetry([RawMessage("ec/v1/h1/wristband/w1/event", b"", 1, 1, False, 0)])
    False
    """
    return all(m.topic.endswith(_TELEMETRY_SUFFIX) for m in batch)


_TELEMETRY_SUFFIX: Final = "/telemetry"


def puback_packets(mids: Sequence[int]) -> bytes:
    """One PUBACK per packet id, concatenated for a single write.

    >>> puback_packets([1, 258]).hex()
    '4002000140020102'
    """
    return struct.pack(f">{len(mids)}I", *[0x40020000 | m for m in mids])


class _Connection(asyncio.Protocol):
    """One TCP connection to the broker: parses packets as they arrive, hands PUBLISHes to the listener."""

    def __init__(self, owner: NativeListener, number: int) -> None:
        loop = asyncio.get_running_loop()
        self.owner = owner
        self.number = number
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.connack: asyncio.Future[bool] = loop.create_future()
        self.suback: asyncio.Future[list[int]] = loop.create_future()
        self.unsuback: asyncio.Future[None] = loop.create_future()
        self.pingresp: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.last_heard = time.monotonic()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.connack, self.suback, self.unsuback, self.pingresp):
            if fut is not None and not fut.done():
                fut.set_exception(MqttWireError(f"connection lost: {exc or 'closed by the broker'}"))
                fut.exception()  # retrieved: raised to a waiter if there is one, never logged as unhandled
        if not self.lost.done():
            self.lost.set_result(None)
        self.owner._connection_lost(self, exc)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self._process()  # packets held back in the buffer first; this may pause again
            if not self.paused:
                self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        self.buffer += data
        self._process()

    def _process(self) -> None:
        buf = self.buffer
        try:
            used = self._parse(buf)
        except MqttWireError as exc:
            self.owner._protocol_error(exc)
            buf.clear()
            self.abort()
            return
        if used:
            del buf[:used]

    def _parse(self, buf: bytearray) -> int:
        """Handle every complete packet in ``buf``; return how many bytes were used."""
        owner = self.owner
        end = len(buf)
        pos = 0
        publishes: list[RawMessage] = []
        received_ms = time.time_ns() // 1_000_000
        topics = owner._topics
        limit = owner.max_payload_bytes
        number = self.number
        room = owner.capacity - len(owner._items)
        while end - pos >= 2:
            first = buf[pos]
            i = pos + 1
            length = buf[i] & 0x7F
            if buf[i] & 0x80:
                length, i = self._long_length(buf, i, end)
                if length < 0:
                    break  # the length itself is not complete yet
            i += 1
            stop = i + length
            if stop > end:
                break
            kind = first >> 4
            if kind == 3 and room <= 0:
                # The inbox is full: the rest stays in the buffer and the socket is not read until a batch is
                # taken, so the inbox never holds more than its capacity. Control packets before this point
                # (a CONNACK, a SUBACK behind a resumed session's queue) have been handled.
                self.pause()
                break
            if kind == 3:
                qos = (first >> 1) & 3
                if length < 2:
                    raise MqttWireError("PUBLISH shorter than its topic length")
                t_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
                if qos:
                    if qos > 1:
                        raise MqttWireError(f"PUBLISH with QoS {qos} on a QoS 1 subscription")
                    p_start = t_end + 2
                    if p_start > stop:
                        raise MqttWireError("PUBLISH topic runs past the end of its packet")
                    mid = (buf[t_end] << 8) | buf[t_end + 1]
                    if not mid:
                        raise MqttWireError("QoS 1 PUBLISH without a packet identifier")
                else:
                    p_start = t_end
                    mid = 0
                    if p_start > stop:
                        raise MqttWireError("PUBLISH topic runs past the end of its packet")
                raw_topic = bytes(buf[i + 2 : t_end])
                topic = topics.get(raw_topic)
                if topic is None:
                    topic = owner._remember_topic(raw_topic)
                size = stop - p_start
                if size > limit and not topic.endswith(Z2M_DEVICES_SUFFIX):
                    # Keep only what the dead-letter record stores, so the bounded inbox also bounds bytes.
                    payload = bytes(buf[p_start : p_start + limit])
                else:
                    payload = bytes(buf[p_start:stop])
                    size = -1
                publishes.append(RawMessage(topic, payload, mid, qos, bool(first & 1), received_ms, number, size))
                room -= 1
            elif kind == 2:
                if length != 2:
                    raise MqttWireError(f"CONNACK of {length} bytes")
                code = buf[i + 1]
                if not self.connack.done():
                    if code:
                        reason = _CONNACK_REASONS.get(code, f"code {code}")
                        self.connack.set_exception(MqttWireError(f"connect refused: {reason}", code=code))
                    else:
                        self.connack.set_result(bool(buf[i] & 1))
            elif kind == 9:
                if length < 3:
                    raise MqttWireError(f"SUBACK of {length} bytes")
                if not self.suback.done():
                    self.suback.set_result(list(buf[i + 2 : stop]))
            elif kind == 11:
                if not self.unsuback.done():
                    self.unsuback.set_result(None)
            elif kind == 13:
                if self.pingresp is not None and not self.pingresp.done():
                    self.pingresp.set_result(None)
            elif kind in (0, 15):
                raise MqttWireError(f"reserved packet type {kind}")
            # A PINGRESP nobody waits for only proves the broker is alive (last_heard); others are not sent here.
            pos = stop
        if publishes:
            owner._deliver(self, publishes)
        return pos

    @staticmethod
    def _long_length(buf: bytearray, i: int, end: int) -> tuple[int, int]:
        """Decode a multi-byte remaining length starting at ``i``; ``(-1, i)`` if incomplete."""
        length = 0
        shift = 0
        while True:
            if i >= end:
                return -1, i
            b = buf[i]
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                return length, i
            shift += 7
            i += 1
            if shift > 21:
                raise MqttWireError("remaining length longer than 4 bytes")


class NativeListener:
    """The backend's MQTT 3.1.1 subscriber on asyncio; the same interface as :class:`gateway.listener.MqttListener`.

    Use as ``async with listener: async for batch in listener.batches(): ...; listener.ack(batch)``. Arguments are
    those of the paho listener (``mqtt5`` is not supported: the persistent session is MQTT 3.1.1's
    ``clean_session=False``; ``receive_maximum`` only sets the default capacity).
    """

    linger_ends_on_event: bool = True
    """False: a lingering batch waits out ``max_wait_s`` whatever arrives (before 2026-12-03; for benchmarks)."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 1883,
        username: str,
        password: str,
        client_id: str,
        subscriptions: Sequence[str] = SUBSCRIPTIONS,
        qos: int = 1,
        keepalive: int = 30,
        receive_maximum: int = 10_000,
        capacity: int | None = None,
        reconnect_min_s: float = 1,
        reconnect_max_s: float = 60,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        connect_timeout_s: float = 10.0,
        session_save_changes: int = SESSION_SAVE_CHANGES,
    ) -> None:
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, got {qos}")
        if not client_id:
            raise ValueError("a stable client_id is required for a persistent session")
        if keepalive < 1:
            raise ValueError(f"keepalive must be at least 1 s, got {keepalive}")
        if session_save_changes < 0:
            raise ValueError(f"session_save_changes must be 0 (off) or more, got {session_save_changes}")
        self.host = host
        self.session_save_changes = session_save_changes
        self.session_saves = 0
        self.port = port
        self.client_id = client_id
        self.qos = qos
        self.keepalive = keepalive
        self.capacity = capacity if capacity is not None else receive_maximum
        self.max_payload_bytes = max_payload_bytes
        self.connect_timeout_s = connect_timeout_s
        self.filters = tuple(subscriptions)
        self._username = username
        self._password = password
        self._backoff = Backoff(first_s=reconnect_min_s, max_s=reconnect_max_s)
        self._topics: dict[bytes, str] = {}
        self._items: deque[RawMessage] = deque()
        self._arrived = asyncio.Event()
        self._not_telemetry = asyncio.Event()
        """Set when a message other than telemetry arrives: a lingering batch is handed out at once."""
        self._ready = asyncio.Event()
        self._conn: _Connection | None = None
        self._connection = 0
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = False
        self.connects = 0
        self.session_present = False
        self.last_error: str | None = None
        self.protocol_errors = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; it subscribes and reconnects with backoff on its own."""
        if self._runner is not None:
            raise RuntimeError("listener already started")
        self._closed = False  # a closed listener may be started again, like the paho one
        self._runner = asyncio.create_task(self._run(), name=f"mqtt-{self.client_id}")

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until connected and subscribed (raises ``TimeoutError``)."""
        if self._runner is None:
            raise RuntimeError("listener not started")
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def close(self, *, end_session: bool = False) -> None:
        """Disconnect; unacknowledged messages stay with the broker unless ``end_session`` discards the session."""
        runner = self._runner
        if runner is None:
            return
        self._closed = True
        self._items.clear()  # not acknowledged: the broker redelivers them on the next connection
        self._arrived.set()
        self.connected = False
        conn = self._conn
        if conn is not None:
            conn.write(DISCONNECT)
            if conn.transport is not None:
                conn.transport.close()
        # A cancellation the runner's connect swallowed (gateway/tasks.py) is repeated; it also stops at the next
        # check of ``_closed``.
        await cancel_and_wait(runner)
        self._runner = None
        self._ready.clear()
        if end_session:
            await self._discard_session()

    async def __aenter__(self) -> NativeListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        while not self._closed:
            conn = await retry(
                self._connect,
                backoff=self._backoff,
                retry_on=(OSError, MqttWireError, TimeoutError),
                on_failure=self._connect_failed,
            )
            if self._closed:  # closed while connecting (its cancellation swallowed, see close): not connected
                conn.abort()  # type: ignore[unreachable]  # mypy keeps the loop test's narrowing across the await
                self.connected = False
                self._ready.clear()
                return
            if conn.lost.done():  # lost while subscribing (connection_lost ran first): not connected after all
                self.connected = False
                self._ready.clear()
                continue
            pinger = asyncio.create_task(self._keepalive(conn), name=f"mqtt-ping-{self.client_id}")
            try:
                await conn.lost
            finally:
                pinger.cancel()

    def _connect_failed(self, attempt: int, exc: Exception, delay: float) -> None:
        self.last_error = str(exc) or f"no answer within {self.connect_timeout_s:.0f} s ({type(exc).__name__})"
        log = _LOG.error if isinstance(exc, MqttWireError) and exc.code else _LOG.warning
        if attempt == 1 or attempt % 10 == 0:
            log("MQTT broker %s:%d: %s; retrying in %.1f s", self.host, self.port, self.last_error, delay)

    async def _open(self, *, clean: bool) -> _Connection:
        loop = asyncio.get_running_loop()
        self._connection += 1
        number = self._connection
        _transport, conn = await asyncio.wait_for(
            loop.create_connection(lambda: _Connection(self, number), self.host, self.port),
            self.connect_timeout_s,
        )
        if not clean:
            # Current before the CONNACK: a resumed session's queued messages may come in the same read.
            self._conn = conn
        try:
            conn.write(
                connect_packet(
                    client_id=self.client_id,
                    username=self._username,
                    password=self._password,
                    keepalive=self.keepalive,
                    clean=clean,
                )
            )
            self.session_present = await asyncio.wait_for(asyncio.shield(conn.connack), self.connect_timeout_s)
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _connect(self) -> _Connection:
        conn = await self._open(clean=False)
        conn.write(subscribe_packet(_SUB_MID, self.filters, self.qos))
        if self.session_present:
            # The resumed session already holds the subscriptions, and the broker sends its queue before the
            # SUBACK: with more queued than the inbox holds, the SUBACK only arrives once batches are taken.
            conn.suback.add_done_callback(self._check_suback)
        else:
            try:
                await asyncio.wait_for(asyncio.shield(conn.suback), self.connect_timeout_s)
            except BaseException:
                conn.abort()
                raise
            self._check_suback(conn.suback)
            if self.session_save_changes:
                await self._save_session(conn)
        self.connected = True
        self.connects += 1
        _LOG.info("Connected to MQTT broker %s:%d (session present: %s)", self.host, self.port, self.session_present)
        self._ready.set()
        return conn

    async def _save_session(self, conn: _Connection) -> None:
        """Make the broker write the session it has just created to disk before the backend calls itself ready.

        The broker had no session for this client id (first start, or a broker that lost it), so the session and its
        subscriptions live only in the broker's memory until its next save. ``session_save_changes`` SUBSCRIBE
        packets and one UNSUBSCRIBE of :data:`SAVE_FILTER` count that many changes, which makes mosquitto
        (``autosave_on_changes``) save at the end of that loop turn; the UNSUBACK says it processed them, and the
        answer to a PINGREQ sent after it says the loop turn with the save is over. A broker that saves on a
        timer instead (or NATS, which stores sessions in JetStream) only gets about 50 kB of idempotent packets, once
        per new session.
        """
        try:
            conn.write(subscribe_packet(_SAVE_MID, (SAVE_FILTER,), 0) * self.session_save_changes)
            conn.write(unsubscribe_packet(_SAVE_MID, (SAVE_FILTER,)))
            await asyncio.wait_for(asyncio.shield(conn.unsuback), self.connect_timeout_s)
            conn.pingresp = asyncio.get_running_loop().create_future()
            conn.write(PINGREQ)
            await asyncio.wait_for(asyncio.shield(conn.pingresp), self.connect_timeout_s)
        except BaseException:
            conn.abort()
            raise
        self.session_saves += 1
        _LOG.info("New MQTT session %r: the broker saved it (%d changes)", self.client_id, self.session_save_changes)

    def _check_suback(self, suback: asyncio.Future[list[int]]) -> None:
        if suback.cancelled() or suback.exception() is not None:
            return  # the connection was lost; the next one subscribes again
        codes = suback.result()
        refused = [f"{f}: 0x{c:02x}" for f, c in zip(self.filters, codes, strict=False) if c >= 0x80]
        if refused:
            self.last_error = "subscription refused: " + "; ".join(refused)
            _LOG.error("MQTT broker refused subscriptions: %s", "; ".join(refused))

    async def _keepalive(self, conn: _Connection) -> None:
        """PINGREQ every half keep-alive; a broker silent for 1.5 keep-alives is taken as gone."""
        while True:
            await asyncio.sleep(self.keepalive / 2)
            if time.monotonic() - conn.last_heard > self.keepalive * 1.5:
                _LOG.warning("MQTT broker %s:%d silent for %d s; reconnecting", self.host, self.port, self.keepalive)
                conn.abort()
                return
            conn.write(PINGREQ)

    async def _discard_session(self) -> None:
        """Connect once with a clean session (MQTT 3.1.1 has no session expiry), then disconnect."""
        try:
            conn = await self._open(clean=True)
        except (OSError, MqttWireError, TimeoutError) as exc:
            _LOG.warning("Could not discard MQTT session %r: %s", self.client_id, exc)
            return
        conn.write(DISCONNECT)
        if conn.transport is not None:
            conn.transport.close()
        await conn.lost

    # -- called by the connection ----------------------------------------------------------------------------

    def _remember_topic(self, raw: bytes) -> str:
        try:
            topic = raw.decode()
        except UnicodeDecodeError:
            topic = raw.decode(errors="replace")  # decoded later into a bad_topic dead letter
        if len(self._topics) >= _TOPIC_CACHE_MAX:
            self._topics.clear()
        self._topics[raw] = topic
        return topic

    def _deliver(self, conn: _Connection, messages: list[RawMessage]) -> None:
        if self._closed or conn is not self._conn:
            return  # not acknowledged: redelivered on the next connection
        self._items.extend(messages)
        self._arrived.set()
        if self.linger_ends_on_event and not self._not_telemetry.is_set() and not only_telemetry(messages):
            self._not_telemetry.set()

    def _protocol_error(self, exc: MqttWireError) -> None:
        self.protocol_errors += 1
        self.last_error = f"protocol error: {exc.detail}"
        _LOG.warning("MQTT broker %s:%d broke the protocol (%s); reconnecting", self.host, self.port, exc.detail)

    def _connection_lost(self, conn: _Connection, exc: Exception | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._ready.clear()
        if self.connected and not self._closed:
            _LOG.warning("Disconnected from MQTT broker %s:%d: %s", self.host, self.port, exc or "closed")
        self.connected = False

    # -- consuming ------------------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet handed out."""
        return len(self._items)

    def _take(self, n: int) -> list[RawMessage]:
        items = self._items
        if n >= len(items):
            out = list(items)
            items.clear()
        else:
            out = [items.popleft() for _ in range(n)]
        conn = self._conn
        if conn is not None and conn.paused and len(items) < self.capacity:
            conn.resume()
        return out

    async def batches(
        self, *, max_batch: int = 5000, max_wait_s: float = 0.01
    ) -> AsyncGenerator[list[RawMessage], None]:
        """Yield received messages in batches of at most ``max_batch``; ends after :meth:`close`.

        A batch is handed out as soon as messages are there, after lingering at most ``max_wait_s`` for more if it
        holds only telemetry (:func:`only_telemetry`); the linger ends as soon as anything else arrives (an SOS).
        """
        if self._runner is None:
            raise RuntimeError("listener not started")
        while True:
            while not self._items:
                if self._closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            if self._closed:
                return
            self._not_telemetry.clear()
            batch = self._take(max_batch)
            if len(batch) < max_batch and max_wait_s > 0 and only_telemetry(batch):
                # Linger briefly so a trickle of telemetry still forms batches (under load they fill on their own);
                # a batch with an event (an SOS, a fall, an alarm) or a status goes at once, and so does this one
                # as soon as such a message arrives while it lingers.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max_wait_s):
                        await self._not_telemetry.wait()
                batch += self._take(max_batch - len(batch))
            yield batch

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge messages once durable, in one write; returns how many PUBACKs were sent.

        Messages from an earlier connection are skipped: the broker delivers them again.
        """
        conn = self._conn
        if conn is None or self._closed:
            return 0
        current = conn.number
        mids = [m.mid for m in messages if m.qos and m.connection == current]
        if mids:
            conn.write(puback_packets(mids))
        return len(mids)
