"""The 4G watch TCP server on a real socket, with the real gateway service and dead-letter record (SQLite).

Clients are the simulator's watch (``firmware_sim.watch.SimWatch``) and raw sockets for hostile input.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from firmware_sim.watch import SimWatch, frame, wall_ms
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.models import MessageType, Reading
from gateway.service import GatewayService, ListSink
from gateway.watch.registry import WatchBinding
from gateway.watch.server import WatchServer

IMEI = "868000001111111"
OTHER_HOME_IMEI = "868000002222222"
WATCHES = {IMEI: WatchBinding(site="h1", device="watch1"), OTHER_HOME_IMEI: WatchBinding(site="h2", device="watch1")}


@dataclass
class Harness:
    server: WatchServer
    sink: ListSink
    fast: list[Reading]
    deadletter: DeadLetterStore

    def watch(self, imei: str = IMEI) -> SimWatch:
        return SimWatch(host="127.0.0.1", port=self.server.port, imei=imei)

    async def dead(self, reason: Reason, n: int = 1, timeout: float = 10.0) -> list[Any]:
        """Wait until the record holds ``n`` entries with ``reason``; return them."""
        async with asyncio.timeout(timeout):
            while len(entries := self.deadletter.query(reason=reason)) < n:
                await asyncio.sleep(0.02)
        return entries


@pytest.fixture
async def make_server(deadletter: DeadLetterStore) -> AsyncIterator[Callable[..., Any]]:
    servers: list[WatchServer] = []

    async def make(**kwargs: Any) -> Harness:
        sink, fast = ListSink(), []
        service = GatewayService(directory=None, deadletter=deadletter, sink=sink, fast_path=fast.append)
        server = WatchServer(watches=WATCHES, handler=service, **kwargs)
        await server.start()
        servers.append(server)
        return Harness(server=server, sink=sink, fast=fast, deadletter=deadletter)

    yield make
    for server in servers:
        await server.close()


async def test_sos_goes_to_the_fast_path_is_stored_and_acknowledged_once(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server()
    pressed_ms = wall_ms() // 1000 * 1000
    async with h.watch() as watch:
        assert await watch.login() == "LK"
        await watch.sos(ts_ms=pressed_ms)
        assert await watch.reply() == "AL"  # written only once the readings are durable
        assert [(r.site, r.device, r.event, r.time_ms) for r in h.fast] == [("h1", "watch1", "sos", pressed_ms)]
        assert any(r.event == "sos" and r.site == "h1" for r in h.sink.readings)
        assert any(r.type is MessageType.TELEMETRY and r.fields.get("battery") == 90 for r in h.sink.readings)
        # The watch did not get our AL and sends the very same frame again: one alarm, answered again.
        await watch.sos(ts_ms=pressed_ms)
        assert await watch.reply() == "AL"
        await watch.fall()
        assert await watch.reply() == "AL"
    assert [r.event for r in h.fast] == ["sos", "fall"]
    assert h.deadletter.count() == 0


async def test_an_unregistered_imei_is_refused_dead_lettered_and_disconnected(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server()
    async with h.watch("999999999999999") as stranger:
        await stranger.sos()
        assert await stranger.closed_by_server()
    (entry,) = await h.dead(Reason.UNKNOWN_DEVICE)
    # Logs and topics show only the IMEI's last digits; the full IMEI, needed to register the watch, is in the frame.
    assert entry.topic == "watch/-/***********9999" and "not registered" in entry.detail
    assert b"*999999999999999*" in entry.payload
    assert b"AL," in entry.payload
    assert h.fast == [] and h.sink.readings == []


async def test_an_unregistered_watch_reconnecting_is_recorded_once_a_minute(make_server: Callable[..., Any]) -> None:
    # A real watch pointed at us but not registered retries every few seconds, all day: one entry, not thousands.
    h: Harness = await make_server()
    for _ in range(3):
        async with h.watch("999999999999999") as stranger:
            await stranger.lk()
            assert await stranger.closed_by_server()
    assert len(h.deadletter.query(reason=Reason.UNKNOWN_DEVICE)) == 1
    assert h.server.stats.dropped[Reason.UNKNOWN_DEVICE.value] == 3
    async with h.watch("999999999999998") as another:  # another IMEI is recorded on its own
        await another.lk()
        assert await another.closed_by_server()
    assert len(h.deadletter.query(reason=Reason.UNKNOWN_DEVICE)) == 2


async def test_a_frame_for_another_homes_imei_is_refused_and_the_connection_closed(
    make_server: Callable[..., Any],
) -> None:
    h: Harness = await make_server()
    async with h.watch() as watch:
        assert await watch.login() == "LK"
        await watch.send("AL,010125,000000,A,30.0,N,120.0,E,0,0,0,5,100,82,10,0,00010000,0,0", imei=OTHER_HOME_IMEI)
        assert await watch.closed_by_server()
    (entry,) = await h.dead(Reason.IMEI_MISMATCH)
    assert "registered to h2" in entry.detail and entry.topic == "watch/h1/watch1"
    assert entry.site == "h1"  # `eldercare deadletter list --site h1` shows it
    assert all(r.site == "h1" for r in h.sink.readings) and h.fast == []


async def test_malformed_frames_are_dead_lettered_and_the_watch_keeps_working(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server(max_frame=256)
    async with h.watch() as watch:
        assert await watch.login() == "LK"
        await watch.send_raw(b"\x00\xffgarbage[not a frame]")
        await watch.send("heart,abc")
        await watch.send_raw(frame("3G", IMEI, "UD," + "9" * 400))  # bigger than max_frame
        await watch.lk(battery=15)
        assert await watch.reply() == "LK"
    bad = await h.dead(Reason.BAD_FRAME, 2)
    assert {e.topic for e in bad} == {"watch/h1/watch1"}
    (schema,) = await h.dead(Reason.BAD_SCHEMA)
    assert schema.payload == frame("3G", IMEI, "heart,abc")
    (oversize,) = await h.dead(Reason.OVERSIZE)
    assert oversize.size > len(oversize.payload)
    assert [r.fields for r in h.sink.readings if r.type is MessageType.TELEMETRY][-1] == {"steps": 0, "battery": 15}


async def test_a_connection_sending_only_bad_frames_is_closed(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server(max_bad_frames=3)
    async with h.watch() as watch:
        await watch.send_raw(b"[a][b][c][d][e]")
        assert await watch.closed_by_server()
    await h.dead(Reason.BAD_FRAME, 3)


async def test_connections_per_address_are_limited(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server(max_per_address=2)
    async with h.watch() as first, h.watch(OTHER_HOME_IMEI) as second:
        assert await first.login() == "LK" and await second.login() == "LK"
        async with h.watch() as third:
            assert await third.closed_by_server()
        (entry,) = await h.dead(Reason.CONNECTION_LIMIT)
        assert "127.0.0.1" in entry.detail
        metrics = h.server.metrics
        assert (metrics.value("watch_connections"), metrics.value("watch_logins_total")) == (2, 2)
        assert metrics.value("watch_connections_refused_total") == 1
        await first.lk()
        assert await first.reply() == "LK"  # the open connections are untouched


async def test_silent_and_trickling_clients_are_closed_by_the_timeouts(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server(login_timeout_s=0.3, idle_timeout_s=0.6)
    async with h.watch() as silent:
        assert await silent.closed_by_server()
    async with h.watch() as slow:
        assert await slow.login() == "LK"
        closed = asyncio.create_task(slow.closed_by_server(timeout=10))
        for byte in b"[3G*" + IMEI.encode() + b"*0002*LK,0,0,":  # never completes a frame
            if closed.done():
                break
            await slow.send_raw(bytes([byte]))
            await asyncio.sleep(0.05)
        assert await closed


async def test_a_new_login_takes_over_from_the_older_connection(make_server: Callable[..., Any]) -> None:
    h: Harness = await make_server()
    async with h.watch() as old, h.watch() as new:
        assert await old.login() == "LK"
        assert await new.login() == "LK"
        assert await old.closed_by_server()
        await new.sos()
        assert await new.reply() == "AL"
    assert h.server.stats.takeovers == 1
    assert [r.event for r in h.fast] == ["sos"]


class GatedSink(ListSink):
    """Storage that becomes durable only when the test opens the gate (a slow InfluxDB)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def accept(self, readings: Sequence[Reading]) -> None:
        await self.gate.wait()
        await super().accept(readings)


async def test_closing_the_server_lets_a_frame_in_hand_become_durable(deadletter: DeadLetterStore) -> None:
    sink, fast = GatedSink(), []
    service = GatewayService(directory=None, deadletter=deadletter, sink=sink, fast_path=fast.append)
    server = WatchServer(watches=WATCHES, handler=service)
    await server.start()
    async with SimWatch(host="127.0.0.1", port=server.port, imei=IMEI) as watch:
        await watch.sos()
        async with asyncio.timeout(10):
            while not fast:  # the SOS is read and on the fast path; its storage waits at the gate
                await asyncio.sleep(0.01)
        closing = asyncio.create_task(server.close())
        assert await watch.closed_by_server()  # the server is shutting down, the SOS is still not stored
        sink.gate.set()
        await closing  # (a finished task returns at once: nothing else runs in between)
        assert [r.event for r in sink.readings if r.event] == ["sos"]
