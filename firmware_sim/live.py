"""Live mode: publish a simulation to a real broker in real (or scaled) time, one connection per home gateway.

All connections are driven by one thread with a selector (paho-mqtt's external-loop API: ``loop_read``,
``loop_write``, ``loop_misc``), so one process can hold 10,000+ gateways (the pooled mode for load
tests) without a thread per home. A gateway outage in the simulation is played for real: at the Last
Will entry the connection is dropped without DISCONNECT (the broker then publishes the real Will), and
it reconnects when the home's next message is due.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from firmware_sim.errors import PublishError
from firmware_sim.home_gateway import GatewayPublisher, ReceivedCommand
from firmware_sim.scenario import Message
from firmware_sim.wire import WILL_PAYLOAD, WireMessage

_LOG = logging.getLogger(__name__)
_MISC_EVERY_S: Final = 0.5
RAMP: Final = 200
"""Connections opened at once while connecting a pooled fleet: a burst of 10,000 SYNs overflows the broker's
listen backlog (each dropped SYN costs a 1 s retransmit), while a window of a few hundred keeps it busy."""
FD_MARGIN: Final = 64
"""File descriptors kept free for everything else (logs, the selector, DNS)."""


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to at least ``needed`` (up to the hard limit); return the new limit.

    Each connection is a socket; the default soft limit (often 1024) allows fewer than that many homes. A broker
    started afterwards from this process inherits the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        _LOG.info("raised the open-file limit from %d to %d", soft, new)
        soft = new
    return int(soft)


@dataclass(slots=True)
class LiveStats:
    """What a live run did (mutable counters, returned at the end)."""

    published: int = 0
    skipped: int = 0
    crashes: int = 0
    reconnects: int = 0
    commands: list[ReceivedCommand] = field(default_factory=list)
    lag_ms_max: float = 0.0
    """Worst lateness of a publication against its scheduled wall time."""
    connected: int = 0
    """Gateways connected (CONNACK and SUBACK) before publishing started."""
    connect_s: float = 0.0
    """Wall time to connect them all."""
    publish_s: float = 0.0
    """Wall time from the first publication to the last acknowledgement."""
    carried: int = 0
    """Gateway and device statuses from before ``skip_before_ms`` published at the start (the last of each)."""


class Fleet:
    """Many simulated home gateways in one thread; each has its own MQTT connection (client id = gateway id)."""

    def __init__(
        self,
        *,
        sites: Iterable[tuple[str, str]],
        host: str = "127.0.0.1",
        port: int = 1883,
        password_for: Callable[[str], str | None] = lambda site: None,
        keepalive: int = 30,
        on_command: Callable[[ReceivedCommand], None] | None = None,
        outbox: int = 0,
    ) -> None:
        self.selector = selectors.DefaultSelector()
        self.gateways: dict[str, GatewayPublisher] = {}
        self._registered: dict[str, socket.socket] = {}
        self.commands: list[ReceivedCommand] = []
        self._on_command = on_command
        for site, gateway in sites:
            self.gateways[site] = GatewayPublisher(
                site=site,
                gateway=gateway,
                password=password_for(site),
                host=host,
                port=port,
                keepalive=keepalive,
                announce=False,
                threaded=False,
                on_command=self._command,
                outbox=outbox,
            )
        self._last_misc = 0.0
        self.connected_at: float | None = None
        """Monotonic time at which :meth:`connect_all` had every gateway connected."""
        self._dirty: set[str] = set()
        """Sites whose connection may have bytes to write (published or read since the last pump)."""

    def _command(self, cmd: ReceivedCommand) -> None:
        self.commands.append(cmd)
        if self._on_command is not None:
            self._on_command(cmd)

    def _sync_socket(self, site: str, gw: GatewayPublisher) -> None:
        sock = gw.client.socket()
        old = self._registered.get(site)
        if old is sock:
            return
        if old is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(old)
            del self._registered[site]
        if isinstance(sock, socket.socket) and sock.fileno() >= 0:
            self.selector.register(sock, selectors.EVENT_READ, site)
            self._registered[site] = sock

    def connect_all(self, *, timeout: float = 120.0, ramp: int = RAMP) -> None:
        """Open every connection, at most ``ramp`` handshakes at a time, until all have CONNACK and SUBACK."""
        limit = raise_fd_limit(len(self.gateways) + FD_MARGIN)
        if limit < len(self.gateways) + FD_MARGIN:
            raise PublishError(
                site="*", reason=f"{len(self.gateways)} connections need more open files than the limit {limit}"
            )
        waiting = iter(self.gateways.items())
        opening: dict[str, GatewayPublisher] = {}
        deadline = time.monotonic() + timeout
        more = True
        while time.monotonic() < deadline:
            while more and len(opening) < ramp:
                item = next(waiting, None)
                if item is None:
                    more = False
                    break
                site, gw = item
                gw.connect()
                self._sync_socket(site, gw)
                self._dirty.add(site)
                opening[site] = gw
            self.pump(0.01)
            for site, gw in list(opening.items()):
                if gw.failure is not None:
                    raise PublishError(site=site, reason=f"connection refused: {gw.failure}")
                if gw.connected and gw.subscribed:
                    del opening[site]
            if not more and not opening:
                self.connected_at = time.monotonic()
                return
        missing = [s for s, gw in self.gateways.items() if not (gw.connected and gw.subscribed)]
        raise PublishError(site=missing[0] if missing else "?", reason=f"{len(missing)} gateways not connected")

    @property
    def connected_count(self) -> int:
        """Gateways whose connection is up now."""
        return sum(gw.connected for gw in self.gateways.values())

    def pump(self, timeout: float) -> None:
        """Run the network for up to ``timeout`` seconds: read, write pending packets, keep-alives."""
        dirty = self._dirty
        for key, _ in self.selector.select(timeout=max(0.0, timeout)):
            site = key.data
            gw = self.gateways[site]
            gw.client.loop_read()
            self._sync_socket(site, gw)
            dirty.add(site)  # a read may queue a reply (PUBACK of a command)
        # Only connections that published or read since the last pump can have bytes to write: scanning
        # all 10,000 of a pooled run on every message would make publishing O(homes).
        for site in list(dirty):
            client = self.gateways[site].client
            if client.want_write():
                client.loop_write()
            if not client.want_write():
                dirty.discard(site)
        now = time.monotonic()
        if now - self._last_misc >= _MISC_EVERY_S:
            self._last_misc = now
            # Only open connections need keep-alives (while a pooled fleet connects, most are not open yet).
            for site in list(self._registered):
                gw = self.gateways[site]
                gw.client.loop_misc()
                self._sync_socket(site, gw)
                if gw.client.want_write():  # a keep-alive PINGREQ that did not go out at once
                    self._dirty.add(site)

    def crash(self, site: str) -> None:
        """Drop one gateway's connection without DISCONNECT (the broker publishes its Last Will)."""
        gw = self.gateways[site]
        old = self._registered.pop(site, None)
        if old is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(old)
        gw.crash()

    def reconnect(self, site: str) -> None:
        """Reconnect a crashed gateway (persistent session: commands queued meanwhile arrive now)."""
        gw = self.gateways[site]
        try:
            gw.client.reconnect()
        except OSError as exc:
            _LOG.warning("gateway %s: reconnect failed: %s", gw.gateway, exc)
            return
        self._sync_socket(site, gw)
        self._dirty.add(site)

    def publish(self, site: str, topic: str, payload: bytes, *, retain: bool) -> None:
        """Queue one message on the home's connection (sent by the next :meth:`pump`)."""
        self.gateways[site].publish(WireMessage(topic, payload, retain))  # through the outbox, if it has one
        self._dirty.add(site)

    def drain(self, *, timeout: float = 10.0) -> None:
        """Pump until every queued QoS 1 publication is acknowledged (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.02)
            if not any(gw.client.want_write() for gw in self.gateways.values()) and all(
                len(getattr(gw.client, "_out_messages", {})) == 0 for gw in self.gateways.values() if gw.connected
            ):
                return

    def close(self) -> None:
        """Disconnect every gateway cleanly (no Last Will)."""
        for gw in self.gateways.values():
            if gw.connected:
                gw.client.disconnect()
        self.pump(0.1)
        for sock in list(self._registered.values()):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        self._registered.clear()
        self.selector.close()


def _site_of(topic: str) -> str:
    return topic.split("/", 3)[2]


def _retained(topic: str) -> bool:
    """Only the gateway's own status is published retained (docs/contract.md)."""
    return topic.endswith("/status") and "/gateway/" in topic


