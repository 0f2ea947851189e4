"""A simulated home gateway on MQTT: one paho-mqtt connection per home, as the real gateways do.

The gateway connects with client id = gateway id, username = site id and its password, sets its Last Will
(``{"online":false}``, retained, QoS 1) on ``ec/v1/{site}/gateway/{gw}/status``, publishes a retained
``online: true`` status on every (re)connect, publishes device messages at QoS 1, and listens on
``ec/v1/{site}/+/+/cmd`` for downstream commands (e.g. "help is coming"), which it logs and keeps in
:attr:`GatewayPublisher.commands`.

**Outbox (end-to-end acknowledgement, docs/contract.md "Stored confirmations").** The broker's PUBACK does not
mean the reading is safe: mosquitto saves its queue to disk only now and then, and a broker killed in between
loses messages it has acknowledged. With ``outbox=N`` the gateway keeps each reading it publishes (up to ``N``,
the oldest dropped and counted beyond that) until the backend confirms it is durable with a ``stored`` command
on ``ec/v1/{site}/gateway/{gw}/cmd``, and republishes what is still unconfirmed after every reconnect and, as a
safety net, once ``resend_after_s`` passed without a confirmation. The backend deduplicates by ``(device, seq)``
and stores a copy over the same point, so republishing never creates a second reading.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from firmware_sim.errors import PublishError
from firmware_sim.wire import (
    WILL_PAYLOAD,
    HomeWire,
    WireMessage,
    command_filter,
    encode_gateway_offline,
    encode_gateway_online,
    status_topic,
)

_LOG = logging.getLogger(__name__)

QOS: Final = 1
"""Every uplink and the command subscription use QoS 1 (at least once); the backend deduplicates by seq."""


STORED_CMD: Final = "stored"
"""``cmd`` of the backend's confirmation that readings are durable (``{"cmd": "stored", "seqs": {dev: ranges}}``)."""


def _device_and_seq(msg: WireMessage) -> tuple[str, int] | None:
    """The outbox key of an uplink message: its device (5th topic level) and ``seq``; None without a seq."""
    parts = msg.topic.split("/")
    if len(parts) != 6:
        return None
    try:
        seq = json.loads(msg.payload).get("seq")
    except (ValueError, AttributeError):
        return None
    return (parts[4], seq) if isinstance(seq, int) else None


