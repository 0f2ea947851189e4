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

import pytest
from nats.js.api import ConsumerInfo
from scale_helpers import Devices

from eldercare.servers.nats import NatsCluster
from firmware_sim.wire import encode_mattress_telemetry
from ingest.nats_bus import MQTT_STREAM, NatsBus, consumer_prefix
from ingest.partitions import partition_of

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scale]

BATCH = 50


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