def run_live(
    messages: Iterable[Message],
    *,
    sites: Iterable[tuple[str, str]],
    host: str = "127.0.0.1",
    port: int = 1883,
    password_for: Callable[[str], str | None] = lambda site: None,
    speed: float = 1.0,
    skip_before_ms: int | None = None,
    max_messages: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_command: Callable[[ReceivedCommand], None] | None = None,
    keepalive: int = 30,
    outbox: int = 0,
) -> LiveStats:
    """Publish a simulated message stream to the broker, each message at its (scaled) received time.

    ``speed`` > 1 plays simulated time faster (600 = ten simulated minutes per second); ``skip_before_ms``
    starts mid-stream (e.g. at "now" for a real-time run whose simulation began at local midnight).
    Device timestamps are those of the simulation, so only ``speed=1`` gives wall-clock ``ts`` values.
    ``outbox`` > 0 gives every gateway an outbox of that many readings, kept until the backend confirms them
    stored (docs/contract.md, "stored" confirmations).

    A start mid-stream first publishes each device's and gateway's last status from before ``skip_before_ms`` (a
    gateway reports itself and its devices as it connects): a door, smoke or gas detector heartbeats every 6 h, and
    a console would otherwise show it "never reported" for hours (the gateway for up to 5 min). Counted in
    :attr:`LiveStats.carried` (and in ``published``).
    """
    stats = LiveStats()
    fleet = Fleet(
        sites=sites,
        host=host,
        port=port,
        password_for=password_for,
        on_command=on_command,
        keepalive=keepalive,
        outbox=outbox,
    )
    t0 = time.monotonic()
    fleet.connect_all()
    stats.connect_s = time.monotonic() - t0
    stats.connected = fleet.connected_count
    _LOG.info("%d gateways connected in %.1f s", stats.connected, stats.connect_s)
    down: set[str] = set()
    wall0: float | None = None
    sim0 = 0
    carried: dict[str, bytes] | None = {} if skip_before_ms is not None else None
    try:
        for received_ms, topic, payload in messages:
            if skip_before_ms is not None and received_ms < skip_before_ms:
                stats.skipped += 1
                if carried is not None and topic.endswith("/status"):
                    if payload == WILL_PAYLOAD:
                        carried.pop(topic, None)  # the gateway was down at the start: it reconnects with its stream
                    else:
                        carried[topic] = payload  # the latest stays
                continue
            if carried:
                for status_topic, status in carried.items():
                    if (status_site := _site_of(status_topic)) in fleet.gateways:
                        fleet.publish(status_site, status_topic, status, retain=_retained(status_topic))
                        stats.published += 1
                        stats.carried += 1
                carried = None
            if stop() or (max_messages is not None and stats.published >= max_messages):
                break
            if wall0 is None:
                wall0, sim0 = time.monotonic(), received_ms
            due = wall0 + (received_ms - sim0) / 1000 / speed
            while (wait := due - time.monotonic()) > 0 and not stop():
                fleet.pump(min(wait, 0.05))
            if stop():
                break
            stats.lag_ms_max = max(stats.lag_ms_max, (time.monotonic() - due) * 1000)
            site = _site_of(topic)
            if site not in fleet.gateways:
                continue
            if payload == WILL_PAYLOAD and topic.endswith("/status"):
                # The broker, not the gateway, publishes the Will: make it happen for real.
                fleet.crash(site)
                down.add(site)
                stats.crashes += 1
                continue
            if site in down:
                fleet.reconnect(site)
                down.discard(site)
                stats.reconnects += 1
            fleet.publish(site, topic, payload, retain=_retained(topic))
            stats.published += 1
            fleet.pump(0)
        fleet.drain()
        if wall0 is not None:
            stats.publish_s = time.monotonic() - wall0
    finally:
        stats.commands = list(fleet.commands)
        fleet.close()
    return stats