def wall_ms() -> int:
    """Current wall-clock time in epoch ms (the default clock of a live gateway)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    """A downstream command a gateway received: when, on which topic, and the payload bytes."""

    received_ms: int
    topic: str
    payload: bytes

    @property
    def device(self) -> str:
        """Device id the command addresses (5th topic level)."""
        return self.topic.split("/")[4]

    @property
    def text(self) -> str:
        """Payload decoded as UTF-8 (commands are JSON)."""
        return self.payload.decode("utf-8", errors="replace")


class _Client(mqtt.Client):
    """paho's client, connecting without an explicit ``bind()`` when no source address is asked for.

    paho always passes ``source_address=("", 0)`` to ``socket.create_connection``, which then calls
    ``bind(("", 0))``: Linux finds a free port for an unconnected bind by scanning the bound ones, ~2 ms a socket
    with 10,000 open (19 s of a 26 s pooled connect), while ``connect()`` alone picks one in microseconds.
    """

    def _create_socket_connection(self) -> socket.socket:
        if self._bind_address or self._bind_port or self._get_proxy():
            return super()._create_socket_connection()
        return socket.create_connection((self._host, self._port), timeout=self._connect_timeout)


class GatewayPublisher:
    """One home gateway's MQTT connection (paho-mqtt, callback API v2, network loop in a thread).

    Use as a context manager: ``with GatewayPublisher(site=..., password=..., port=...) as gw: gw.publish(msg)``.
    """

    def __init__(
        self,
        *,
        site: str,
        password: str | None,
        gateway: str | None = None,
        host: str = "127.0.0.1",
        port: int = 1883,
        keepalive: int = 30,
        fw: str = "gw-sim-1.0",
        clock: Callable[[], int] = wall_ms,
        on_command: Callable[[ReceivedCommand], None] | None = None,
        announce: bool = True,
        threaded: bool = True,
        tls_ca: str | None = None,
        tls_cert: tuple[str, str] | None = None,
        outbox: int = 0,
        resend_after_s: float = 60.0,
    ) -> None:
        if outbox < 0 or resend_after_s <= 0:
            raise ValueError("outbox must be >= 0 and resend_after_s > 0")
        self.site = site
        self.gateway = gateway or f"gw-{site}"
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.fw = fw
        self.clock = clock
        self.on_command = on_command
        self.announce = announce
        """Publish the retained ``online: true`` on every connect (off when a simulation stream supplies it)."""
        self.threaded = threaded
        """Run paho's network loop in its own thread; a :class:`~firmware_sim.live.Fleet` drives it otherwise."""
        self.wire = HomeWire(site=site, gateway=self.gateway)
        self.commands: list[ReceivedCommand] = []
        """Downstream commands received (``stored`` confirmations are counted in :attr:`confirmed` instead)."""
        self.outbox_max = outbox
        """Readings kept until the backend confirms them (0: no outbox, PUBACK is the end, as older gateways)."""
        self.resend_after_s = resend_after_s
        self._outbox: OrderedDict[tuple[str, int], tuple[WireMessage, float]] = OrderedDict()
        self.confirmed = 0
        """Readings the backend confirmed as durable."""
        self.republished = 0
        """Readings published again because no confirmation came (after a reconnect or ``resend_after_s``)."""
        self.outbox_dropped = 0
        """Unconfirmed readings dropped because the outbox was full."""
        self.connect_count = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._failure: str | None = None
        self._started_ms = clock()
        # A persistent session (clean_session=False) keeps commands queued at QoS 1 while the gateway is away.
        self.client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.gateway,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if password is not None:
            self.client.username_pw_set(site, password)
        if tls_ca is not None:
            # MQTT over TLS: the broker's certificate must chain to tls_ca and match the host name.
            certfile, keyfile = tls_cert if tls_cert is not None else (None, None)
            self.client.tls_set(ca_certs=tls_ca, certfile=certfile, keyfile=keyfile)
        self.client.will_set(status_topic(site, self.gateway), WILL_PAYLOAD, qos=QOS, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- paho callbacks (run in paho's network thread) --------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._failure = str(reason_code)
            _LOG.warning("gateway %s: connection refused: %s", self.gateway, reason_code)
            self._connected.set()
            return
        self._failure = None
        self.connect_count += 1
        client.subscribe(command_filter(self.site), qos=QOS)
        if self.announce:
            uptime = max(0, (self.clock() - self._started_ms) // 1000)
            msg = encode_gateway_online(**self.wire.gateway_stamp(), ts=self.clock(), fw=self.fw, uptime_s=uptime)
            client.publish(msg.topic, msg.payload, qos=QOS, retain=True)
        if self.connect_count > 1:
            # A broker that restarted may have lost readings it had acknowledged: send every unconfirmed one again.
            self._resend(older_than_s=None)
        _LOG.info("gateway %s connected to %s:%d", self.gateway, self.host, self.port)
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        _LOG.info("gateway %s disconnected: %s", self.gateway, reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(rc.is_failure for rc in reason_codes):
            _LOG.warning("gateway %s: command subscription refused: %s", self.gateway, reason_codes)
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if self._stored(bytes(message.payload)):
            return
        cmd = ReceivedCommand(received_ms=self.clock(), topic=message.topic, payload=bytes(message.payload))
        with self._lock:
            self.commands.append(cmd)
        _LOG.warning("gateway %s received command on %s: %s", self.gateway, cmd.topic, cmd.text[:200])
        if self.on_command is not None:
            self.on_command(cmd)

    def _stored(self, payload: bytes) -> bool:
        """Handle a ``stored`` confirmation (True), or say it is another command (False)."""
        if b'"stored"' not in payload:  # cheap pre-check: most commands are not confirmations
            return False
        try:
            body = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(body, dict) or body.get("cmd") != STORED_CMD:
            return False
        seqs = body.get("seqs")
        if not isinstance(seqs, dict):
            return True
        removed = 0
        with self._lock:
            for device, ranges in seqs.items():
                for first, last in ranges if isinstance(ranges, list) else ():
                    for seq in range(int(first), int(last) + 1):
                        if self._outbox.pop((device, seq), None) is not None:
                            removed += 1
            self.confirmed += removed
        return True

    def _resend(self, *, older_than_s: float | None) -> int:
        """Publish again unconfirmed readings (all, or those sent longer than ``older_than_s`` ago)."""
        now = time.monotonic()
        due: list[WireMessage] = []
        with self._lock:
            outbox = self._outbox
            for _ in range(len(outbox)):
                key, (msg, sent) = next(iter(outbox.items()))
                if older_than_s is not None and now - sent < older_than_s:
                    break  # ordered by last send: the rest are younger
                due.append(msg)
                outbox[key] = (msg, now)
                outbox.move_to_end(key)
            self.republished += len(due)
        for msg in due:
            self.client.publish(msg.topic, msg.payload, qos=QOS, retain=msg.retain)
        if due:
            _LOG.info("gateway %s: republished %d unconfirmed readings", self.gateway, len(due))
        return len(due)

    def _keep(self, msg: WireMessage) -> None:
        key = _device_and_seq(msg)
        if key is None or msg.retain:
            return
        with self._lock:
            self._outbox[key] = (msg, time.monotonic())
            self._outbox.move_to_end(key)
            while len(self._outbox) > self.outbox_max:
                self._outbox.popitem(last=False)
                self.outbox_dropped += 1

    # -- public API ------------------------------------------------------------------------------------------

    @property
    def unconfirmed(self) -> int:
        """Readings in the outbox, not yet confirmed by the backend."""
        with self._lock:
            return len(self._outbox)

    def resend_unconfirmed(self, *, older_than_s: float | None = None) -> int:
        """Republish unconfirmed readings now (all, or those last sent longer ago); return how many."""
        return self._resend(older_than_s=older_than_s)

    def wait_confirmed(self, *, timeout: float = 10.0) -> bool:
        """Block until the outbox is empty (every reading confirmed) or the timeout; return whether it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.unconfirmed:
                return True
            time.sleep(0.02)
        return not self.unconfirmed

    @property
    def connected(self) -> bool:
        """True while the MQTT connection is up."""
        return self._connected.is_set() and self._failure is None

    def connect(self, *, timeout: float = 10.0) -> None:
        """Connect, start the network thread and wait for CONNACK and the command subscription.

        Without a thread (``threaded=False``) this only opens the TCP connection and sends CONNECT;
        the owner's loop reads the CONNACK.
        """
        try:
            self.client.connect(self.host, self.port, keepalive=self.keepalive)
        except OSError as exc:
            raise PublishError(site=self.site, reason=f"cannot connect to {self.host}:{self.port}: {exc}") from None
        if not self.threaded:
            return
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.client.loop_stop()
            raise PublishError(site=self.site, reason=f"no CONNACK within {timeout:.0f} s")
        if self._failure is not None:
            self.client.loop_stop()
            raise PublishError(site=self.site, reason=f"connection refused: {self._failure}")
        if not self._subscribed.wait(timeout):
            raise PublishError(site=self.site, reason=f"no SUBACK within {timeout:.0f} s")

    def publish(self, msg: WireMessage, *, qos: int = QOS) -> mqtt.MQTTMessageInfo:
        """Queue one message (paho buffers it while disconnected and sends it after reconnecting).

        With an outbox the message is kept until the backend confirms it; readings unconfirmed for
        ``resend_after_s`` are republished first (checked on each publish, cheaply: oldest first).
        """
        if self.outbox_max:
            self._keep(msg)
            self._resend(older_than_s=self.resend_after_s)
        info = self.client.publish(msg.topic, msg.payload, qos=qos, retain=msg.retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise PublishError(site=self.site, reason=f"publish on {msg.topic} failed: {mqtt.error_string(info.rc)}")
        return info

    def publish_all(self, messages: Iterable[WireMessage], *, timeout: float = 10.0) -> int:
        """Publish messages in order and wait until the broker acknowledged every one; return the count."""
        infos = [self.publish(m) for m in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(site=self.site, reason=f"broker did not acknowledge within {timeout:.0f} s")
            info.wait_for_publish(timeout=remaining)
            if not info.is_published():
                raise PublishError(site=self.site, reason=f"broker did not acknowledge within {timeout:.0f} s")
        return len(infos)

    def wait_for_commands(self, count: int = 1, *, timeout: float = 10.0) -> list[ReceivedCommand]:
        """Block until at least ``count`` commands arrived (or the timeout); return what arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.commands) >= count:
                    return list(self.commands)
            time.sleep(0.02)
        with self._lock:
            return list(self.commands)

    def close(self, *, timeout: float = 5.0) -> None:
        """Clean shutdown: publish ``online: false`` (retained), then disconnect (the broker drops the Will)."""
        if self.connected:
            info = self.publish(encode_gateway_offline(**self.wire.gateway_stamp(), ts=self.clock()))
            info.wait_for_publish(timeout=timeout)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def failure(self) -> str | None:
        """Why the broker refused the last connection attempt, if it did."""
        return self._failure

    @property
    def subscribed(self) -> bool:
        """True once the broker acknowledged the command subscription."""
        return self._subscribed.is_set()

    def crash(self) -> None:
        """Vanish without DISCONNECT, as on a power cut: the broker then publishes the Last Will."""
        if self.threaded:
            self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        self._connected.clear()

    def __enter__(self) -> GatewayPublisher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
