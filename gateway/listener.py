"""The only module that talks to the MQTT broker with paho-mqtt (receive path and credential probes).

It is also the one place that picks the receive client: :func:`create_listener` returns the paho listener below
or the own asyncio MQTT 3.1.1 subscriber of :mod:`gateway.mqtt_wire` (``ELDERCARE_MQTT_CLIENT=native``, the
default: about twice paho's receive rate, same delivery guarantee); paho stays as the fallback. The backend gets
two sessions of that client, life-safety events on their own (:mod:`gateway.sessions`).

:class:`MqttListener` runs paho's network loop in its own thread and hands messages to asyncio in
batches. It connects with a stable client id and a persistent session (MQTT 3.1.1
``clean_session=False`` by default, or MQTT 5 ``clean_start=False`` with a session expiry),
subscribes at QoS 1 and acknowledges a message only when the caller says it is durable
(``manual_ack``): a message not acknowledged when the process dies is redelivered by the broker on the
next connection with the same client id.

Flow control is end to end: the broker sends at most so many unacknowledged messages (mosquitto's
``max_inflight_messages`` for MQTT 3.1.1 clients, which must exceed a batch; the CONNECT Receive
Maximum for MQTT 5), and the bounded inbox between the paho thread and asyncio makes the paho thread
wait if it is ever full, so memory never grows unbounded. MQTT 3.1.1 is the default because paho
parses MQTT 5 properties of every incoming message in Python, which costs about a third of the
receive path's throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Final, Literal, Required, TypedDict, Unpack

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.contract import MAIN_SUBSCRIPTIONS, MAX_PAYLOAD_BYTES, PRIORITY_SUBSCRIPTIONS, SUBSCRIPTIONS
from gateway.models import RawMessage as RawMessage  # re-exported: callers import it from here
from gateway.mqtt_wire import SESSION_SAVE_CHANGES, NativeListener, only_telemetry
from gateway.sessions import SplitListener, priority_client_id
from gateway.z2m.adapter import DEVICES_SUFFIX as Z2M_DEVICES_SUFFIX

_LOG: Final = logging.getLogger(__name__)

DEFAULT_RECEIVE_MAXIMUM: Final = 10_000
"""Unacknowledged QoS 1 messages the broker may have in flight to the listener (MQTT 5 Receive Maximum).

