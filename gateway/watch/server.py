"""The asyncio TCP server 4G elder watches connect to; frames become readings of the watch's home.

One connection is one watch. Its first frame logs it in: the IMEI must be registered to a home (the registry's
``imei``, :mod:`gateway.watch.registry`), otherwise the frame is dead-lettered as ``unknown_device`` and the
connection closed. A later frame naming another IMEI (a watch speaking for another, maybe another home's) is
dead-lettered as ``imei_mismatch`` and the connection closed. A new login of an IMEI closes its older connection
(a watch that changed cell reconnects while the old socket is still half-open).

Each read's frames are decoded and handed to the gateway service in one call
(:meth:`gateway.service.GatewayService.handle_decoded`): life-safety readings (SOS, fall) go to the detection fast
path before anything is awaited, then readings and refusals are made durable, and only then are the watch's
replies (``LK``, ``AL``...) written, so a watch whose alarm was not stored gets no ``AL`` and sends it again.

Limits that keep a hostile client from exhausting memory or sockets: a frame's size (bigger frames are
discarded unbuffered), connections in total and per remote address, a login timeout, an idle timeout counted from
the last complete frame (a client trickling bytes does not keep a connection open), a budget of bad frames per
connection, and a timeout on writing replies to a client that does not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from gateway.errors import DecodeError, Reason, WatchOffline
from gateway.listener import RawMessage
from gateway.metrics import GatewayMetrics
from gateway.models import Reading
from gateway.watch.decode import WatchDecoder, mask_imei, watch_topic
from gateway.watch.protocol import DEFAULT_MAX_FRAME, Frame, FrameError, FrameParser, encode_frame, reply_for
from gateway.watch.registry import WatchBinding

_LOG: Final = logging.getLogger(__name__)

READ_CHUNK: Final = 4096
RETRANSMIT_MS: Final = 10 * 60_000
"""An ``AL`` frame identical to one of the same watch this recently is its retransmission (our ``AL`` was lost)."""
REFUSAL_EVERY_MS: Final = 60_000
"""A connection-level refusal (connection limit, unregistered IMEI) is recorded at most this often per key."""
LATCH_MS: Final = 10 * 60_000
"""A position report's alarm bit raises an event only if the same event of that watch is older than this."""


class ReadingHandler(Protocol):
    """Where decoded frames go (:class:`gateway.service.GatewayService`)."""

    async def handle_decoded(
        self, results: Iterable[tuple[RawMessage, Reading | DecodeError]], *, received: int
    ) -> list[Reading]:
        """Fast-path life-safety readings, make readings and refusals durable, return the readings."""
        ...


def wall_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class WatchStats:
    """Counters of the server (also for tests and ``/metrics`` later)."""

    connections: int = 0
    refused_connections: int = 0
    logins: int = 0
    takeovers: int = 0
    frames: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Refused frames and connections by reason."""


@dataclass(slots=True, eq=False)
class _Conn:
    peer: str
    writer: asyncio.StreamWriter
    imei: str | None = None
    binding: WatchBinding | None = None
    bad: int = 0
    closing: bool = False
    vendor: str = "3G"
    index: str | None = None
    """Vendor code and index of the watch's login frame: commands to it reuse them, as its replies do."""


