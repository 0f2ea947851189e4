"""A hostile gateway on the real secured 3-node cluster: what its NATS account lets it do (docs/scale-out.md).

Each gateway's NATS user is its site id, with the same HMAC-derived password as its mosquitto account. These tests
connect as one gateway and try what a compromised gateway would: publish as another home, read what is not its
own, touch JetStream (leases, snapshots), take over another gateway's MQTT session, send oversize and retained
messages. Every refusal is asserted after a positive signal (a PUBACK, a SUBACK, a later message arriving).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from scale_helpers import TlsClient, Worker, worker_env
from support.backend import registry_for
from typer.testing import CliRunner

from alerts.store.repository import AlertStore
from detection.models import AlertType
from eldercare.certs import TlsFiles, issue
from eldercare.cli import app
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster, _mqtt_connect
from eldercare.servers.postgres import Postgres
from firmware_sim.wire import encode_call_button_event, encode_mattress_telemetry
from gateway.provisioning import gateway_password
from ingest.influx import InfluxClient
from ingest.nats_auth import NatsAuth
from ingest.nats_bus import (
    MQTT_STREAM,
    RETAINED_STREAM,
    NatsBus,
    consumer_prefix,
    partition_consumer_config,
)
from ingest.partitions import partition_of

pytestmark = pytest.mark.integration

SECRET = "test-gateway-secret-0123"
WORKER_USER, WORKER_PASSWORD = "eldercare-worker", "test-worker-password"


def _sites(n: int) -> list[str]:
    """``n`` site ids in ``n`` different partitions."""
    out: list[str] = []
    while len(out) < n:
        site = f"home-{uuid.uuid4().hex[:6]}"
        if partition_of(site) not in {partition_of(s) for s in out}:
            out.append(site)
    return out


@dataclass
class Secured:
    """The production shape: accounts, and TLS on every listener (clients, MQTT, routes)."""

    cluster: NatsCluster
    sites: list[str]
    tls: TlsFiles

    def worker(self) -> NatsBus:
        return NatsBus(
            servers=self.cluster.urls,
            name="test-worker",
            user=WORKER_USER,
            password=WORKER_PASSWORD,
            tls_ca=str(self.tls.ca),
        )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    sites = _sites(4)
    tls = issue(tmp_path_factory.mktemp("nats-certs"), "nats", hosts=["127.0.0.1", "localhost"], peer=True)
    auth = NatsAuth(
        sites=tuple(sites),
        gateway_secret=SECRET,
        worker_user=WORKER_USER,
        worker_password=WORKER_PASSWORD,
        route_password="test-route-password",
        bcrypt_cost=4,  # the minimum: the test's cost, not the server's; production uses BCRYPT_COST
    )
    cluster = NatsCluster(data_dir=tmp_path_factory.mktemp("nats-secured"), auth=auth, tls=tls)
    cluster.start()
    try:
        yield Secured(cluster, sites, tls)
    finally:
        cluster.stop()


def _gateway(site: str, port: int, ca: Path, *, client_id: str = "", password: str = "") -> TlsClient:
    """One gateway's MQTT connection (persistent session, no reconnect), as ``site`` with its own password unless
    told otherwise."""
    return TlsClient(
        port,
        ca,
        client_id=client_id or site,
        username=site,
        password=password or gateway_password(SECRET, site),
        clean_session=False,
        reconnect_on_failure=False,
        ack_wait_s=6.0,
    )


@pytest.fixture
async def worker(secured: Secured) -> AsyncIterator[NatsBus]:
    """The workers' account, with the stream capped and consumers for the test homes' partitions only.

    ``ensure_partition_consumers(64)`` takes ~25 s of R3 consumer creation on the shared box; four do here.
    """
    async with secured.worker() as bus:
        await bus.ensure_partition_consumers(0)  # the message-size cap
        names = {i.name for i in await bus.js.consumers_info(MQTT_STREAM)}
        for p in {partition_of(s) for s in secured.sites}:
            if not any(n.startswith(consumer_prefix(p)) for n in names):
                await bus.js.add_consumer(MQTT_STREAM, partition_consumer_config(p, 0, start_seq=None))
        yield bus


async def _read_until(bus: NatsBus, site: str, needle: str) -> list[str]:
    """The device topics a partition's consumer delivers (acknowledged) up to and including one containing ``needle``.

    This is the worker's own read path: the durable per-partition consumer on ``$MQTT_msgs``.
    """
    p = partition_of(site)
    infos = [i for i in await bus.js.consumers_info(MQTT_STREAM) if i.name.startswith(consumer_prefix(p))]
    sub = await bus.js.pull_subscribe_bind(durable=infos[0].name, stream=MQTT_STREAM)
    seen: list[str] = []
    try:
        for _ in range(100):
            try:
                msgs = await sub.fetch(batch=100, timeout=0.5)
            except TimeoutError:
                continue
            for m in msgs:
                await m.ack()
                seen.append(m.subject)
            if any(needle in s for s in seen):
                return seen
    finally:
        await sub.unsubscribe()
    raise AssertionError(f"{needle} never reached partition {p}: {seen}")


def _closed_without_answer(port: int, hello: bytes) -> bytes:
    """Send ``hello`` in plain text and read until the server closes the connection; what it sent before that."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(hello)
        while chunk := sock.recv(4096):
            got += chunk
    return got


