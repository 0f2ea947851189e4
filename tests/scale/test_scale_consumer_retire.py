"""An older epoch's consumer is retired only once the new one is on every replica (issue 18, consumer retirement).

``$MQTT_msgs`` has interest retention: a replica that applies the older consumer's deletion before it knows the new
consumer sees no interest and removes the partition's messages (measured: 150 readings lost in 1 of 6 NATS-node
kill runs). A take-over while a node is down must therefore keep the older consumer, and retire it once the node is
back and the new consumer is current there; no message of the partition may be lost across it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from nats.js.api import ConsumerInfo
from scale_helpers import Devices, Worker, worker_env

from alerts.store.repository import AlertStore
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from eldercare.servers.postgres import Postgres
from firmware_sim.wire import encode_mattress_telemetry
from ingest.nats_bus import MQTT_STREAM, NatsBus, consumer_prefix
from ingest.partitions import partition_of

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scale]

BATCH = 50
LEASE_S = 5.0


def _readings(site: str, first_seq: int) -> list[tuple[str, bytes]]:
    now = time.time_ns() // 1_000_000
    msgs = [
        encode_mattress_telemetry(site=site, device="mat1", seq=first_seq + i, ts=now + i, occupied=True)
        for i in range(BATCH)
    ]
    return [(m.topic, m.payload) for m in msgs]


async def _consumers(bus: NatsBus, partition: int) -> dict[str, ConsumerInfo]:
    prefix = consumer_prefix(partition)
    return {i.name: i for i in await bus.js.consumers_info(MQTT_STREAM) if i.name.startswith(prefix)}


async def _retired(bus: NatsBus, partition: int, consumer: str, timeout: float = 60) -> None:
    """Ask for the older consumers' retirement (what the owner does periodically) until none is kept."""
    deadline = time.monotonic() + timeout
    while await bus.retire_older_consumers(partition, consumer):
        assert time.monotonic() < deadline, await _consumers(bus, partition)
        await asyncio.sleep(0.5)


async def test_an_older_consumer_is_kept_while_a_replica_is_missing_and_retired_once_all_are_current(
    cluster: NatsCluster,
) -> None:
    site = f"h{uuid.uuid4().hex[:8]}"
    partition = partition_of(site, cluster.partitions)
    up = cluster.nodes[:2]
    down = cluster.nodes[2]
    devices = await asyncio.to_thread(Devices, [n.mqtt_port for n in up])
    try:
        async with NatsBus(servers=[n.url for n in up], name="owner") as bus:
            await bus.ensure_partition_consumers(cluster.partitions)
            leases = await bus.leases(owner="wa", bucket=f"owners-{uuid.uuid4().hex[:8]}", lease_s=60, replicas=3)
            await asyncio.to_thread(devices.publish, _readings(site, 1))

            # Every node up: the first owner's take-over retires epoch 0 once its consumer is on every replica.
            first = await leases.acquire(partition)
            assert first is not None
            c1 = await bus.take_over_consumer(first)
            await _retired(bus, partition, c1)
            assert list(await _consumers(bus, partition)) == [c1]

            # One node down: the next owner's consumer cannot be on every replica, so the older one stays.
            down.stop()
            await asyncio.to_thread(devices.publish, _readings(site, 1 + BATCH))
            await leases.kv.delete(f"p{partition}")
            second = await leases.acquire(partition)
            assert second is not None and second.revision > first.revision
            c2 = await bus.take_over_consumer(second)
            held = await _consumers(bus, partition)
            assert sorted(held) == sorted([c1, c2]), held
            cluster_info = held[c2].cluster
            assert cluster_info is not None and cluster_info.replicas is not None
            assert any(not r.current or r.offline for r in cluster_info.replicas), cluster_info
            assert await bus.retire_older_consumers(partition, c2) == [c1]
            assert bus.older_kept == {c2: [c1]}  # what the worker's loop asks again for
            await asyncio.to_thread(devices.publish, _readings(site, 1 + 2 * BATCH))

            # The node back and the new consumer current on it: retired on the next periodic attempt.
            await asyncio.to_thread(down.start)
            await asyncio.to_thread(cluster.wait_healthy)
            await _retired(bus, partition, c2)
            assert list(await _consumers(bus, partition)) == [c2]
            assert bus.older_kept == {}

            # Nothing of the partition was lost: the new consumer delivers every reading published.
            sub = await bus.js.pull_subscribe_bind(durable=c2, stream=MQTT_STREAM)
            seqs: set[int] = set()
            deadline = time.monotonic() + 60
            while len(seqs) < 3 * BATCH and time.monotonic() < deadline:
                try:
                    msgs = await sub.fetch(batch=500, timeout=2)
                except TimeoutError:
                    continue
                for m in msgs:
                    seqs.add(json.loads(m.data)["seq"])
                    await m.ack()
            assert seqs == set(range(1, 3 * BATCH + 1)), sorted(set(range(1, 3 * BATCH + 1)) - seqs)
    finally:
        await asyncio.to_thread(devices.close)