class WatchServer:
    """TCP server for 4G watches; ``async with WatchServer(...) as server:`` serves on :attr:`port`.

    Args:
        watches: IMEI → home and device (:func:`gateway.watch.registry.watches_from_registry`).
        handler: the gateway service (fast path, dead-letter record, storage).
        host: address to listen on.
        port: TCP port (0: any free port).
        decoder: frame decoder (clock skew allowance).
        max_frame: largest frame accepted, bytes.
        max_connections: open connections in total.
        max_per_address: open connections from one remote address (watches behind a carrier NAT share one).
        login_timeout_s: time for a new connection to send its first frame.
        idle_timeout_s: time without a complete frame after which a connection is closed (watches send ``LK``
            every few minutes).
        max_bad_frames: refused frames after which a connection is closed.
        write_timeout_s: longest wait for a client to take a reply.
        clock: epoch milliseconds (received times).
        metrics: gateway metrics to update (open connections, logins, refusals), e.g. the service's.
    """

    def __init__(
        self,
        *,
        watches: Mapping[str, WatchBinding],
        handler: ReadingHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        decoder: WatchDecoder | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_connections: int = 10_000,
        max_per_address: int = 256,
        login_timeout_s: float = 30.0,
        idle_timeout_s: float = 900.0,
        max_bad_frames: int = 16,
        write_timeout_s: float = 10.0,
        clock: Callable[[], int] = wall_ms,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        if max_connections < 1 or max_per_address < 1 or max_bad_frames < 1:
            raise ValueError("connection limits and the bad-frame budget must be positive")
        self.watches = watches
        self.handler = handler
        self.host = host
        self.port = port
        self.decoder = decoder if decoder is not None else WatchDecoder()
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.login_timeout_s = login_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_bad_frames = max_bad_frames
        self.write_timeout_s = write_timeout_s
        self.clock = clock
        self.stats = WatchStats()
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._per_address: Counter[str] = Counter()
        self._by_imei: dict[str, _Conn] = {}
        self._last_alarm: dict[str, tuple[bytes, int]] = {}
        self._raised: dict[tuple[str, str], int] = {}
        self._seq: dict[str, int] = {}
        self._refusal_logged: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; :attr:`port` is the bound port afterwards."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=READ_CHUNK)
        self.port = self._server.sockets[0].getsockname()[1]
        _LOG.info("4G watch server listening on %s:%d (%d watches registered)", self.host, self.port, len(self.watches))

    async def close(self, *, grace_s: float = 5.0) -> None:
        """Stop listening, close every connection and wait for frames in hand to become durable.

        A connection handler in the middle of storing a frame (an SOS just read) finishes it first, for up to
        ``grace_s``; the caller closes the storage afterwards.
        """
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._conns):
            conn.closing = True
            conn.writer.close()
        handlers = set(self._handlers)
        if handlers:
            _done, pending = await asyncio.wait(handlers, timeout=grace_s)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), grace_s)
        self._server = None

    async def __aenter__(self) -> WatchServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected_imeis(self) -> set[str]:
        """IMEIs with a logged-in connection."""
        return set(self._by_imei)

    async def send(self, imei: str, content: str) -> None:
        """Write one command frame (e.g. ``MESSAGE,…``) on the watch's open connection; raise :class:`WatchOffline`.

        The protocol has no acknowledgement of server commands: "sent" means written to the socket.
        """
        conn = self._by_imei.get(imei)
        if conn is None or conn.closing:
            raise WatchOffline(imei)
        conn.writer.write(encode_frame(conn.vendor, imei, content, index=conn.index))
        try:
            await asyncio.wait_for(conn.writer.drain(), self.write_timeout_s)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise WatchOffline(imei, f"write failed ({type(exc).__name__})") from None

    # -- connections -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if isinstance(peername, tuple) else str(peername)
        if len(self._conns) >= self.max_connections or self._per_address[address] >= self.max_per_address:
            self.stats.refused_connections += 1
            self.metrics.watch_refused.inc()
            writer.close()
            await self._refuse_connection(address)
            return
        conn = _Conn(peer=address, writer=writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._conns.add(conn)
        self._per_address[address] += 1
        self.stats.connections += 1
        self.metrics.watch_connections.inc()
        try:
            await self._run(conn, reader)
        except (ConnectionError, OSError) as exc:
            _LOG.debug("watch connection from %s ended: %s", address, exc)
        finally:
            self.metrics.watch_connections.dec()
            self._conns.discard(conn)
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]
            if conn.imei is not None and self._by_imei.get(conn.imei) is conn:
                del self._by_imei[conn.imei]
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self.write_timeout_s)

    async def _refuse_connection(self, address: str) -> None:
        """Dead-letter a refused connection, at most once a minute per address (a flood must not fill the record)."""
        now = self.clock()
        if not self._record_once_a_minute(f"address:{address}", now):
            return
        detail = (
            f"connection from {address} refused: more than {self.max_per_address} from it"
            f" or {self.max_connections} in all"
        )
        self.stats.dropped[Reason.CONNECTION_LIMIT.value] += 1
        raw = RawMessage(topic=watch_topic(None, "-"), payload=b"", mid=0, qos=0, retain=False, received_ms=now)
        await self.handler.handle_decoded([(raw, DecodeError(raw.topic, Reason.CONNECTION_LIMIT, detail))], received=1)

    def _record_once_a_minute(self, key: str, now: int) -> bool:
        """True if a connection-level refusal for ``key`` should be recorded: the first, then once a minute.

        A flood of connections, or a real watch that is not registered retrying every few seconds all day, must not
        fill the dead-letter record (the oldest entries go first) with copies of one refusal.
        """
        if now - self._refusal_logged.get(key, now - REFUSAL_EVERY_MS) < REFUSAL_EVERY_MS:
            return False
        if len(self._refusal_logged) > 10_000:
            self._refusal_logged.clear()
        self._refusal_logged[key] = now
        return True

    async def _run(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        parser = FrameParser(max_frame=self.max_frame)
        deadline = loop.time() + self.login_timeout_s
        while not conn.closing:
            try:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                what = "login" if conn.imei is None else "idle"
                _LOG.info("closing watch connection from %s after the %s timeout", conn.peer, what)
                return
            if not data:
                return
            items = parser.feed(data)
            if not items:
                continue
            results, replies = self._process(conn, items)
            if any(isinstance(item, Frame) for item in items) and conn.imei is not None:
                deadline = loop.time() + self.idle_timeout_s
            if results:
                await self.handler.handle_decoded(results, received=len(items))
            if replies and not conn.closing:
                conn.writer.write(b"".join(replies))
                try:
                    await asyncio.wait_for(conn.writer.drain(), self.write_timeout_s)
                except TimeoutError:
                    _LOG.info("closing watch connection from %s: it does not read its replies", conn.peer)
                    return

    # -- frames ----------------------------------------------------------------------------------

    def _process(
        self, conn: _Conn, items: Sequence[Frame | FrameError]
    ) -> tuple[list[tuple[RawMessage, Reading | DecodeError]], list[bytes]]:
        results: list[tuple[RawMessage, Reading | DecodeError]] = []
        replies: list[bytes] = []
        for item in items:
            now = self.clock()
            if isinstance(item, FrameError):
                conn.bad += 1
                if conn.binding is not None:
                    topic = watch_topic(conn.binding.site, conn.binding.device)
                else:
                    topic = watch_topic(None, mask_imei(item.imei) if item.imei else "-")
                raw = RawMessage(
                    topic=topic,
                    payload=item.data,
                    mid=0,
                    qos=0,
                    retain=False,
                    received_ms=now,
                    size=item.size if item.size > len(item.data) else -1,
                )
                results.append((raw, self._refusal(raw, item.reason, f"{item.detail} (from {conn.peer})")))
                if conn.bad >= self.max_bad_frames:
                    _LOG.warning("closing watch connection from %s after %d bad frames", conn.peer, conn.bad)
                    conn.closing = True
                    break
                continue
            self.stats.frames += 1
            refusal = self._authenticate(conn, item, now)
            if refusal is not None:
                unknown = conn.imei is None  # an unregistered IMEI: recorded once a minute per IMEI
                if not unknown or self._record_once_a_minute(f"imei:{item.imei}", now):
                    results.append(refusal)
                conn.closing = True
                break
            binding = conn.binding
            assert binding is not None
            raw = RawMessage(
                topic=watch_topic(binding.site, binding.device),
                payload=item.raw(),
                mid=0,
                qos=0,
                retain=False,
                received_ms=now,
            )
            try:
                readings = self.decoder.decode(item, site=binding.site, device=binding.device, received_ms=now)
            except DecodeError as exc:
                results.append((raw, self._refusal(raw, exc.reason, exc.detail)))
                conn.bad += 1
                if item.command.upper() == "LK":
                    replies.append(reply_for(item) or b"")  # keep the watch online; its heartbeat arrived
                continue
            readings = self._new_alarms(item, readings, now)
            results += [(raw, self._numbered(item.imei, r)) for r in readings]
            reply = reply_for(item)
            if reply is not None:
                replies.append(reply)
        return results, replies

    def _numbered(self, imei: str, result: Reading | DecodeError) -> Reading | DecodeError:
        """Give a reading the watch's next sequence number (the protocol has none).

        Frames without a time of their own get the received time, so several read together share a millisecond;
        storage keeps readings of one device in one millisecond apart by their ``seq`` (ingest/schema.py). The
        counter runs per IMEI from start-up, like the Zigbee2MQTT adapter's.
        """
        if isinstance(result, DecodeError):
            return result
        seq = self._seq.get(imei, 0) + 1
        self._seq[imei] = seq
        return msgspec.structs.replace(result, seq=seq)

    def _refusal(self, raw: RawMessage, reason: Reason, detail: str) -> DecodeError:
        self.stats.dropped[reason.value] += 1  # logged (rate-limited) by the gateway service with the dead letter
        return DecodeError(raw.topic, reason, detail)

    def _authenticate(self, conn: _Conn, frame: Frame, now: int) -> tuple[RawMessage, Reading | DecodeError] | None:
        """Log the connection in with its first frame; refuse an unknown IMEI and any later change of IMEI."""
        if conn.imei is None:
            binding = self.watches.get(frame.imei)
            if binding is None:
                self.metrics.watch_refused.inc()
                raw = RawMessage(watch_topic(None, mask_imei(frame.imei)), frame.raw(), 0, 0, False, now)
                detail = f"imei {mask_imei(frame.imei)} is not registered to any home (from {conn.peer})"
                return raw, self._refusal(raw, Reason.UNKNOWN_DEVICE, detail)
            conn.imei, conn.binding, conn.vendor, conn.index = frame.imei, binding, frame.vendor, frame.index
            older = self._by_imei.get(frame.imei)
            if older is not None and older is not conn:
                self.stats.takeovers += 1
                older.closing = True
                older.writer.close()
            self._by_imei[frame.imei] = conn
            self.stats.logins += 1
            self.metrics.watch_logins.inc()
            _LOG.info("watch %s of %s logged in from %s", mask_imei(frame.imei), binding.site, conn.peer)
            return None
        if frame.imei != conn.imei:
            assert conn.binding is not None
            other = self.watches.get(frame.imei)
            whose = f"registered to {other.site}" if other is not None else "not registered"
            raw = RawMessage(watch_topic(conn.binding.site, conn.binding.device), frame.raw(), 0, 0, False, now)
            detail = (
                f"connection of watch {mask_imei(conn.imei)} ({conn.binding.site}) sent a frame as "
                f"{mask_imei(frame.imei)} ({whose}); connection closed"
            )
            return raw, self._refusal(raw, Reason.IMEI_MISMATCH, detail)
        return None

    def _new_alarms(self, frame: Frame, readings: list[Reading | DecodeError], now: int) -> list[Reading | DecodeError]:
        """Drop the events of a retransmitted ``AL`` and the alarm bits a position report repeats after one."""
        if not any(isinstance(r, Reading) and r.event is not None for r in readings):
            return readings
        imei = frame.imei
        is_alarm = frame.command.upper().startswith("AL")
        if is_alarm:
            last = self._last_alarm.get(imei)
            self._last_alarm[imei] = (frame.content, now)
            if last is not None and last[0] == frame.content and now - last[1] < RETRANSMIT_MS:
                # the same frame again: our AL was lost; keep its telemetry (idempotent), not its events
                return [r for r in readings if not isinstance(r, Reading) or r.event is None]
        kept: list[Reading | DecodeError] = []
        for r in readings:
            if isinstance(r, Reading) and r.event is not None:
                key = (imei, r.event)
                previous = self._raised.get(key)
                if not is_alarm and previous is not None and now - previous < LATCH_MS:
                    continue  # the alarm bit still set in a position report after the alarm itself
                self._raised[key] = now
            kept.append(r)
        return kept
