"""End to end with real mosquitto + influxd: SIGKILL of the backend, a 30 s InfluxDB outage, a broker restart."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path

import pytest
from ingest_helpers import PacedPublisher, Pipeline, count_site, hr_of, wait_count
from support.backend import end_session

from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from gateway.listener import CLIENT_KINDS
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def spot_check(influx: InfluxClient, pub: PacedPublisher) -> None:
    for i in (0, pub.count // 3, pub.count // 2, pub.count - 1):
        results = await influx.query(
            'SELECT "hr", "seq", "movement" FROM "mattress" WHERE "site" = $site AND "device" = $device AND time = $t',
            # The point's time is the millisecond in ns plus the seq below it (ingest.schema.point_time_ns).
            params={"site": pub.site, "device": f"mat{i % pub.devices}", "t": (pub.t0 + i) * 1_000_000 + i + 1},
        )
        assert results[0].series[0].values == [[pub.t0 + i, hr_of(i), i + 1, i % 100]]


@pytest.mark.parametrize("mqtt_client", CLIENT_KINDS)
async def test_sigkill_mid_stream_loses_nothing(
    broker: Broker, influx: InfluxClient, influxd: Influxd, unique_site: str, tmp_path: Path, mqtt_client: str
) -> None:
    broker.provision([unique_site])
    client_id = f"kill-{uuid.uuid4().hex[:8]}"
    pipe = Pipeline(
        broker=broker,
        influx_url=influxd.url,
        db=influx.db,
        data_dir=tmp_path,
        client_id=client_id,
        mqtt_client=mqtt_client,
    )
    pipe.start()
    pub = PacedPublisher(broker=broker, site=unique_site, count=30_000, rate=5_000)
    try:
        pub.start()
        assert await wait_count(influx, unique_site, 5_000, timeout=60) >= 5_000
        pipe.kill()  # SIGKILL: no flush, no clean disconnect
        killed_at = await count_site(influx, unique_site)
        assert killed_at < pub.count
        await asyncio.sleep(1)
        pipe.start()
        await _all_published(pub)
        stored = await wait_count(influx, unique_site, pub.count, timeout=120)
        assert stored == pub.count, f"{stored} stored; spool {pipe.spool_files()}; {pipe.log_tail()}"
        await asyncio.sleep(1)
        assert await count_site(influx, unique_site) == pub.count  # exactly once
        await spot_check(influx, pub)
    finally:
        pipe.stop()
        await end_session(broker, client_id)


async def test_influxd_down_30s_under_load(broker: Broker, unique_site: str, unique_db: str, tmp_path: Path) -> None:
    broker.provision([unique_site])
    server = Influxd(data_dir=tmp_path / "influxdb")
    server.start()
    influx = InfluxClient(url=server.url, db=unique_db)
    client_id = f"outage-{uuid.uuid4().hex[:8]}"
    pipe = Pipeline(broker=broker, influx_url=server.url, db=unique_db, data_dir=tmp_path / "app", client_id=client_id)
    pipe.start()
    pub = PacedPublisher(broker=broker, site=unique_site, count=40_000, rate=1_000)
    try:
        pub.start()
        assert await wait_count(influx, unique_site, 3_000, timeout=60) >= 3_000
        server.stop()
        await asyncio.sleep(30)
        assert pipe.spool_files(), "readings should be spooled while InfluxDB is down"
        assert pipe.proc is not None and pipe.proc.poll() is None
        server.start()
        await _all_published(pub)
        stored = await wait_count(influx, unique_site, pub.count, timeout=120)
        assert stored == pub.count, f"{stored} stored; spool {pipe.spool_files()}; {pipe.log_tail()}"
        await asyncio.sleep(1)
        assert await count_site(influx, unique_site) == pub.count
        await spot_check(influx, pub)
        assert pipe.spool_files() == []
    finally:
        pipe.stop()
        await influx.aclose()
        server.stop()
        await end_session(broker, client_id)


@pytest.mark.parametrize("mqtt_client", CLIENT_KINDS)
async def test_broker_restart_stream_continues(
    influxd: Influxd, unique_site: str, tmp_path: Path, mqtt_client: str
) -> None:
    own = Broker(data_dir=tmp_path / "mosquitto", secret=secrets.token_urlsafe(16))
    own.start()
    own.provision([unique_site])
    influx = InfluxClient(url=influxd.url, db=f"b_{uuid.uuid4().hex[:10]}")
    pipe = Pipeline(
        broker=own,
        influx_url=influxd.url,
        db=influx.db,
        data_dir=tmp_path / "app",
        client_id="backend-1",
        mqtt_client=mqtt_client,
    )
    pipe.start()
    pub = PacedPublisher(broker=own, site=unique_site, count=20_000, rate=2_000)
    try:
        pub.start()
        assert await wait_count(influx, unique_site, 4_000, timeout=60) >= 4_000
        own.stop()
        await asyncio.sleep(2)
        own.start()
        await _all_published(pub)
        stored = await wait_count(influx, unique_site, pub.count, timeout=120)
        assert stored == pub.count, f"{stored} stored; spool {pipe.spool_files()}; {pipe.log_tail()}"
        await asyncio.sleep(1)
        assert await count_site(influx, unique_site) == pub.count
        await spot_check(influx, pub)
    finally:
        pipe.stop()
        await influx.drop_database()
        await influx.aclose()
        own.stop()


async def _all_published(pub: PacedPublisher) -> None:
    """Wait until every message is published and acknowledged by the broker (a loaded machine paces slower than
    asked): the count in InfluxDB is then compared with everything sent, not with what was sent so far."""
    await asyncio.to_thread(pub.join, 300)
    assert not pub.is_alive() and pub.error is None, f"{pub.published} of {pub.count} published: {pub.error}"
