"""Gateways on an edge mosquitto bridged into the NATS cluster (issue 18: "mosquitto at the edge bridged in").

The edge broker is the project's own (gateway accounts, ACLs, persistence) plus a ``connection`` bridge to the three
nodes' MQTT listeners (:class:`eldercare.servers.mosquitto.NatsBridge`). Readings published by the gateways must
reach the partition workers and InfluxDB exactly once and in order per home, also when the node carrying the bridge
is SIGKILLed mid-stream; commands published in the cluster must come back to the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from scale_helpers import Worker

from bench.scale import Gateways, bridge_connection, bridge_for, wait_bridged
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import Mosquitto, NatsBridge
from eldercare.servers.nats import NatsCluster
from eldercare.stack import Broker
from firmware_sim.wire import encode_mattress_telemetry
from ingest.influx import InfluxClient
from ingest.nats_bus import NatsBus
from ingest.partitions import partition_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_STOPPED = re.compile(r"partition worker stopped: (\d+) readings processed, (\d+) order violations")


@contextlib.contextmanager
def _edge_broker(cluster: NatsCluster, data_dir: Path) -> Iterator[Broker]:
    broker = Broker(data_dir=data_dir, secret=secrets.token_urlsafe(32), bridge=bridge_for(cluster))
    broker.start()
    try:
        wait_bridged(cluster, bridge_for(cluster))  # its command subscription exists
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def edge(cluster: NatsCluster, tmp_path: Path) -> Iterator[Broker]:
    """The project's mosquitto with a bridge into this test's cluster, connected with its subscriptions.

    Its 64 QoS 1 subscriptions are 64 R3 JetStream consumers: about 30 s on the loaded 2-core box.
    """
    with _edge_broker(cluster, tmp_path / "edge") as broker:
        yield broker


@pytest.fixture
def cluster8(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster mapping to 8 partitions (its streams and consumers come up in a few seconds instead of 30)."""
    with NatsCluster(data_dir=tmp_path / "nats8", partitions=8) as c:
        yield c


async def test_bridge_carries_uplinks_out_and_commands_back_in(cluster8: NatsCluster, tmp_path: Path) -> None:
    """A gateway's reading reaches NATS under its partition's subject; a command published in the cluster (over
    MQTT QoS 1 to another node) keeps its subject, reaches the gateway once, and is not sent back out."""
    with _edge_broker(cluster8, tmp_path / "edge") as edge:
        await _uplink_and_commands(cluster8, edge)


async def _uplink_and_commands(cluster: NatsCluster, edge: Broker) -> None:
    site = f"g{uuid.uuid4().hex[:8]}"
    edge.provision([site])
    part = partition_of(site, cluster.partitions)
    commands: list[tuple[str, bytes]] = []
    got_command = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        commands.append((msg.topic, msg.payload))
        got_command.set()

    gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=MQTTProtocolVersion.MQTTv311)
    gw.username_pw_set(site, edge.gateway_password(site))
    gw.on_message = on_message
    gw.connect(edge.host, edge.port)
    gw.loop_start()
    subscribed = threading.Event()
    gw.on_subscribe = lambda *_a: subscribed.set()
    gw.subscribe(f"ec/v1/{site}/+/+/cmd", qos=1)
    assert await asyncio.to_thread(subscribed.wait, 10)
    seen: list[str] = []
    async with NatsBus(servers=cluster.urls, name="observer") as bus:
        uplink = asyncio.Event()

        async def on_subject(m: object) -> None:
            seen.append(str(getattr(m, "subject", "")))
            if ".telemetry" in seen[-1]:
                uplink.set()

        sub = await bus.nc.subscribe(f"part.{part}.ec.v1.{site}.>", cb=on_subject)  # uplinks: mapped
        sub_cmd = await bus.nc.subscribe(f"ec.v1.{site}.>", cb=on_subject)  # commands: not mapped
        await bus.nc.flush()
        reading = encode_mattress_telemetry(
            site=site, device="mat1", seq=1, ts=int(time.time() * 1000), occupied=True, hr=60
        )
        await asyncio.to_thread(lambda: gw.publish(reading.topic, reading.payload, qos=1).wait_for_publish(10))
        await asyncio.wait_for(uplink.wait(), 30)

        # The command goes in through a node the bridge is not connected to (the cluster routes it).
        bridged = bridge_connection(cluster, bridge_for(cluster))
        assert bridged is not None
        other = next(n for n in cluster.nodes if n is not bridged[0])
        console = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console", protocol=MQTTProtocolVersion.MQTTv311)
        console.connect("127.0.0.1", other.mqtt_port)
        console.loop_start()
        try:
            topic = f"ec/v1/{site}/gateway/gw-{site}/cmd"
            await asyncio.to_thread(lambda: console.publish(topic, b'{"cmd":"stored"}', qos=1).wait_for_publish(30))
            assert await asyncio.to_thread(got_command.wait, 30)
            # A second command is the positive signal that anything the first one could have caused has arrived.
            got_command.clear()
            await asyncio.to_thread(lambda: console.publish(topic, b'{"cmd":"again"}', qos=1).wait_for_publish(30))
            assert await asyncio.to_thread(got_command.wait, 30)
            await bus.nc.flush()
        finally:
            console.disconnect()
            console.loop_stop()
            gw.disconnect()
            gw.loop_stop()
        await sub.unsubscribe()
        await sub_cmd.unsubscribe()
    assert commands == [(topic, b'{"cmd":"stored"}'), (topic, b'{"cmd":"again"}')]
    # Each command once on NATS (from the console), never echoed back out by the bridge.
    assert [s.rsplit(".", 1)[-1] for s in seen] == ["telemetry", "cmd", "cmd"]


