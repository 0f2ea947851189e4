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
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import paho.mqtt.client as mqtt
import pytest
from nats.errors import Error as NatsError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import SecretStr
from scale_helpers import TlsClient, Worker, worker_env

from bench.scale import Gateways, bridge_connection, bridge_for, wait_bridged
from eldercare.certs import issue
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import Mosquitto, NatsBridge
from eldercare.servers.nats import MQTT_MAX_ACK_PENDING, MQTT_SESSION_ACK_PENDING, NatsCluster
from eldercare.settings import Settings
from eldercare.stack import Broker, nats_bridge
from firmware_sim.wire import encode_mattress_telemetry
from ingest.influx import InfluxClient
from ingest.nats_auth import NatsAuth
from ingest.nats_bus import MQTT_STREAM, OWNERS_BUCKET, NatsBus, consumer_prefix, partition_consumer_config
from ingest.partitions import partition_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_STOPPED = re.compile(
    r"partition worker stopped: (\d+) readings processed, (\d+) order violations; (\d+) more consumed during restores"
)


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
    env = worker_env(cluster, influxd, unique_db, influx_retry_ms=500)
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
            log_at_kill = len(edge.server.log_path.read_text())
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
            # After the kill the bridge connected to another node (it may go back to the restarted one later: the
            # node it holds at the end is no proof, measured: 2 of 3 runs ended on the victim after election flaps).
            since_kill = edge.server.log_path.read_text()[log_at_kill:]
            ports = {int(p) for p in re.findall(r"Connecting bridge \(step 1\) \S+ \([^)]*:(\d+)\)", since_kill)}
            assert ports - {victim.mqtt_port}, since_kill[-2000:]
            assert bridge_connection(cluster, bridge_for(cluster)) is not None
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
    # Each reading reached detection: fed by a worker, or (consumed while its partition was being restored) through
    # the history the restore replays once it was in InfluxDB.
    assert sum(int(m.group(1)) + int(m.group(3)) for m in stats if m) >= len(wire)
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


BRIDGE_USER, BRIDGE_PASSWORD = "edge-1", "test-bridge-password-0123"


def _probe(port: int, ca: Path) -> TlsClient:
    """An MQTT client logged in with the bridge's own credentials, recording the SUBACKs."""
    # Not the bridge's client id: that would throw the bridge off (nats-server replaces the older connection).
    return TlsClient(port, ca, client_id=f"{BRIDGE_USER}-probe", username=BRIDGE_USER, password=BRIDGE_PASSWORD)


async def _violation(cluster: NatsCluster, subject: str) -> str:
    """Wait for a node's log to report the bridge user's publish to ``subject`` as a permission violation."""
    needle = f'Publish Violation - User "{BRIDGE_USER}", Subject "{subject}"'
    for _ in range(300):
        for node in cluster.nodes:
            line = next((x for x in node.log_path.read_text(errors="replace").splitlines() if needle in x), None)
            if line is not None:
                return line
        await asyncio.sleep(0.05)
    raise AssertionError(f"no violation for {subject}:\n" + "\n".join(n.log_tail(10) for n in cluster.nodes))


async def _delivered(bus: NatsBus, partition: int, subject: str) -> bytes:
    """The payload of ``subject`` as the partition's consumer on ``$MQTT_msgs`` delivers it (the workers' read path).

    ``$MQTT_msgs`` keeps a message only while a consumer is interested in it: the consumer must exist before the
    publish.
    """
    sub = await bus.js.pull_subscribe_bind(durable=f"{consumer_prefix(partition)}0", stream=MQTT_STREAM)
    try:
        for _ in range(60):
            with contextlib.suppress(TimeoutError):
                for m in await sub.fetch(batch=10, timeout=0.5):
                    await m.ack()
                    if m.subject == subject:
                        return bytes(m.data)
    finally:
        await sub.unsubscribe()
    raise AssertionError(f"{subject} never delivered from {MQTT_STREAM}")