Also the default inbox capacity."""

DEFAULT_SESSION_EXPIRY_S: Final = 7 * 24 * 3600
"""How long the broker keeps the session (and queues messages) while the backend is away."""


class _Inbox:
    """Bounded hand-over from the paho thread to the event loop, woken once per batch, not per message."""

    def __init__(self, *, capacity: int, loop: asyncio.AbstractEventLoop) -> None:
        self.capacity = capacity
        self._loop = loop
        self._items: deque[RawMessage] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._event = asyncio.Event()
        self._consumer_waiting = False
        self._producer_waiting = False
        self._lingering = False
        self._not_telemetry = asyncio.Event()
        """Set (from the paho thread) when anything but telemetry arrives while a batch lingers: it goes at once."""
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._event.set)

    def put(self, item: RawMessage) -> None:
        """Add a message (paho thread); wait while the inbox is full."""
        with self._cond:
            while len(self._items) >= self.capacity and not self.closed:
                self._producer_waiting = True
                self._cond.wait(1.0)
            if self.closed:
                return  # not acknowledged: the broker keeps it for the next session
            self._items.append(item)
            wake = self._consumer_waiting
            self._consumer_waiting = False
            cut = self._lingering and not only_telemetry((item,))
            if cut:
                self._lingering = False
        if wake:
            self._wake()
        if cut:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._not_telemetry.set)

    def close(self) -> None:
        """Stop accepting messages and end the consumer's stream.

        Messages still waiting are dropped: they are not acknowledged, so the broker redelivers them.
        """
        with self._cond:
            self.closed = True
            self._items.clear()
            self._cond.notify_all()
        self._wake()

    def _take(self, n: int) -> list[RawMessage]:
        items = self._items
        out = [items.popleft() for _ in range(min(n, len(items)))]
        if self._producer_waiting and out:
            self._producer_waiting = False
            self._cond.notify_all()
        return out

    async def get(self, *, max_batch: int, max_wait_s: float) -> list[RawMessage] | None:
        """Wait for messages; return up to ``max_batch``, or None once closed and drained."""
        while True:
            with self._cond:
                if self._items:
                    batch = self._take(max_batch)
                    # Decided under the lock, so an event put right after the take ends the linger below.
                    linger = len(batch) < max_batch and max_wait_s > 0 and only_telemetry(batch)
                    if linger:
                        self._not_telemetry.clear()
                        self._lingering = True
                    break
                if self.closed:
                    return None
                self._event.clear()
                self._consumer_waiting = True
            await self._event.wait()
        if linger:
            # Linger briefly so a trickle of telemetry still forms batches (under load they fill on their own);
            # a batch with an event (an SOS, a fall, an alarm) or a status goes at once, and so does this one
            # as soon as such a message arrives while it lingers.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_s):
                    await self._not_telemetry.wait()
            with self._cond:
                self._lingering = False
                batch += self._take(max_batch - len(batch))
        return batch


def _failed(code: Any) -> bool:
    return bool(getattr(code, "is_failure", False))


class MqttListener:
    """Receives every uplink message of the contract at QoS 1 from a persistent session.

    Use as ``async with listener: async for batch in listener.batches(): ...; listener.ack(batch)``.

    Args:
        host: broker host.
        port: broker port.
        username: backend account (reads every uplink topic).
        password: its password.
        client_id: stable id naming the persistent session.
        subscriptions: topic filters (default: every uplink topic of the contract).
        qos: subscription QoS (1: at least once).
        keepalive: MQTT keepalive, seconds.
        receive_maximum: MQTT 5 only: unacknowledged messages the broker may send at once.
        capacity: inbox size between the paho thread and asyncio (default ``receive_maximum``).
        session_expiry_s: MQTT 5 only: how long the broker keeps the session while we are away.
        reconnect_min_s: first reconnect delay; doubles per failed attempt.
        reconnect_max_s: longest reconnect delay.
        mqtt5: connect with MQTT 5 instead of 3.1.1.
        max_payload_bytes: payloads above this are cut to this many bytes on arrival (and refused as oversize
            later), so the bounded inbox also bounds memory in bytes.
    """

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
        receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM,
        capacity: int | None = None,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 60,
        mqtt5: bool = False,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        if not 1 <= receive_maximum <= 65_535:
            raise ValueError(f"receive_maximum must be 1..65535, got {receive_maximum}")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, got {qos}")
        if not client_id:
            raise ValueError("a stable client_id is required for a persistent session")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.qos = qos
        self.keepalive = keepalive
        self.receive_maximum = receive_maximum
        self.capacity = capacity if capacity is not None else receive_maximum
        self.session_expiry_s = session_expiry_s
        self.mqtt5 = mqtt5
        self.max_payload_bytes = max_payload_bytes
        self.filters = tuple(subscriptions)
        self._username = username
        self._password = password
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._client: mqtt.Client | None = None
        self._inbox: _Inbox | None = None
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ack_lock = threading.Lock()
        self._connection = 0
        self._sub_mid: int | None = None
        self.connected = False
        self.connects = 0
        self.session_present = False
        self.last_error: str | None = None

    # -- lifecycle (event loop side) -------------------------------------------------------------

    async def start(self) -> None:
        """Start the network thread; it connects, subscribes and reconnects with backoff on its own."""
        if self._client is not None:
            raise RuntimeError("listener already started")
        self._loop = asyncio.get_running_loop()
        self._inbox = _Inbox(capacity=self.capacity, loop=self._loop)
        self._ready = asyncio.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.mqtt5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.mqtt5 else False,
            manual_ack=True,
        )
        client.username_pw_set(self._username, self._password)
        client.reconnect_delay_set(*self._reconnect)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        if self.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
            client.connect_async(self.host, self.port, self.keepalive, clean_start=False, properties=props)
        else:
            client.connect_async(self.host, self.port, self.keepalive)
        self._client = client
        client.loop_start()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until connected and subscribed (raises ``TimeoutError``)."""
        if self._ready is None:
            raise RuntimeError("listener not started")
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def close(self, *, end_session: bool = False) -> None:
        """Disconnect and stop the network thread.

        Unacknowledged messages stay with the broker for the next connection with the same client id,
        unless ``end_session`` asks the broker to discard the session (tests, decommissioning).
        """
        client, inbox = self._client, self._inbox
        if client is None or inbox is None:
            return
        inbox.close()
        props = None
        if end_session and self.mqtt5:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        with self._ack_lock:
            self._connection += 1
        self.connected = False  # a deliberate disconnect is not worth a warning
        client.disconnect(properties=props)
        await asyncio.to_thread(client.loop_stop)
        self._client = None
        if self._ready is not None:
            self._ready.clear()
        if end_session and not self.mqtt5:
            # MQTT 3.1.1 has no session expiry: connecting once with a clean session discards it.
            await asyncio.to_thread(self._discard_session)

    def _discard_session(self, timeout: float = 5.0) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        client.username_pw_set(self._username, self._password)
        done = threading.Event()
        client.on_connect = lambda *_args: done.set()
        try:
            client.connect(self.host, self.port, keepalive=5)
        except OSError as exc:
            _LOG.warning("Could not discard MQTT session %r: %s", self.client_id, exc)
            return
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        client.disconnect()

    async def __aenter__(self) -> MqttListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- consuming (event loop side) -------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet handed out."""
        return 0 if self._inbox is None else len(self._inbox)

    async def batches(
        self, *, max_batch: int = 5000, max_wait_s: float = 0.01
    ) -> AsyncGenerator[list[RawMessage], None]:
        """Yield received messages in batches of at most ``max_batch``; ends after :meth:`close`.

        A batch is handed out as soon as messages are there, after lingering at most ``max_wait_s``
        for more to arrive.
        """
        if self._inbox is None:
            raise RuntimeError("listener not started")
        inbox = self._inbox
        while True:
            batch = await inbox.get(max_batch=max_batch, max_wait_s=max_wait_s)
            if batch is None:
                return
            yield batch

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge messages to the broker (call once they are durable); returns how many were sent.

        Messages from an earlier connection are skipped: their ids mean nothing on the current one
        and the broker will deliver them again.
        """
        client = self._client
        if client is None:
            return 0
        sent = 0
        with self._ack_lock:
            current = self._connection
            for m in messages:
                if m.qos and m.connection == current:
                    client.ack(m.mid, m.qos)
                    sent += 1
        return sent

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _notify(self, action: str) -> None:
        loop, ready = self._loop, self._ready
        if loop is None or ready is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(ready.set if action == "set" else ready.clear)

    def _on_pre_connect(self, _client: mqtt.Client, _userdata: Any) -> None:
        with self._ack_lock:
            self._connection += 1

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if _failed(reason):
            self.last_error = f"connect refused: {reason}"
            _LOG.error("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self.connected = True
        self.connects += 1
        self.session_present = bool(getattr(flags, "session_present", False))
        _LOG.info("Connected to MQTT broker %s:%d (session present: %s)", self.host, self.port, self.session_present)
        # Subscribe on every connect: a resumed session has them already, a new one needs them.
        if self.mqtt5:
            result, mid = client.subscribe([(f, SubscribeOptions(qos=self.qos)) for f in self.filters])
        else:
            result, mid = client.subscribe([(f, self.qos) for f in self.filters])
        if result == mqtt.MQTT_ERR_SUCCESS:
            self._sub_mid = mid

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, codes: Any, _props: Any) -> None:
        refused = [f"{f}: {c}" for f, c in zip(self.filters, codes, strict=False) if _failed(c)]
        if refused:
            self.last_error = "subscription refused: " + "; ".join(refused)
            _LOG.error("MQTT broker refused subscriptions: %s", "; ".join(refused))
        if mid == self._sub_mid:
            self._notify("set")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._ack_lock:
            self._connection += 1
        if self.connected:
            _LOG.warning("Disconnected from MQTT broker %s:%d: %s", self.host, self.port, reason)
        self.connected = False
        self._notify("clear")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        inbox = self._inbox
        if inbox is None:
            return
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = bytes(msg._topic).decode("utf-8", errors="replace")  # decoded later into a bad_topic entry
        payload = msg.payload
        size = -1
        if len(payload) > self.max_payload_bytes and not topic.endswith(Z2M_DEVICES_SUFFIX):
            # Keep only what the dead-letter record stores: 10,000 queued 64 KiB messages would be 640 MB.
            size, payload = len(payload), payload[: self.max_payload_bytes]
        inbox.put(
            RawMessage(
                topic,
                payload if type(payload) is bytes else bytes(payload),
                msg.mid,
                msg.qos,
                bool(msg.retain),
                time.time_ns() // 1_000_000,
                self._connection,
                size,
            )
        )


