"""Readings the old owner stored but did not acknowledge are redelivered to the new owner: counted once (issue 18).

The old owner writes a batch to InfluxDB and dies before its acknowledgements leave (here: it never sends them).
The new owner restores the partition from the snapshot plus the readings InfluxDB stored since, then JetStream
delivers the same messages again on its consumer (it starts at the old ack floor + 1). They must be recognised as
duplicates (device + seq): detection must not see them a second time (a second call-button page, readings counted
twice) and InfluxDB must not get them again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from scale_helpers import Devices
from support.tasks import watchdog

from alerts.service import Repeats
from alerts.store.records import AlertRecord
from detection.engine import Engine
from detection.models import Alert, AlertType
from eldercare.partition_worker import PartitionWorker
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from eldercare.settings import Settings
from firmware_sim.wire import encode_call_button_event, encode_mattress_telemetry
from gateway.deadletter import DeadLetterStore
from gateway.listener import RawMessage
from gateway.models import Reading
from gateway.service import GatewayService
from ingest.influx import InfluxClient
from ingest.nats_bus import MQTT_STREAM, NatsBus
from ingest.partitions import partition_of
from ingest.schema import to_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scale]

LEASE_S = 10.0
MATTRESS = 5


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def _count(influx: InfluxClient, measurement: str, site: str) -> int:
    res = await influx.query(f'SELECT count("seq") FROM "{measurement}" WHERE "site" = \'{site}\'')
    return int(res[0].series[0].values[0][1]) if res and res[0].series else 0


class _InfluxSink:
    """The old owner's durable step: the readings written to InfluxDB (as the worker's writer does)."""

    def __init__(self, influx: InfluxClient, engine: Engine) -> None:
        self.influx = influx
        self.engine = engine

    async def accept(self, readings: Sequence[Reading]) -> None:
        await self.influx.write("\n".join(to_lines(readings)).encode())
        self.engine.process_many([r for r in readings if not r.is_life_safety])


WHOLE_TEST_S = 270.0
"""Below pytest's 300 s ``timeout``: a hang fails with every task's chain of awaits (``support.tasks.watchdog``)."""


async def test_a_reading_stored_by_the_old_owner_and_redelivered_to_the_new_one_counts_once(
    cluster: NatsCluster, influxd: Influxd, unique_db: str, tmp_path: Path
) -> None:
    # Once (2026-12-07, 16 partition consumers created at once) this test hung until pytest's timeout, with only
    # the event loop's poll to show: the watchdog names the await.
    async with watchdog(WHOLE_TEST_S):
        await _redelivered(cluster, influxd, unique_db, tmp_path)


async def _redelivered(cluster: NatsCluster, influxd: Influxd, unique_db: str, tmp_path: Path) -> None:
    site = f"h{uuid.uuid4().hex[:8]}"
    partition = partition_of(site)
    settings = Settings(
        nats_urls=",".join(cluster.urls),
        influx_url=influxd.url,
        influx_db=unique_db,
        influx_retry_interval_ms=500,
        lease_s=LEASE_S,
        data_dir=tmp_path / "data",
        worker_id="new-owner",
    )
    raised: list[Alert] = []

    def seen(alert: Alert) -> bool:  # the alert store's "already raised?" (alert_store_sink's test)
        return any(
            (a.site, a.type, a.device, a.time_ms) == (alert.site, alert.type, alert.device, alert.time_ms)
            for a in raised
        )

    class Sink:  # the alert service's two calls the worker makes
        async def raise_alert(
            self,
            alert: Alert,
            *,
            on_stored: Callable[[AlertRecord | None], None] | None = None,
            repeats: Repeats | None = None,
        ) -> AlertRecord | None:
            raised.append(alert)
            if on_stored is not None:
                on_stored(None)
            return None

        async def notify_owed(self, alert_id: int) -> bool:
            return False

    influx = InfluxClient(url=influxd.url, db=unique_db)
    await influx.ensure_storage()
    devices = await asyncio.to_thread(Devices, cluster.mqtt_ports)
    now = time.time_ns() // 1_000_000
    batch = [
        encode_call_button_event(site=site, device="btn1", seq=1, ts=now, event="press"),
        *(
            encode_mattress_telemetry(site=site, device="mat1", seq=1 + i, ts=now + i * 1000, occupied=True)
            for i in range(MATTRESS)
        ),
    ]
    try:
        # The old owner: takes the partition, stores an (empty) snapshot, ingests the batch (InfluxDB, detection,
        # the press paged at once), and dies before any acknowledgement leaves.
        async with NatsBus(servers=cluster.urls, name="old-owner") as bus:
            await bus.ensure_partition_consumers(settings.partitions)
            leases = await bus.leases(owner="old-owner", lease_s=LEASE_S, replicas=3)
            lease = await leases.acquire(partition)
            assert lease is not None
            consumer = await bus.take_over_consumer(lease)
            snapshots = await bus.snapshots(replicas=3)
            engine = Engine(config=settings.detect_config(), refit_inline=False)
            await snapshots.save(lease, engine.snapshot())
            engine.sink = raised.append
            await asyncio.to_thread(devices.publish, [(m.topic, m.payload) for m in batch])
            source = await bus.partition_source(lease, consumer)

            def no_ack(messages: Sequence[RawMessage]) -> int:
                return 0  # killed between durability and the acknowledgements

            source.ack = no_ack  # type: ignore[method-assign]
            service = GatewayService(
                directory=None,
                deadletter=DeadLetterStore.in_data_dir(tmp_path / "old"),
                sink=_InfluxSink(influx, engine),
                fast_path=engine.process,
            )
            stop = asyncio.Event()
            running = asyncio.create_task(service.run(source, max_batch=500, max_wait_s=0.2, stop=stop))
            await _until(
                lambda: _stored(influx, site),
                "the old owner never stored the batch",
            )
            stop.set()
            await running
            await leases.kv.delete(f"p{partition}")  # its lease expired
        assert [a.type for a in raised] == [AlertType.CALL_BUTTON]

        # The new owner: restores (snapshot + the batch from InfluxDB), then gets the batch again from JetStream.
        worker = PartitionWorker(settings, alert_sink=Sink(), alert_seen=seen, tick_s=0.2)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop=stop))
        try:

            async def restored() -> bool:
                owned = worker.owned.get(partition)
                return owned is not None and owned.restored.is_set() and owned.consumer is not None

            await _until(restored, "the new owner never restored the partition")
            fresh = encode_mattress_telemetry(
                site=site, device="mat1", seq=1 + MATTRESS, ts=now + MATTRESS * 1000, occupied=True
            )
            await asyncio.to_thread(devices.publish, [(fresh.topic, fresh.payload)])
            async with NatsBus(servers=cluster.urls, name="observer") as observer:
                last = (await observer.js.stream_info(MQTT_STREAM)).state.last_seq
                new_consumer = worker.owned[partition].consumer
                assert new_consumer is not None

                async def all_acked() -> bool:
                    info = await observer.js.consumer_info(MQTT_STREAM, new_consumer)
                    return info.ack_floor is not None and info.ack_floor.stream_seq >= last

                await _until(all_acked, "the new owner never acknowledged the redelivered batch and the fresh reading")
            assert await _count(influx, "mattress", site) == MATTRESS + 1
            # Detection saw the fresh reading only (the redelivered batch is a duplicate), and the press paged once,
            # by the old owner.
            assert (worker.readings_processed, [a.type for a in raised]) == (1, [AlertType.CALL_BUTTON])
        finally:
            stop.set()
            await running
    finally:
        await asyncio.to_thread(devices.close)
        await influx.drop_database()
        await influx.aclose()


async def _stored(influx: InfluxClient, site: str) -> bool:
    return await _count(influx, "mattress", site) >= MATTRESS and await _count(influx, "call_button", site) >= 1