async def test_every_listener_speaks_tls_only(secured: Secured) -> None:
    """Passwords never cross the network in clear: a plain MQTT CONNECT gets no CONNACK (the server closes), a plain
    NATS CONNECT gets no PONG, a client that does not trust the CA is refused, and the routes between the nodes
    (which formed the cluster this fixture waited for) run over TLS."""
    node = secured.cluster.nodes[0]
    a = secured.sites[0]
    mqtt_plain = await asyncio.to_thread(
        _closed_without_answer, node.mqtt_port, _mqtt_connect(a, a, gateway_password(SECRET, a))
    )
    assert not mqtt_plain.startswith(b"\x20")  # no CONNACK, and the connection was closed (EOF)
    nats_plain = await asyncio.to_thread(
        _closed_without_answer, node.port, b'CONNECT {"user":"eldercare-worker","pass":"x","verbose":false}\r\nPING\r\n'
    )
    assert b'"tls_required":true' in nats_plain and b"PONG" not in nats_plain
    with pytest.raises(ssl.SSLCertVerificationError):
        await nats.connect(
            servers=[node.url],
            user=WORKER_USER,
            password=WORKER_PASSWORD,
            tls=ssl.create_default_context(),  # the system's CAs: the nodes' local CA is not among them
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    varz = node.monitor("/varz")
    cluster = varz["cluster"]
    assert varz["tls_required"] is True and isinstance(cluster, dict) and cluster["tls_required"] is True
    routes = node.monitor("/routez")["routes"]
    assert isinstance(routes, list) and len(routes) == 2
    async with secured.worker() as bus:  # and the right CA is enough
        await bus.js.stream_info(MQTT_STREAM)


async def test_a_gateway_publishes_only_its_own_homes_readings_into_its_own_partition(
    secured: Secured, worker: NatsBus
) -> None:
    """Home A's gateway writes as home B and into B's partition: refused; its own reading arrives and is counted."""
    a, b = secured.sites[:2]
    dev = f"d{uuid.uuid4().hex[:6]}"
    port = secured.cluster.mqtt_ports[1]
    with _gateway(a, port, secured.tls.ca) as gw_a, _gateway(b, port, secured.tls.ca) as gw_b:
        await gw_a.publish(f"ec/v1/{b}/door/{dev}x/event", b'{"event":"open","seq":1}')  # as home B
        await gw_a.publish(f"part/{partition_of(b)}/ec/v1/{a}/door/{dev}y/event", b'{"event":"open","seq":1}')
        await gw_a.publish(f"ec/v1/{a}/door/{dev}/event", b'{"event":"open","seq":1}')
        await gw_b.publish(f"ec/v1/{b}/door/{dev}-b/event", b'{"event":"open","seq":1}')
    own = await _read_until(worker, a, f".{a}.door.{dev}.event")
    assert [s for s in own if dev in s] == [f"$MQTT.msgs.part.{partition_of(a)}.ec.v1.{a}.door.{dev}.event"]
    # B's partition got B's own reading (published after A's two attempts were PUBACKed), and nothing of A's.
    theirs = await _read_until(worker, b, f"{dev}-b")
    assert [s for s in theirs if dev in s] == [f"$MQTT.msgs.part.{partition_of(b)}.ec.v1.{b}.door.{dev}-b.event"]


async def test_a_gateway_subscribes_only_to_its_own_downlink(secured: Secured) -> None:
    a, b = secured.sites[:2]
    with _gateway(a, secured.cluster.mqtt_ports[0], secured.tls.ca) as gw:
        assert await gw.subscribe(f"ec/v1/{a}/call_button/btn1/cmd") == 1
        assert await gw.subscribe(f"ec/v1/{a}/+/+/cmd") == 1
        refused = {
            f: await gw.subscribe(f)
            for f in [
                "#",
                f"ec/v1/{b}/#",
                f"ec/v1/{b}/+/+/cmd",
                "ec/v1/+/+/+/event",
                f"ec/v1/{a}/+/+/event",  # not even its own uplink back
                "$share/grp/ec/v1/#",
                f"$share/grp/ec/v1/{b}/+/+/cmd",
                "$SYS/#",
                "$MQTT/#",
                "$MQTT/sub/#",
                "$JS/#",
                "$KV/#",
                "$O/#",
                "part/#",
            ]
        }
        assert refused == dict.fromkeys(refused, 128)
        assert not gw.dropped.is_set()


async def test_a_z2m_bridge_writes_only_its_own_homes_topics_and_reads_only_its_own(
    secured: Secured, worker: NatsBus
) -> None:
    """A Zigbee2MQTT home on its gateway account (base_topic ``z2m/{site}``, Z2M's Last Will): it may subscribe to
    its own ``z2m/{site}/#`` (what Z2M subscribes to) and nothing of another home; its uplinks land in its own
    partition; as another home, or into another home's partition, they are refused; its Will arrives."""
    a, b = secured.sites[:2]
    dev = f"d{uuid.uuid4().hex[:6]}"
    port = secured.cluster.mqtt_ports[2]
    gw_a = _gateway(a, port, secured.tls.ca)
    gw_a.client.will_set(f"z2m/{a}/bridge/state", b'{"state":"offline"}', qos=1, retain=True)
    with gw_a, _gateway(b, port, secured.tls.ca) as gw_b:
        assert gw_a.rc == 0
        assert await gw_a.subscribe(f"z2m/{a}/#") == 1
        refused = {f: await gw_a.subscribe(f) for f in [f"z2m/{b}/#", "z2m/#", "z2m/+/bridge/devices", "part/#"]}
        assert refused == dict.fromkeys(refused, 128)
        await gw_a.publish(f"z2m/{b}/{dev}x", b'{"action":"emergency"}')  # as home B
        await gw_a.publish(f"z2m/{b}/bridge/devices", b"[]", retain=True)
        await gw_a.publish(f"part/{partition_of(b)}/z2m/{a}/{dev}y", b'{"action":"emergency"}')  # into B's
        await gw_a.publish(f"z2m/{a}/bridge/state", b'{"state":"online"}', retain=True)
        await gw_a.publish(f"z2m/{a}/{dev}", b'{"contact":true}')
        await gw_a.publish(f"z2m/{a}/{dev}/availability", b'{"state":"online"}')
        await gw_b.publish(f"z2m/{b}/{dev}-b", b'{"contact":true}')
        own = await _read_until(worker, a, f".{a}.{dev}.availability")
        pa = partition_of(a)
        assert [s for s in own if a in s and ("bridge" in s or dev in s)] == [
            f"$MQTT.msgs.part.{pa}.z2m.{a}.bridge.state",
            f"$MQTT.msgs.part.{pa}.z2m.{a}.{dev}",
            f"$MQTT.msgs.part.{pa}.z2m.{a}.{dev}.availability",
        ]
        theirs = await _read_until(worker, b, f"{dev}-b")
        assert [s for s in theirs if dev in s or "bridge" in s] == [
            f"$MQTT.msgs.part.{partition_of(b)}.z2m.{b}.{dev}-b"
        ]
        # A friendly name with a space: nats-server closes the connection, and publishes Z2M's Will.
        gw_a.client.publish(f"z2m/{a}/bedroom button", b"{}", qos=1)
        assert await asyncio.to_thread(gw_a.dropped.wait, 15)
    will = await _read_until(worker, a, f"z2m.{a}.bridge.state")
    assert [s for s in will if a in s] == [f"$MQTT.msgs.part.{pa}.z2m.{a}.bridge.state"]


async def test_gateway_credentials_open_no_nats_connection_and_touch_no_lease(
    secured: Secured, worker: NatsBus
) -> None:
    """A plain NATS connection with a gateway's MQTT credentials is refused; its MQTT writes to KV subjects vanish."""
    a = secured.sites[0]
    with pytest.raises(NatsError, match="[Aa]uthorization"):
        await nats.connect(
            servers=secured.cluster.urls[:1],
            user=a,
            password=gateway_password(SECRET, a),
            tls=ssl.create_default_context(cafile=str(secured.tls.ca)),  # refused for the account, not for TLS
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    bucket = f"owners-{uuid.uuid4().hex[:6]}"
    leases = await worker.leases(owner="w1", bucket=bucket, lease_s=30, replicas=3)
    lease = await leases.acquire(3)
    assert lease is not None
    prefix = consumer_prefix(partition_of(a))
    consumer = next(i.name for i in await worker.js.consumers_info(MQTT_STREAM) if i.name.startswith(prefix))
    snap_bucket = f"snaps-{uuid.uuid4().hex[:6]}"
    snaps = await worker.snapshots(bucket=snap_bucket, replicas=3)
    await snaps.save(lease, b"state")
    saved_under = lease.revision
    with _gateway(a, secured.cluster.mqtt_ports[2], secured.tls.ca) as gw:
        await gw.publish(f"$KV/{bucket}/p3", b"hostile")  # steal the lease
        await gw.publish(f"$KV/{snap_bucket}-heads/snap/p3", b"p3-e999999")  # point at a forged snapshot
        await gw.publish(f"$JS/API/STREAM/DELETE/{MQTT_STREAM}", b"")
        await gw.publish(f"$JS/API/CONSUMER/DELETE/{MQTT_STREAM}/{consumer}", b"")
    await leases.renew(lease)  # a compare-and-set on the revision we wrote: it passes only if nobody else wrote
    assert await leases.holder(3) == ("w1", lease.revision)
    assert await snaps.load(3) == (b"state", f"owner=w1 epoch={saved_under}")
    await worker.js.stream_info(MQTT_STREAM)  # raise NotFoundError if deleted
    await worker.js.consumer_info(MQTT_STREAM, consumer)


async def test_a_gateway_taking_another_gateways_client_id_is_seen_and_gets_nothing(secured: Secured) -> None:
    """NATS 2.9 cannot bind an MQTT client id to a user (mosquitto's use_username_as_clientid): B connecting with
    A's client id replaces A's connection. What limits the damage: A's restored subscription is checked against
    B's permissions (B receives none of A's downlink), and the monitoring lists the foreign client id."""
    a, b = secured.sites[:2]
    port = secured.cluster.mqtt_ports[0]
    with _gateway(a, port, secured.tls.ca) as victim:
        assert await victim.subscribe(f"ec/v1/{a}/+/+/cmd") == 1
        with _gateway(b, port, secured.tls.ca, client_id=a) as thief:
            assert thief.rc == 0  # the residual risk: accepted
            assert await asyncio.to_thread(victim.dropped.wait, 15)  # and the victim is thrown out
            assert secured.cluster.nodes[0].foreign_mqtt_clients() == [(b, a)]
            monitors = [f"http://127.0.0.1:{n.http_port}" for n in secured.cluster.nodes]
            result = CliRunner().invoke(app, ["nats-sessions", *(f"--monitor={m}" for m in monitors)])
            assert result.exit_code == 1 and f"user {b} uses client id {a}" in result.output, result.output
    # Gone with the intruder (the server closes its connection on DISCONNECT): the check is clean again.
    for _ in range(100):
        if not secured.cluster.nodes[0].foreign_mqtt_clients():
            break
        await asyncio.sleep(0.1)
    result = CliRunner().invoke(
        app, ["nats-sessions", f"--monitor=http://127.0.0.1:{secured.cluster.nodes[0].http_port}"]
    )
    assert result.exit_code == 0, result.output


async def test_an_oversize_message_is_dropped_and_a_retained_press_is_consumed_once(
    secured: Secured, worker: NatsBus
) -> None:
    """Over ``max_payload`` nothing reaches the partition; a retained SOS press is delivered once, not again after
    a restart: workers read the partition's JetStream consumer from its ack floor, never MQTT retained messages."""
    a = secured.sites[2]
    dev = f"d{uuid.uuid4().hex[:6]}"
    with _gateway(a, secured.cluster.mqtt_ports[1], secured.tls.ca) as gw:
        big = gw.client.publish(f"ec/v1/{a}/door/{dev}-big/event", b"x" * 70_000, qos=1)
        assert await asyncio.to_thread(gw.dropped.wait, 15)  # refused: the connection is closed
        assert big.mid not in gw.acked  # and never PUBACKed (the gateway keeps it to retry, or logs it)
    with _gateway(a, secured.cluster.mqtt_ports[1], secured.tls.ca) as gw:
        await gw.publish(f"ec/v1/{a}/call_button/{dev}/event", b'{"event":"press","seq":1}', retain=True)
        await gw.publish(f"ec/v1/{a}/door/{dev}-m1/event", b'{"event":"open","seq":1}')
        first = await _read_until(worker, a, f"{dev}-m1")
        assert [s.rsplit(".", 2)[1] for s in first if dev in s] == [f"{dev}", f"{dev}-m1"]
        # A worker restart: the next owner's consumer starts after the acknowledged press.
        leases = await worker.leases(owner="w2", bucket=f"owners-{uuid.uuid4().hex[:6]}", lease_s=30, replicas=3)
        lease = await leases.acquire(partition_of(a))
        assert lease is not None
        await worker.take_over_consumer(lease)
        await gw.publish(f"ec/v1/{a}/door/{dev}-m2/event", b'{"event":"open","seq":2}')
    again = await _read_until(worker, a, f"{dev}-m2")
    assert [s.rsplit(".", 2)[1] for s in again if dev in s] == [f"{dev}-m2"]


@pytest.mark.scale  # 22-52 s: the worker creates all 64 partitions' R3 consumers on joining
async def test_a_worker_with_its_own_account_ingests_alerts_and_snapshots_on_the_secured_cluster(
    secured: Secured, influxd: Influxd, postgres_server: Postgres, unique_db: str, tmp_path: Path
) -> None:
    """The worker's permissions are enough for all of its work: consumers, acks, leases, heartbeats, snapshots, and
    the downlink (a gateway gets its ``stored`` confirmation)."""
    homes = secured.sites[:2]
    docs = [registry_for(h) for h in homes]
    for d in docs[1:]:
        docs[0]["sites"] += d["sites"]
    for i, site in enumerate(docs[0]["sites"]):
        for r in site["residents"]:
            r["id"] = f"R{i}-{r['id']}"  # one resident id per home
    (tmp_path / "registry.json").write_text(json.dumps(docs[0], ensure_ascii=False))
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    db_url = postgres_server.create_database(db_name)
    AlertStore(url=db_url).close()
    env = worker_env(
        secured.cluster,
        influxd,
        unique_db,
        nats_user=WORKER_USER,
        nats_password=WORKER_PASSWORD,
        nats_ca=secured.tls.ca,
        snapshot_s=1,
        database_url=db_url,
        registry=tmp_path / "registry.json",
    )
    worker = Worker("w1", env, tmp_path)
    worker.start()
    influx = InfluxClient(url=influxd.url, db=unique_db)
    store = AlertStore(url=db_url)
    try:
        worker.wait_ready()
        now = time.time_ns() // 1_000_000
        confirmed: list[bytes] = []
        for home in homes:
            with _gateway(home, secured.cluster.mqtt_ports[0], secured.tls.ca) as gw:
                assert await gw.subscribe(f"ec/v1/{home}/+/+/cmd") == 1
                for i in range(20):
                    m = encode_mattress_telemetry(
                        site=home, device="mat1", seq=i + 1, ts=now - 30_000 + i * 1000, occupied=True, hr=60
                    )
                    await gw.publish(m.topic, m.payload)
                press = encode_call_button_event(site=home, device="btn1", seq=1, ts=now, event="press")
                await gw.publish(press.topic, press.payload)
                for _ in range(300):  # the worker's downlink: stored confirmations on the gateway's command topic
                    if any(b'"stored"' in p for _, p in gw.received):
                        break
                    await asyncio.sleep(0.05)
                confirmed += [p for t, p in gw.received if t == f"ec/v1/{home}/gateway/gw-{home}/cmd"]
        counts: dict[str, int] = {}
        sos: list[str] = []
        for _ in range(600):
            res = await influx.query('SELECT count("seq") FROM "mattress" GROUP BY "site"')
            counts = {s.tags["site"]: int(s.values[0][1]) for s in res[0].series} if res and res[0].series else {}
            sos = sorted(
                a.site for a in store.list_alerts(limit=100) if a.type in (AlertType.SOS, AlertType.CALL_BUTTON)
            )
            if counts == dict.fromkeys(homes, 20) and len(sos) == len(homes):
                break
            await asyncio.sleep(0.1)
        assert counts == dict.fromkeys(homes, 20)
        assert sos == sorted(homes)
        async with secured.worker() as bus:
            snaps = await bus.snapshots(replicas=3)
            for _ in range(100):
                saved = [await snaps.load(partition_of(h)) for h in homes]
                if all(s is not None and s[1].startswith("owner=w1 ") for s in saved):
                    break
                await asyncio.sleep(0.1)
            assert all(s is not None and s[1].startswith("owner=w1 ") for s in saved), saved
        assert sum(b'"stored"' in p for p in confirmed) >= len(homes), confirmed
        assert "Permissions Violation" not in worker.log.read_text()
    finally:
        worker.stop()
        store.close()
        await influx.drop_database()
        await influx.aclose()
        postgres_server.drop_database(db_name)


async def test_retained_messages_on_ever_new_device_ids_cannot_fill_the_nodes(
    secured: Secured, worker: NatsBus
) -> None:
    """A retained message stays in ``$MQTT_rmsgs`` until its topic gets another: a hostile gateway publishing
    retained messages on new device ids would grow the stream (and each node's disk) for ever. Workers bound it
    on joining (bytes, oldest first, and age); the gateway's own readings keep flowing meanwhile."""
    a = secured.sites[3]
    cap = 32 * 1024
    await worker.ensure_partition_consumers(0, max_retained_bytes=cap)
    before = (await worker.js.stream_info(RETAINED_STREAM)).state
    dev = f"d{uuid.uuid4().hex[:6]}"
    body = b'{"event":"open","seq":1,"pad":"' + b"x" * 1000 + b'"}'
    with _gateway(a, secured.cluster.mqtt_ports[2], secured.tls.ca) as gw:
        for i in range(100):  # 100 KiB of retained messages, each on a topic of its own
            await gw.publish(f"ec/v1/{a}/door/{dev}-{i}/event", body, retain=True)
        await gw.publish(f"ec/v1/{a}/door/{dev}-last/event", b'{"event":"open","seq":1}')
    after = (await worker.js.stream_info(RETAINED_STREAM)).state
    assert after.last_seq >= before.last_seq + 100  # every retained message was stored ...
    assert after.bytes <= cap  # ... and the oldest went: the stream stays within its bound
    seen = await _read_until(worker, a, f"{dev}-last")  # and the home's readings still arrive, in order
    assert [x.rsplit(".", 2)[1] for x in seen if dev in x][-2:] == [f"{dev}-99", f"{dev}-last"]
    cfg = (await worker.js.stream_info(RETAINED_STREAM)).config
    assert cfg.max_age == 24 * 3600