ClientKind = Literal["paho", "native"]
"""Which MQTT client receives: paho-mqtt (:class:`MqttListener`) or ours (:mod:`gateway.mqtt_wire`)."""

CLIENT_KINDS: Final[tuple[ClientKind, ...]] = ("native", "paho")


class ListenerOptions(TypedDict, total=False):
    """The keyword arguments both receive clients take, with the same meaning and defaults."""

    host: Required[str]
    port: int
    username: Required[str]
    password: Required[str]
    client_id: Required[str]
    subscriptions: Sequence[str]
    qos: int
    keepalive: int
    capacity: int | None
    reconnect_min_s: int
    reconnect_max_s: int
    max_payload_bytes: int


Listener = MqttListener | NativeListener | SplitListener
"""What :func:`create_listener` returns: one session, or the backend's two (:mod:`gateway.sessions`)."""


def create_listener(
    *,
    client: ClientKind = "native",
    session_save_changes: int = SESSION_SAVE_CHANGES,
    priority_subscriptions: Sequence[str] = PRIORITY_SUBSCRIPTIONS,
    **options: Unpack[ListenerOptions],
) -> Listener:
    """The backend's receive path with the chosen client; every listener has the same interface and guarantee.

    By default two sessions of that client (:class:`gateway.sessions.SplitListener`): ``priority_subscriptions``
    on client id ``{client_id}-priority``, ``subscriptions`` (default :data:`gateway.contract.MAIN_SUBSCRIPTIONS`) on
    ``client_id``; filters that could deliver one message to both are refused. An empty ``priority_subscriptions``
    gives one session (default :data:`gateway.contract.SUBSCRIPTIONS`).

    Only the native client makes the broker save a session it has just created (``session_save_changes``,
    :meth:`gateway.mqtt_wire.NativeListener._save_session`).
    """
    if client not in CLIENT_KINDS:
        raise ValueError(f"unknown MQTT client {client!r}: expected one of {', '.join(CLIENT_KINDS)}")
    if not priority_subscriptions:
        return _session(client, session_save_changes, options)
    main: ListenerOptions = {**options, "subscriptions": tuple(options.get("subscriptions", MAIN_SUBSCRIPTIONS))}
    overlap = overlapping(main["subscriptions"], priority_subscriptions)
    if overlap:
        raise ValueError(f"the main and priority sessions would both receive {overlap[0]!r}: filters must not overlap")
    priority: ListenerOptions = {
        **options,
        "subscriptions": tuple(priority_subscriptions),
        "client_id": priority_client_id(options["client_id"]),
    }
    return SplitListener(
        main=_session(client, session_save_changes, main), priority=_session(client, session_save_changes, priority)
    )