async def _owned_by(cluster: NatsCluster, worker: str, timeout: float) -> None:
    """Until ``worker`` holds every partition's lease."""
    async with NatsBus(servers=[n.url for n in cluster.nodes if n.proc is not None], name="observer") as bus:
        leases = await bus.leases(owner="observer", lease_s=LEASE_S, replicas=3)
        deadline = time.monotonic() + timeout
        while True:
            holders = [await leases.holder(p) for p in range(cluster.partitions)]
            if all(h is not None and h[0] == worker for h in holders):
                return
            assert time.monotonic() < deadline, holders
            await asyncio.sleep(0.5)


async def test_a_worker_retires_the_consumers_it_had_to_keep_once_the_node_is_back(
    cluster: NatsCluster, influxd: Influxd, postgres_server: Postgres, unique_db: str, tmp_path: Path
) -> None:
    """The worker's own loop, not the test, retires them: w1 owns every partition, is SIGKILLed, a node goes down,
    w2 takes every partition over while its consumers cannot be on every replica (so w1's are kept), the node comes
    back, and w2's rebalance loop deletes w1's consumers: one consumer per partition again."""
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    db_url = postgres_server.create_database(db_name)
    AlertStore(url=db_url).close()  # migrated once, before the workers start
    env = worker_env(cluster, influxd, unique_db, lease_s=LEASE_S, database_url=db_url)
    w1, w2 = Worker("w1", env, tmp_path), Worker("w2", env, tmp_path)
    down = cluster.nodes[2]
    try:
        w1.start()
        w1.wait_ready()
        await _owned_by(cluster, "w1", 60)
        w1.kill()
        down.stop()
        w2.start()
        w2.wait_ready()
        await _owned_by(cluster, "w2", 60)
        # w2's consumers could not be on every replica: w1's were kept (the worker says so for each partition).
        kept = await asyncio.to_thread(_log_lines, w2, "not on every replica yet; keeping", cluster.partitions)
        assert len(kept) >= cluster.partitions
        await asyncio.to_thread(down.start)
        await asyncio.to_thread(cluster.wait_healthy)
        # Retired by w2's loop once its consumers are current on the node again: one consumer per partition.
        async with NatsBus(servers=cluster.urls, name="observer") as bus:
            deadline = time.monotonic() + 90
            while True:
                names = [i.name for i in await bus.js.consumers_info(MQTT_STREAM) if i.name.startswith("ec-p")]
                per = {p: [n for n in names if n.startswith(consumer_prefix(p))] for p in range(cluster.partitions)}
                if all(len(v) == 1 for v in per.values()):
                    break
                assert time.monotonic() < deadline, {p: v for p, v in per.items() if len(v) != 1}
                await asyncio.sleep(0.5)
        assert "on every replica now; retired" in w2.log.read_text()
    finally:
        w1.stop()
        w2.stop()
        postgres_server.drop_database(db_name)


def _log_lines(worker: Worker, text: str, at_least: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in worker.log.read_text().splitlines() if text in line]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)
