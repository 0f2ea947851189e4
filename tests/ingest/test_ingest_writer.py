"""Batching writer against the real influxd: batches, partial writes dead-lettered, spool and replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eldercare.servers._child import free_port
from eldercare.servers.influxd import Influxd
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from gateway.models import DeviceKind, MessageType, Reading
from ingest.influx import InfluxClient
from ingest.reader import InfluxReader
from ingest.spool import Spool
from ingest.writer import InfluxWriter, WriteOptions

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000


def mattress(i: int, *, device: str = "mat1", site: str = "h1", movement: bool = True) -> Reading:
    fields: dict[str, bool | int | float | str] = {"occupied": True, "hr": 50.0 + i % 40, "rr": 12.5}
    if movement:
        fields["movement"] = i % 100
    return Reading(
        site=site,
        kind=DeviceKind.MATTRESS,
        device=device,
        type=MessageType.TELEMETRY,
        seq=i,
        ts_ms=T0 + i,
        received_ms=T0 + i + 7,
        fields=fields,
    )


async def test_accept_writes_everything_in_batches(influx: InfluxClient, tmp_path: Path) -> None:
    writer = InfluxWriter(client=influx, spool=Spool(directory=tmp_path), options=WriteOptions(batch_size=700))
    async with writer:
        await asyncio.gather(*(writer.accept([mattress(i) for i in range(k, k + 1000)]) for k in range(0, 5000, 1000)))
        await writer.accept([mattress(i) for i in range(100)])  # redelivery: rewrites the same points
        assert writer.stats.written == 5100 and writer.stats.requests >= 8 and writer.spool.empty
    reader = InfluxReader(client=influx)
    assert await reader.count(DeviceKind.MATTRESS, site="h1") == 5000
    (p,) = await reader.points(DeviceKind.MATTRESS, site="h1", start_ms=T0 + 4321, end_ms=T0 + 4322)
    assert p.fields == {
        "occupied": True,
        "hr": 50.0 + 4321 % 40,
        "rr": 12.5,
        "movement": 4321 % 100,
        "seq": 4321,
        "received_ms": T0 + 4328,
        "clock_skewed": False,
    }


class Overlapping:
    """The real client, but a write waits (up to 10 s) until another is in flight too: overlap or time out."""

    def __init__(self, client: InfluxClient) -> None:
        self.client = client
        self.in_flight = 0
        self.peak = 0
        self.both = asyncio.Event()

    async def write(self, body: bytes, *, precision: str | None = None) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= 2:
            self.both.set()
        try:
            await asyncio.wait_for(self.both.wait(), 10)
            await self.client.write(body, precision=precision)
        finally:
            self.in_flight -= 1

    async def ping(self) -> bool:
        return await self.client.ping()


async def test_requests_overlap_and_callers_return_in_order(influx: InfluxClient, tmp_path: Path) -> None:
    """Issue 17: with ``max_in_flight=2`` a second request goes out while the first is in flight; each ``accept``
    returns only once its points and every earlier caller's are in InfluxDB."""
    client = Overlapping(influx)
    writer = InfluxWriter(
        client=client, spool=Spool(directory=tmp_path), options=WriteOptions(batch_size=1000), max_in_flight=2
    )
    returned: list[int] = []

    async def accept(k: int) -> None:
        await writer.accept([mattress(i) for i in range(k, k + 1000)])
        returned.append(k)
        # Everything of this caller and of the callers before it is queryable when it returns.
        assert await InfluxReader(client=influx).count(DeviceKind.MATTRESS, site="h1") >= k + 1000

    async with writer:
        await asyncio.gather(*(accept(k) for k in range(0, 4000, 1000)))
        await writer.flush()
    assert client.peak == 2 and returned == [0, 1000, 2000, 3000]
    assert writer.stats.written == 4000 and writer.stats.requests == 4 and writer.pending == 0


async def test_interval_flush(influx: InfluxClient, tmp_path: Path) -> None:
    writer = InfluxWriter(client=influx, spool=Spool(directory=tmp_path), options=WriteOptions(flush_interval=100))
    async with writer:
        await writer.write(["m f=1 1", "m f=2 2"])  # returns before durability
        assert writer.pending == 2
        for _ in range(100):
            if writer.stats.written == 2:
                break
            await asyncio.sleep(0.02)
    results = await influx.query('SELECT count(f) FROM "m"')
    assert results[0].series[0].values[0][1] == 2