def _session(client: ClientKind, session_save_changes: int, options: ListenerOptions) -> MqttListener | NativeListener:
    if client == "native":
        return NativeListener(**options, session_save_changes=session_save_changes)
    return MqttListener(**options)


def overlapping(filters: Sequence[str], others: Sequence[str]) -> list[str]:
    """Topics (a sample of each filter in ``others``) that a filter of both lists would match.

    >>> overlapping(["ec/v1/+/+/+/event"], ["ec/v1/+/smoke/+/event"])
    ['ec/v1/x/smoke/x/event']
    >>> overlapping(["ec/v1/+/door/+/event"], ["ec/v1/+/smoke/+/event"])
    []
    """
    out = []
    for other in others:
        sample = "/".join("x" if level in ("+", "#") else level for level in other.split("/"))
        if any(mqtt.topic_matches_sub(f, sample) for f in filters) or any(
            mqtt.topic_matches_sub(other, f) for f in filters
        ):
            out.append(sample)
    return out


def end_kept_session(
    *, host: str, port: int, username: str, password: str, client_id: str, timeout: float = 10.0
) -> bool:
    """Make the broker discard the session it keeps under ``client_id``; True if it had one.

    A connect with a clean session discards the kept one (MQTT 3.1.1, 3.1.2.4), then the client disconnects. A
    backend whose client id was changed, or that was retired, leaves its session behind: the broker queues every
    home's uplinks for it up to ``max_queued_messages`` and rewrites them all with each autosave, which slows it
    for every home. A client still connected under that id is disconnected by the broker (a takeover). Raise
    :class:`ConnectionError` if the broker cannot be reached, refuses the account or does not answer.
    """
    connack = functools.partial(
        _connack, host=host, port=port, username=username, password=password, client_id=client_id, timeout=timeout
    )
    # First ask with the session kept, to learn whether there was one (the CONNACK's session-present flag) ...
    code, present = connack(clean_session=False)
    if code != 0:
        raise ConnectionError(f"the broker at {host}:{port} refused {username!r} as {client_id!r} (reason {code})")
    # ... then again with a clean session, which discards it.
    connack(clean_session=True)
    return present


def _connack(
    *, host: str, port: int, username: str, password: str, client_id: str, clean_session: bool, timeout: float
) -> tuple[int, bool]:
    """Connect, wait for the broker's CONNACK and disconnect: its reason code and session-present flag.

    Raise :class:`ConnectionError` if the broker cannot be reached or does not answer within ``timeout``.
    """
    answers: list[tuple[int, bool]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, flags, reason, _p: answers.append((reason.value, bool(flags.session_present)))
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the broker at {host}:{port}: {exc}") from None
    deadline = time.monotonic() + timeout
    try:
        while not answers:
            if time.monotonic() > deadline:
                raise ConnectionError(f"the broker at {host}:{port} did not answer {client_id!r} in {timeout:g} s")
            client.loop(timeout=0.05)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop(timeout=0.05)
    return answers[0]


def probe_credentials(*, host: str, port: int, username: str, password: str, timeout: float = 2.0) -> bool:
    """True if the broker accepts a connection with these credentials."""
    try:
        code, _ = _connack(
            host=host, port=port, username=username, password=password, client_id=f"probe-{secrets.token_hex(4)}",
            clean_session=True, timeout=timeout,
        )  # fmt: skip
    except ConnectionError:
        return False
    return code == 0
