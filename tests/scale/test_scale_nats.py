"""Partition mapping and leases on a real 3-node nats-server cluster (issue 18 items 2-3)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nats
import paho.mqtt.client as mqtt
import pytest
from nats.aio.msg import Msg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from eldercare.servers.nats import NatsCluster
from ingest.nats_bus import NatsBus
from ingest.partitions import LeaseLostError, partition_of

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _bucket() -> str:
    return f"owners-{uuid.uuid4().hex[:8]}"


async def test_mqtt_publishes_land_on_the_homes_partition_subject(nats_cluster: NatsCluster) -> None:
    """A device's QoS 1 publish on any node's MQTT listener arrives as ``part.{fnv1a(site) % 64}.ec.v1.{site}…``."""
    nc = await nats.connect(servers=nats_cluster.urls)
    got: list[str] = []

    async def collect(msg: Msg) -> None:
        got.append(msg.subject)

    sub = await nc.subscribe("part.>", cb=collect)
    await nc.flush()
    sites = [f"s{uuid.uuid4().hex[:6]}" for _ in range(60)]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:6]}", protocol=MQTTProtocolVersion.MQTTv311
    )
    client.connect("127.0.0.1", nats_cluster.mqtt_ports[1])
    client.loop_start()
    try:
        infos = [
            client.publish(f"ec/v1/{s}/door/door1/event", b'{"event":"open","seq":1,"ts":1}', qos=1) for s in sites
        ]
        for info in infos:
            await asyncio.to_thread(info.wait_for_publish, 30)  # PUBACK: stored in $MQTT_msgs
        for _ in range(200):
            if len(got) >= len(sites):
                break
            await asyncio.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
        await sub.unsubscribe()
        await nc.close()
    expected = sorted(f"part.{partition_of(s)}.ec.v1.{s}.door.door1.event" for s in sites)
    assert sorted(got) == expected


async def test_a_lease_is_exclusive_renewed_by_compare_and_set_and_released(nats_cluster: NatsCluster) -> None:
    bucket = _bucket()
    async with NatsBus(servers=nats_cluster.urls, name="a") as a, NatsBus(servers=nats_cluster.urls, name="b") as b:
        la = await a.leases(owner="wa", bucket=bucket, lease_s=10, replicas=3)
        lb = await b.leases(owner="wb", bucket=bucket, lease_s=10, replicas=3)
        lease = await la.acquire(5)
        assert lease is not None and await lb.acquire(5) is None
        first = lease.revision
        await la.renew(lease)
        assert lease.revision > first and await lb.holder(5) == ("wa", lease.revision)
        # A stale copy of the lease (the revision it had before) is refused and marked lost.
        stale = type(lease)(partition=5, owner="wa", revision=first, renewed_at=la.clock(), ttl_s=10)
        with pytest.raises(LeaseLostError, match="revision changed"):
            await la.renew(stale)
        assert await la.release(lease)
        taken = await lb.acquire(5)
        assert taken is not None and await la.holder(5) == ("wb", taken.revision)
        assert not await la.release(lease)  # already released: nothing to delete


async def test_an_unrenewed_lease_expires_and_another_worker_takes_it(nats_cluster: NatsCluster) -> None:
    bucket = _bucket()
    async with NatsBus(servers=nats_cluster.urls, name="a") as a, NatsBus(servers=nats_cluster.urls, name="b") as b:
        la = await a.leases(owner="wa", bucket=bucket, lease_s=2, replicas=3)
        lb = await b.leases(owner="wb", bucket=bucket, lease_s=2, replicas=3)
        held = await la.acquire(9)
        assert held is not None
        taken = None
        for _ in range(200):  # 2.9 announces no expiry: contenders poll
            taken = await lb.acquire(9)
            if taken is not None:
                break
            await asyncio.sleep(0.1)
        assert taken is not None
        assert not held.valid(la.clock())  # the old owner's own deadline passed before the server let B in
        with pytest.raises(LeaseLostError):
            await la.renew(held)


async def test_a_lease_that_expires_while_a_contender_creates_it_is_taken_not_raised(
    nats_cluster: NatsCluster,
) -> None:
    """The old lease expires between nats-py's refused create and the look it then takes at the key.

    ``KeyValue.create`` first writes with "no earlier revision"; refused (the old owner's lease is there), it reads
    the key to tell a deletion marker from a live value, and that read raised ``KeyNotFoundError`` when the server
    expired the lease in between. A loaded clean-clone run hit it at a take-over (the worker's rebalance gathers
    every partition's acquire, so the partitions acquired beside it were held and never started until their
    leases expired). Here the read is held until the lease has really expired on the server, so the race is hit
    every time: the contender must get the lease.
    """
    bucket = _bucket()
    async with NatsBus(servers=nats_cluster.urls, name="a") as a, NatsBus(servers=nats_cluster.urls, name="b") as b:
        la = await a.leases(owner="wa", bucket=bucket, lease_s=1, replicas=3)
        lb = await b.leases(owner="wb", bucket=bucket, lease_s=1, replicas=3)
        assert await la.acquire(4) is not None
        real_get = lb.kv._get  # noqa: SLF001 - the read nats-py's create makes after a refused write
        held = 0

        async def get_after_the_expiry(key: str, revision: int | None = None) -> object:
            nonlocal held
            if held == 0:
                held += 1
                await asyncio.sleep(2.5)  # the server drops the 1-s lease meanwhile (the bucket's max age)
            return await real_get(key, revision)

        lb.kv._get = get_after_the_expiry  # type: ignore[method-assign]  # noqa: SLF001
        taken = await lb.acquire(4)
        assert held == 1, "the contender's first create must have been refused by the live lease"
        assert taken is not None and await lb.holder(4) == ("wb", taken.revision)


def test_a_stopped_owner_is_fenced_when_it_wakes(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    """SIGSTOP the owner past its lease, let another worker take over, SIGCONT: it acts no more, it is fenced."""
    bucket = _bucket()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "holder.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "lease_holder.py"), nats_cluster.urls[0], bucket, "3", "2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        _wait_for(out, "acted 2")
        os.kill(proc.pid, signal.SIGSTOP)
        acted_before = out.read_text().count("acted")

        async def take_over() -> tuple[str, int] | None:
            async with NatsBus(servers=nats_cluster.urls, name="b") as b:
                lb = await b.leases(owner="wb", bucket=bucket, lease_s=2, replicas=3)
                for _ in range(300):
                    lease = await lb.acquire(3)
                    if lease is not None:
                        return await lb.holder(3)
                    await asyncio.sleep(0.1)
                return None

        assert asyncio.run(take_over()) is not None
        os.kill(proc.pid, signal.SIGCONT)
        _wait_for(out, "fenced")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert text.count("acted") == acted_before, text  # nothing after the wake-up
    assert "fenced not renewed before its deadline" in text or "fenced revision changed" in text


def _wait_for(path: Path, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while needle not in path.read_text():
        assert time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


@pytest.mark.scale  # ~35 s of renewals; the worker tests take partitions over under renewal in the default run too
async def test_a_take_over_binds_the_consumer_it_created_while_its_lease_is_renewed(nats_cluster: NatsCluster) -> None:
    """Renewals move the lease's revision during a take-over: the consumer created must be the one returned.

    Before the fix the name was taken before and the epoch after the JetStream calls, so under load the owner bound
    a consumer that did not exist and fenced itself ~5 s after every take-over (the NATS-node kill failures).
    """
    async with NatsBus(servers=nats_cluster.urls, name="a") as bus:
        await bus.ensure_partition_consumers(64)
        leases = await bus.leases(owner="wa", bucket=_bucket(), lease_s=10, replicas=3)
        lease = await leases.acquire(7)
        assert lease is not None
        taking = asyncio.ensure_future(bus.take_over_consumer(lease))
        renewals = 0
        while not taking.done():  # what the keep-alive task does meanwhile, as often as the server allows
            await leases.renew(lease)
            renewals += 1
        name = await taking
        assert renewals > 0
        info = await bus.js.consumer_info("$MQTT_msgs", name)  # raises NotFoundError if it was never created
        assert info.name == name
        await bus.js.delete_consumer("$MQTT_msgs", name)


async def test_closing_the_connection_on_purpose_is_not_logged_as_a_lost_one(
    nats_cluster: NatsCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """nats-py calls the disconnected callback on a deliberate close too: every worker's shutdown (and every
    ``eldercare bench join`` round) logged "NATS: disconnected; reconnecting to any node" as a warning."""
    caplog.set_level("INFO", logger="ingest.nats_bus")
    async with NatsBus(servers=nats_cluster.urls, name="close-probe") as bus:
        await bus.js.account_info()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "ingest.nats_bus"]
    assert ("INFO", "NATS: connection closed") in messages
    assert not [m for m in messages if m[0] == "WARNING"], messages


async def test_the_live_workers_are_read_without_a_watcher_and_a_leaver_is_gone_at_once(
    nats_cluster: NatsCluster,
) -> None:
    """``Members.live()`` is one bounded request per round, not nats-py's ``keys()``.

    ``keys()`` opens a push watcher (an ordered consumer) and waits, without a bound, for the marker that its
    initial values are in. Once (2026-12-07, a worker after 16 consumer creates at once on a new cluster) that
    marker never came: the worker's main loop hung in ``keys()`` for good (the watchdog's stack), it never rebalanced
    again, and its stop waited for ever. Every list is now a request with a timeout, and no consumer is made.
    """
    bucket = _bucket()
    async with NatsBus(servers=nats_cluster.urls, name="members") as bus:
        a = await bus.members(worker="wa", bucket=bucket, ttl_s=3, replicas=3)
        b = await bus.members(worker="wb", bucket=bucket, ttl_s=3, replicas=3)
        assert await a.live() == []
        await a.beat()
        await b.beat()
        assert await a.live() == ["wa", "wb"]
        await b.leave()
        assert await a.live() == ["wa"]  # at once, not after the TTL
        await a.kv.delete("wa")  # how an older release left: a delete marker stays until the TTL
        assert await a.live() == []
        await b.beat()
        assert await a.live() == ["wb"]
        deadline = time.monotonic() + 20
        while await a.live() == ["wb"]:  # it stopped beating: gone after the TTL (3 s)
            assert time.monotonic() < deadline, "a worker that stopped beating stayed live"
            await asyncio.sleep(0.2)
        assert await a.live() == []
        assert (await bus.js.stream_info(f"KV_{bucket}")).state.consumer_count == 0  # no watcher was made


def test_a_cluster_port_taken_between_choosing_and_binding_it_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parallel test's process took a node's route port after it was chosen as free. nats-server says "Server is
    ready" and opens its monitoring port *before* it binds the route port, so the node passed its start check, then
    died ("Error listening on router port … address already in use"); the cluster waited 60 s for it to become
    healthy and every test of that fixture errored (clean-clone run, 2026-12-07). The start now sees the node exit
    and starts the cluster again on new ports. Here each node counts as started at once (the CI run's order)."""
    import socket

    from eldercare.servers.nats import NatsNode

    monkeypatch.setattr(NatsNode, "ready", lambda self: True)
    cluster = NatsCluster(data_dir=tmp_path / "nats")
    taken = cluster.nodes[1].cluster_port
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    try:
        with cluster:
            assert taken not in [n.cluster_port for n in cluster.nodes]
            assert all(n.proc is not None and n.proc.poll() is None for n in cluster.nodes)
            # Healthy again after the start's stream creation (a node's /healthz reads "not current" for a moment
            # while it catches up on the new streams: one instant's reading made this test fail once).
            cluster.wait_healthy(timeout=60)
    finally:
        squatter.close()