async def test_only_bad_points_are_dead_lettered(
    influx: InfluxClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await influx.write(
        f"mattress,site=h1,device=old,type=telemetry movement=0.5 {(T0 - 1) * 1_000_000}".encode()
    )  # ns, like every write
    deadletter = DeadLetterStore.in_data_dir(tmp_path)
    writer = InfluxWriter(client=influx, spool=Spool(directory=tmp_path / "spool"), rejected=deadletter)
    batch = [mattress(i, movement=i % 250 == 0) for i in range(1000)]  # 4 points with an int movement
    async with writer:
        await writer.accept(batch)
    assert writer.stats.rejected == 4 and writer.stats.written >= 996
    reader = InfluxReader(client=influx)
    assert await reader.count(DeviceKind.MATTRESS, site="h1", device="mat1") == 996
    entries = deadletter.query(reason=Reason.STORAGE_REJECTED)
    assert len(entries) == 4
    assert all(e.topic == "ec/v1/h1/mattress/mat1/telemetry" and b"movement=" in e.payload for e in entries)
    assert "field type conflict" in entries[0].detail
    deadletter.close()
    # The log names the refused series and why, never the readings (heart rate, a watch's position): those stay
    # in the dead-letter record, shown only on request (docs/privacy.md).
    refused = [r.getMessage() for r in caplog.records if r.name == "ingest.writer" and "refused" in r.getMessage()]
    assert refused and all("(mattress," in m and "site=h1" in m for m in refused), refused
    assert not any("movement=" in m or "hr=" in m for m in refused), refused


async def test_unreachable_influx_spools_and_a_restart_replays(influx: InfluxClient, tmp_path: Path) -> None:
    dead = InfluxClient(url=f"http://127.0.0.1:{free_port()}", db=influx.db)
    writer = InfluxWriter(client=dead, spool=Spool(directory=tmp_path), options=WriteOptions(retry_interval=50))
    async with writer:
        for k in range(0, 3000, 500):
            await writer.accept([mattress(i) for i in range(k, k + 500)])  # returns: durable in the spool
        assert writer.stats.spooling and writer.stats.spooled == 3000 and writer.spool.points == 3000
    await dead.aclose()
    # The process "restarts" pointing at a working InfluxDB: the spool is replayed before anything else.
    writer = InfluxWriter(client=influx, spool=Spool(directory=tmp_path))
    async with writer:
        for _ in range(200):
            if writer.spool.empty and not writer.stats.spooling:
                break
            await asyncio.sleep(0.05)
        assert writer.stats.replayed == 3000
    assert await InfluxReader(client=influx).count(DeviceKind.MATTRESS, site="h1") == 3000
    assert list(tmp_path.glob("*.seg")) == []


async def test_full_spool_blocks_accept_until_influx_returns(tmp_path: Path, unique_db: str) -> None:
    """Spool full → ``accept`` waits (so MQTT acks stop and the broker holds messages); nothing is dropped."""
    from eldercare.servers.influxd import Influxd

    server = Influxd(data_dir=tmp_path / "influx")  # configured, not yet running: InfluxDB is "down"
    client = InfluxClient(url=server.url, db=unique_db)
    spool = Spool(directory=tmp_path / "spool", max_bytes=200_000)
    writer = InfluxWriter(client=client, spool=spool, options=WriteOptions(batch_size=500, retry_interval=50))
    try:
        async with writer:
            await writer.accept([mattress(i) for i in range(0, 500)])
            await writer.accept([mattress(i) for i in range(500, 1000)])
            blocked = asyncio.create_task(writer.accept([mattress(i) for i in range(1000, 1500)]))
            for _ in range(20):  # give it every chance to (wrongly) return
                await asyncio.sleep(0.05)
            assert not blocked.done(), "accept returned although the spool is full and InfluxDB is down"
            assert writer.spool.points == 1000 and writer.stats.spooling
            server.start()
            await client.execute(f'CREATE DATABASE "{unique_db}"')
            await asyncio.wait_for(blocked, 60)  # space freed by the replay: the blocked batch goes through
            for _ in range(400):
                if writer.spool.empty and not writer.stats.spooling:
                    break
                await asyncio.sleep(0.05)
        assert await InfluxReader(client=client).count(DeviceKind.MATTRESS, site="h1") == 1500
    finally:
        await client.aclose()
        server.stop()


async def test_spool_drains_as_soon_as_influxd_answers_ping_again(tmp_path: Path, unique_db: str) -> None:
    """R7: the replay does not sleep out its backoff (here 10 minutes) once ``/ping`` answers again."""
    server = Influxd(data_dir=tmp_path / "influxdb")
    server.start()
    client = InfluxClient(url=server.url, db=unique_db, timeout_s=2)
    try:
        await client.execute(f'CREATE DATABASE "{unique_db}"')
        options = WriteOptions(retry_interval=600_000, max_retry_delay=600_000)
        async with InfluxWriter(client=client, spool=Spool(directory=tmp_path / "spool"), options=options) as writer:
            server.kill()
            await writer.accept([mattress(i) for i in range(500)])  # durable in the spool
            assert writer.stats.spooling and writer.spool.points == 500
            for _ in range(500):  # the replay has failed at least once and is now in its 10-minute pause
                if writer.stats.failures >= 2:
                    break
                await asyncio.sleep(0.02)
            assert writer.stats.failures >= 2
            server.start()
            for _ in range(3000):
                if not writer.stats.spooling:  # set back once the spool is empty
                    break
                await asyncio.sleep(0.02)
            assert writer.spool.empty and writer.stats.replayed == 500 and not writer.stats.spooling
        assert await InfluxReader(client=client).count(DeviceKind.MATTRESS, site="h1") == 500
    finally:
        await client.aclose()
        server.stop()
