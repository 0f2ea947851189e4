"""Readings that share a millisecond keep one point each (issue 13, R4), on the real influxd.

A wristband that lost its clock uploads its buffer with a reset clock: every reading is flagged
``clock_skewed`` and stamped with the receive time, so a whole batch lands in one or two milliseconds.
Before, InfluxDB kept only the last point of each millisecond (1,000 acknowledged, 65 stored).
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import pytest

from gateway.codecs._base import clock_skewed
from gateway.models import DeviceKind, MessageType, Reading
from ingest.influx import InfluxClient
from ingest.reader import InfluxReader
from ingest.spool import MAGIC_MS, Spool
from ingest.writer import InfluxWriter

pytestmark = pytest.mark.integration

RECEIVED = 1_767_225_600_000


def buffered(seq: int, *, received_ms: int) -> Reading:
    """A wristband sample from a buffer uploaded after a clock reset (device time near 1970)."""
    ts = 5_000 + seq * 1000
    return Reading(
        site="h1",
        kind=DeviceKind.WRISTBAND,
        device="band1",
        type=MessageType.TELEMETRY,
        seq=seq,
        ts_ms=ts,
        received_ms=received_ms,
        fields={"hr": 70.0 + seq % 5, "worn": True},
        clock_skewed=clock_skewed(ts, received_ms, max_skew_ms=300_000),
    )


async def test_a_buffer_uploaded_with_a_reset_clock_keeps_every_reading(influx: InfluxClient, tmp_path: Path) -> None:
    readings = [buffered(seq, received_ms=RECEIVED + seq // 400) for seq in range(1, 1001)]  # 3 milliseconds
    assert all(r.clock_skewed for r in readings)
    async with InfluxWriter(client=influx, spool=Spool(directory=tmp_path)) as writer:
        await writer.accept(readings)
        await writer.accept(readings[:300])  # a redelivered part rewrites the same points
    reader = InfluxReader(client=influx)
    assert await reader.count(DeviceKind.WRISTBAND, site="h1") == 1000
    points = await reader.points(DeviceKind.WRISTBAND, site="h1", start_ms=RECEIVED, end_ms=RECEIVED + 3)
    assert sorted(int(p.fields["seq"]) for p in points) == list(range(1, 1001))
    assert {p.time_ms for p in points} == {RECEIVED, RECEIVED + 1, RECEIVED + 2}  # epoch=ms: the receive time
    assert all(p.fields["device_ts_ms"] == 5_000 + int(p.fields["seq"]) * 1000 for p in points)


async def test_a_spool_record_from_before_the_change_is_replayed_in_milliseconds(
    influx: InfluxClient, tmp_path: Path
) -> None:
    line = f"door,device=d1,site=h1,type=event,event=open seq=1i,received_ms={RECEIVED}i {RECEIVED}".encode()
    tmp_path.joinpath("000000000001.seg").write_bytes(
        struct.pack("<4sIII", MAGIC_MS, len(line), zlib.crc32(line), 1) + line
    )
    async with InfluxWriter(client=influx, spool=Spool(directory=tmp_path)) as writer:
        for _ in range(200):  # the segment is consumed in a thread; the count follows back on the loop
            if writer.spool.empty and writer.stats.replayed:
                break
            await asyncio.sleep(0.02)
        assert writer.spool.empty and writer.stats.replayed == 1
    (point,) = await InfluxReader(client=influx).points(
        DeviceKind.DOOR, site="h1", start_ms=RECEIVED, end_ms=RECEIVED + 1
    )
    assert point.time_ms == RECEIVED