async def test_the_bridge_user_carries_its_homes_uplinks_and_commands_and_nothing_else(tmp_path: Path) -> None:
    """On a cluster with accounts and TLS, the edge bridge logs in as its own user (not the workers'), checks the
    nodes' certificate (``bridge_cafile``), carries its two homes' uplinks in and their commands out, and its
    credentials open no NATS connection, read nothing but its homes' commands and write nothing but their uplinks."""
    sites = [f"b{uuid.uuid4().hex[:8]}" for _ in range(3)]
    a, b, other = sites  # the edge broker serves a and b; `other` is a home connected elsewhere
    partitions = 8
    tls = issue(tmp_path / "certs", "nats", hosts=["127.0.0.1", "localhost"], peer=True)
    auth = NatsAuth(
        sites=tuple(sites),
        gateway_secret="test-gateway-secret-0123",
        worker_user="eldercare-worker",
        worker_password="test-worker-password",
        route_password="test-route-password",
        partitions=partitions,
        bcrypt_cost=4,
        bridge_user=BRIDGE_USER,
        bridge_password=BRIDGE_PASSWORD,
        bridge_sites=(a, b),
    )
    settings = Settings(
        _env_file=None,
        nats_bridge_user=BRIDGE_USER,
        nats_bridge_password=SecretStr(BRIDGE_PASSWORD),
        nats_ca=str(tls.ca),
    )
    with NatsCluster(data_dir=tmp_path / "nats", partitions=partitions, auth=auth, tls=tls) as cluster:
        bridge = nats_bridge(settings, addresses=[f"127.0.0.1:{p}" for p in cluster.mqtt_ports], sites=(a, b))
        edge = Broker(data_dir=tmp_path / "edge", secret=secrets.token_urlsafe(32), bridge=bridge)
        edge.start()
        worker = NatsBus(
            servers=cluster.urls,
            name="test-worker",
            user="eldercare-worker",
            password="test-worker-password",
            tls_ca=str(tls.ca),
        )
        try:
            edge.provision([a, b])
            node = await asyncio.to_thread(wait_bridged, cluster, bridge)  # one command subscription per home
            conns = node.monitor("/connz?limit=4096")["connections"]
            assert isinstance(conns, list)
            (conn,) = [c for c in conns if c.get("mqtt_client") == bridge.client_id]
            assert conn["tls_version"] in ("1.2", "1.3")  # over TLS, the node's certificate checked (bridge_cafile)
            async with worker as bus:
                await _carries_uplinks_and_commands(cluster, edge, bus, a, b)
                await _refuses_everything_else(cluster, tls.ca, bus, a, other)
        finally:
            edge.stop()
    conf = edge.server.conf_path.read_text()
    assert f"bridge_cafile {tls.ca}" in conf


async def _carries_uplinks_and_commands(cluster: NatsCluster, edge: Broker, bus: NatsBus, a: str, b: str) -> None:
    got: dict[str, list[tuple[str, bytes]]] = {a: [], b: []}
    events = {a: threading.Event(), b: threading.Event()}
    gws = {}
    for site in (a, b):
        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=MQTTProtocolVersion.MQTTv311)
        gw.username_pw_set(site, edge.gateway_password(site))
        gw.on_message = lambda _c, s, msg: (got[s].append((msg.topic, msg.payload)), events[s].set())
        gw.user_data_set(site)
        gw.connect(edge.host, edge.port)
        gw.loop_start()
        subscribed = threading.Event()
        gw.on_subscribe = lambda *_a, ev=subscribed: ev.set()
        gw.subscribe(f"ec/v1/{site}/+/+/cmd", qos=1)
        assert await asyncio.to_thread(subscribed.wait, 10)
        gws[site] = gw
    for p in {partition_of(site, cluster.partitions) for site in (a, b)}:
        await bus.js.add_consumer(MQTT_STREAM, partition_consumer_config(p, 0, start_seq=None))
    try:
        now = int(time.time() * 1000)
        for site in (a, b):
            reading = encode_mattress_telemetry(site=site, device="mat1", seq=1, ts=now, occupied=True, hr=60)
            await asyncio.to_thread(
                lambda r=reading, s=site: gws[s].publish(r.topic, r.payload, qos=1).wait_for_publish(10)
            )
            p = partition_of(site, cluster.partitions)
            stored = await _delivered(bus, p, f"$MQTT.msgs.part.{p}.ec.v1.{site}.mattress.mat1.telemetry")
            assert stored == reading.payload
        # The workers' downlink (a core NATS publish, as `stored` confirmations go) reaches each home's gateway.
        for site in (a, b):
            await bus.nc.publish(f"ec.v1.{site}.gateway.gw-{site}.cmd", b'{"cmd":"stored","to":"%s"}' % site.encode())
        for site in (a, b):
            assert await asyncio.to_thread(events[site].wait, 30)
            topic = f"ec/v1/{site}/gateway/gw-{site}/cmd"
            assert got[site] == [(topic, b'{"cmd":"stored","to":"%s"}' % site.encode())]
    finally:
        for gw in gws.values():
            gw.disconnect()
            gw.loop_stop()