async def _count(influx: InfluxClient, prefix: str) -> int:
    res = await influx.query(f'SELECT count("seq") FROM "mattress" WHERE "site" =~ /^{prefix}/')
    return int(res[0].series[0].values[0][1]) if res and res[0].series else 0


@pytest.mark.scale
@pytest.mark.parametrize("fault", ["none", "bridge-node"])
async def test_bridged_readings_reach_influxdb_exactly_once_in_order(
    fault: str, cluster: NatsCluster, edge: Broker, influxd: Influxd, unique_db: str, tmp_path: Path
) -> None:
    """24 gateways × 150 readings through the bridge to 2 workers; with ``bridge-node`` the nats-server the bridge
    is connected to is SIGKILLed once the first of them are in InfluxDB (and restarted 5 s later)."""
    prefix = f"e{uuid.uuid4().hex[:6]}"
    homes = [f"{prefix}h{i:02d}" for i in range(24)]
    per_home = 150
    edge.provision(homes)
    env = {
        **os.environ,
        "ELDERCARE_NATS_URLS": ",".join(cluster.urls),
        "ELDERCARE_LEASE_S": "5",
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": unique_db,
        "ELDERCARE_INFLUX_RETRY_INTERVAL_MS": "500",
        "ELDERCARE_LINK_SECRET": "test-link-secret-0123456789",
    }
    workers = [Worker(f"w{i}", env, tmp_path) for i in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.wait_ready()
    influx = InfluxClient(url=influxd.url, db=unique_db)
    now = time.time_ns() // 1_000_000
    wire = [
        (m.topic, m.payload)
        for m in (
            encode_mattress_telemetry(
                site=h, device="mat1", seq=i + 1, ts=now - 200_000 + i * 1000, occupied=True, hr=60
            )
            for i in range(per_home)
            for h in homes
        )
    ]
    third = len(wire) // 3
    stored_at_kill = 0
    gateways = await asyncio.to_thread(Gateways, edge, homes, inflight=200)
    try:
        await asyncio.to_thread(gateways.publish, wire[:third])
        publisher = threading.Thread(target=gateways.publish, args=(wire[third:],))
        if fault == "bridge-node":
            found = bridge_connection(cluster, bridge_for(cluster))
            assert found is not None
            victim = found[0]
            publisher.start()
            # Kill once readings flow through the bridge into InfluxDB, with most of them still to come.
            for _ in range(600):
                stored_at_kill = await _count(influx, prefix)
                if stored_at_kill > 0:
                    break
                await asyncio.sleep(0.1)
            victim.kill()
            await asyncio.sleep(5)  # the node stays down while the gateways keep publishing
            await asyncio.to_thread(victim.start)
        else:
            publisher.start()
        await asyncio.to_thread(publisher.join, 300)
        assert not publisher.is_alive()
        n = 0
        for _ in range(1800):
            n = await _count(influx, prefix)
            if n >= len(wire):
                break
            await asyncio.sleep(0.1)
        assert n == len(wire), f"{len(wire) - n} of {len(wire)} readings missing\n{edge.server.log_tail(30)}"
        if fault == "bridge-node":
            # The fault hit the stream: readings were still on their way, and the bridge connected again elsewhere.
            assert 0 < stored_at_kill < len(wire)
            assert edge.server.log_path.read_text().count("Connecting bridge (step 1)") >= 2
            after = bridge_connection(cluster, bridge_for(cluster))
            assert after is not None and after[0] is not victim
            print(f"stored when the bridge's node was killed: {stored_at_kill} of {len(wire)}")
    finally:
        await asyncio.to_thread(gateways.close)
        for w in workers:
            w.stop()
        keep = Path(os.environ.get("ELDERCARE_TEST_KEEP_LOGS", ""))
        if keep.name:
            keep.mkdir(parents=True, exist_ok=True)
            for w in workers:
                (keep / w.log.name).write_bytes(w.log.read_bytes())
    stats = [_STOPPED.search(w.log.read_text()) for w in workers]
    assert all(stats), [w.log.read_text()[-2000:] for w in workers]
    assert sum(int(m.group(2)) for m in stats if m) == 0  # no home's seq went backwards into detection
    assert sum(int(m.group(1)) for m in stats if m) >= len(wire)
    assert await _count(influx, prefix) == len(wire)  # exactly once
    await influx.drop_database()
    await influx.aclose()


def test_bridge_credentials_stay_private(tmp_path: Path) -> None:
    """With a NATS account, the bridge's password is in mosquitto.conf: the file is readable by its owner only."""
    bridge = NatsBridge(addresses=["127.0.0.1:1"], username="edge-1", password="s3cret")
    server = Mosquitto(data_dir=tmp_path, passwd="", acl="", bridge=bridge)
    server.prepare()
    conf = server.conf_path.read_text()
    assert "remote_username edge-1" in conf and "remote_password s3cret" in conf
    assert conf.count("topic +/+/+/cmd in 1 ec/v1/ ec/v1/") == 1
    assert server.conf_path.stat().st_mode & 0o777 == 0o600


def test_the_bridge_sends_only_uplinks_out_and_subscribes_commands_once(tmp_path: Path) -> None:
    bridge = NatsBridge(addresses=["127.0.0.1:1"])
    server = Mosquitto(data_dir=tmp_path, passwd="", acl="", bridge=bridge)
    server.prepare()
    topics = [line for line in server.conf_path.read_text().splitlines() if line.startswith("topic ")]
    assert topics[-1] == "topic +/+/+/cmd in 1 ec/v1/ ec/v1/" and len(topics) == 4
