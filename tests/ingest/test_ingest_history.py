"""Readings written to the real influxd come back as equal Reading objects (restart recovery path)."""

from __future__ import annotations

import time

import pytest

from eldercare.servers.influxd import Influxd
from gateway.contract import decode_message
from ingest.history import stored_readings, stored_windows
from ingest.influx import InfluxClient
from ingest.reader import InfluxReader
from ingest.schema import to_lines

pytestmark = pytest.mark.integration

T0 = (int(time.time()) - 3600) * 1000  # inside the raw retention policy


def _readings(site: str) -> list:
    msgs = [
        ("mattress/m1/telemetry", b'{"seq":1,"ts":%d,"occupied":true,"hr":61.5,"rr":14.5,"movement":3}' % T0),
        ("wristband/w1/event", b'{"seq":7,"ts":%d,"event":"fall","confidence":0.93}' % (T0 + 1000)),
        ("door/d1/event", b'{"seq":2,"ts":%d,"event":"open"}' % (T0 + 2000)),
        ("motion/p1/telemetry", b'{"seq":3,"ts":%d,"count":4,"window_s":60,"room":"kitchen"}' % (T0 + 3000)),
        # a wrong clock (far future): stored at its receive time, its own timestamp kept
        ("smoke/s1/status", b'{"seq":4,"ts":%d,"battery":80,"tamper":false}' % (T0 + 86_400_000)),
    ]
    return [decode_message(f"ec/v1/{site}/{t}", p, received_ms=T0 + 5000 + i) for i, (t, p) in enumerate(msgs)]


async def test_stored_readings_round_trip(influxd: Influxd, unique_db: str, unique_site: str) -> None:
    client = InfluxClient(url=influxd.url, db=unique_db)
    try:
        await client.ensure_storage(downsample=False)
        originals = _readings(unique_site)
        assert originals[-1].clock_skewed
        await client.write("\n".join(to_lines(originals)).encode())
        back = await stored_readings(InfluxReader(client=client), start_ms=T0 - 1000, sites=[unique_site])
        assert back == originals
        later = await stored_readings(InfluxReader(client=client), start_ms=T0 + 2500, sites=[unique_site])
        assert [r.device for r in later] == ["p1", "s1"]
    finally:
        await client.aclose()


@pytest.mark.parametrize("chunk_points", [1, 2, 10_000])
async def test_streamed_windows_hold_every_reading_once_in_arrival_order(
    influxd: Influxd, unique_db: str, unique_site: str, chunk_points: int
) -> None:
    client = InfluxClient(url=influxd.url, db=unique_db)
    try:
        await client.ensure_storage(downsample=False)
        originals = _readings(unique_site) + _readings(unique_site + "b")
        await client.write("\n".join(to_lines(originals)).encode())
        reader = InfluxReader(client=client)
        windows = [
            (stop, window)
            async for stop, window in stored_windows(
                reader, start_ms=T0 - 1000, end_ms=T0 + 6000, window_ms=1500, chunk_points=chunk_points
            )
        ]
        assert [stop for stop, _ in windows] == [T0 + 500, T0 + 2000, T0 + 3500, T0 + 5000, T0 + 6000]
        for stop, window in windows:
            expected = sorted(
                (r for r in originals if stop - 1500 <= r.time_ms < stop), key=lambda r: (r.received_ms, r.time_ms)
            )
            assert window == expected
        # Every reading once, the one with a wrong clock in the window of its receive time, nothing else.
        assert sorted(r.seq or 0 for _, w in windows for r in w) == sorted(r.seq or 0 for r in originals)
        assert [r.device for r in windows[-1][1]] == ["s1", "s1"]
        assert await stored_readings(reader, start_ms=T0 - 1000, end_ms=T0 + 6000) == [r for _, w in windows for r in w]
    finally:
        await client.aclose()