async def _refuses_everything_else(cluster: NatsCluster, ca: Path, bus: NatsBus, a: str, other: str) -> None:
    # No plain NATS connection at all: the server answers with an authorization error.
    with pytest.raises(NatsError, match="[Aa]uthorization"):
        await nats.connect(
            servers=cluster.urls[:1],
            user=BRIDGE_USER,
            password=BRIDGE_PASSWORD,
            tls=ssl.create_default_context(cafile=str(ca)),
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    leases = await bus.leases(owner="w1", lease_s=30, replicas=3)
    lease = await leases.acquire(3)
    assert lease is not None
    with _probe(cluster.mqtt_ports[1], ca) as probe:
        assert await probe.subscribe(f"ec/v1/{a}/+/+/cmd") == 1  # what it is for
        refused = {
            f: await probe.subscribe(f)
            for f in [
                "#",
                "ec/v1/+/+/+/cmd",
                f"ec/v1/{other}/+/+/cmd",
                f"ec/v1/{a}/+/+/telemetry",
                f"part/{partition_of(a, cluster.partitions)}/#",
                "$JS/API/#",
                f"$KV/{OWNERS_BUCKET}/#",
                "$MQTT/sub/#",
                "$SYS/#",
            ]
        }
        assert refused == dict.fromkeys(refused, 128)
        p_other = partition_of(other, cluster.partitions)
        p_a = partition_of(a, cluster.partitions)
        wrong_p = next(p for p in range(cluster.partitions) if p != p_a)
        hostile = {
            f"$JS/API/STREAM/DELETE/{MQTT_STREAM}": f"$JS.API.STREAM.DELETE.{MQTT_STREAM}",
            f"$KV/{OWNERS_BUCKET}/p3": f"$KV.{OWNERS_BUCKET}.p3",
            f"ec/v1/{other}/door/d1/event": f"part.{p_other}.ec.v1.{other}.door.d1.event",  # another home's uplink
            f"part/{wrong_p}/ec/v1/{a}/door/d1/event": f"part.{wrong_p}.ec.v1.{a}.door.d1.event",  # wrong partition
            f"ec/v1/{a}/gateway/gw-{a}/cmd": f"ec.v1.{a}.gateway.gw-{a}.cmd",  # commands only come in
            "$SYS/REQ/SERVER/PING": "$SYS.REQ.SERVER.PING",
        }
        for topic, subject in hostile.items():
            await probe.publish(topic, b"hostile")
            await _violation(cluster, subject)
    await leases.renew(lease)  # a compare-and-set on our revision: passes only if nobody else wrote the key
    assert await leases.holder(3) == ("w1", lease.revision)
    await bus.js.stream_info(MQTT_STREAM)  # raises NotFoundError if deleted


def test_the_bridge_is_built_from_settings_with_its_own_user_and_the_nodes_ca(tmp_path: Path) -> None:
    """ELDERCARE_NATS_BRIDGE_USER / _PASSWORD and ELDERCARE_NATS_CA reach mosquitto.conf; one command subscription
    per home (its user may read no other), and more homes than a NATS session's QoS 1 subscriptions are refused."""
    settings = Settings(
        _env_file=None,
        nats_bridge_user="edge-1",
        nats_bridge_password=SecretStr("a-bridge-password-0123"),
        nats_ca="/etc/nats/ca.crt",
    )
    assert "a-bridge-password-0123" not in repr(settings)
    bridge = nats_bridge(settings, addresses=["nats1.example.org:1883"], sites=["h0002", "h0001"])
    server = Mosquitto(data_dir=tmp_path, passwd="", acl="", bridge=bridge)
    server.prepare()
    lines = server.conf_path.read_text().splitlines()
    assert "remote_username edge-1" in lines and "remote_password a-bridge-password-0123" in lines
    assert "bridge_cafile /etc/nats/ca.crt" in lines and "bridge_insecure true" not in lines
    assert [x for x in lines if x.endswith(" in 1 ec/v1/ ec/v1/")] == [
        "topic h0001/+/+/cmd in 1 ec/v1/ ec/v1/",
        "topic h0002/+/+/cmd in 1 ec/v1/ ec/v1/",
    ]
    assert server.conf_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="at most 65 homes"):
        nats_bridge(settings, addresses=["nats1.example.org:1883"], sites=[f"h{i:04d}" for i in range(66)])
    with pytest.raises(ValueError, match="ELDERCARE_NATS_BRIDGE_PASSWORD"):
        Settings(_env_file=None, nats_bridge_user="edge-1")
    # Without a bridge user (a cluster without accounts): one subscription for every home, no TLS.
    open_bridge = nats_bridge(Settings(_env_file=None), addresses=["127.0.0.1:1883"], sites=["h0001"])
    assert open_bridge.lines()[-1] == "topic +/+/+/cmd in 1 ec/v1/ ec/v1/"
    assert not any(x.startswith(("bridge_cafile", "remote_username")) for x in open_bridge.lines())


@pytest.mark.scale  # ~30 s: 66 R3 JetStream consumers
def test_one_nats_mqtt_session_holds_as_many_command_subscriptions_as_a_bridge_may_have(cluster8: NatsCluster) -> None:
    """The bound :class:`NatsBridge` enforces is the server's: the 65th QoS 1 subscription of one session is granted,
    the 66th refused (SUBACK 0x80; mosquitto's bridge would ignore that and the home's commands would go nowhere)."""
    most = MQTT_SESSION_ACK_PENDING // MQTT_MAX_ACK_PENDING
    subacks: dict[int, int] = {}
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="many-homes", protocol=MQTTProtocolVersion.MQTTv311, clean_session=False
    )
    c.on_subscribe = lambda _c, _u, mid, rcs, _p: subacks.__setitem__(mid, rcs[0].value)
    c.connect("127.0.0.1", cluster8.mqtt_ports[0])
    c.loop_start()
    try:
        mids = [c.subscribe(f"ec/v1/h{i:04d}/+/+/cmd", qos=1)[1] for i in range(most + 1)]
        deadline = time.monotonic() + 240
        while len(subacks) < len(mids):
            assert time.monotonic() < deadline, f"{len(mids) - len(subacks)} SUBACKs missing"
            time.sleep(0.1)
    finally:
        c.disconnect()
        c.loop_stop()
    assert [subacks[m] for m in mids] == [1] * most + [128]
