"""``eldercare bench scale``: partition workers on a local 3-node NATS JetStream cluster, 1 / 2 / 4 workers.

Per round (a fresh cluster and InfluxDB database each): ``homes`` homes publish ``count`` mattress readings in
total over MQTT QoS 1 to ``workers`` processes of ``python -m eldercare.partition_worker``, through one of two
ingress paths:

- ``mqtt``: straight into the nodes' MQTT listeners, each home on one of three connections (one per node, so a
  home's order is defined);
- ``bridge``: into an edge mosquitto (the project's own config: one account and connection per home gateway, ACLs),
  whose ``connection`` bridge forwards them over one QoS 1 connection into the cluster (:class:`NatsBridge`).

Measured:

- readings/s: ``count / (publishing started → InfluxDB holds all of them)``, and the ratio to 1 worker;
- server CPU per message: user + system CPU of the three nats-server processes (plus mosquitto on the bridged
  path) over the round, per reading;
- order violations: readings that reached detection with a lower ``seq`` than their device's previous one,
  counted by the workers (must be 0);
- lost: readings not in InfluxDB at the end.

With ``secured`` each worker count runs twice, on an open cluster and on one with accounts
(:class:`ingest.nats_auth.NatsAuth`: every home's gateway on its own user with its permissions, the workers on
theirs); both rounds then connect each home on its own MQTT connection, so the only difference is the accounts.
The table adds the secured round's server CPU per reading as a ratio to the open one's.

Everything shares the machine's cores (publishers, three servers, the workers, influxd): the absolute rates are a
floor; server CPU per message is the figure that carries over to a real 3-machine cluster (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.procstat import proc_cpu_s
from eldercare.servers._child import ServerError
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import NatsBridge
from eldercare.servers.nats import NatsCluster, NatsNode
from eldercare.stack import Broker
from gateway.provisioning import gateway_password
from ingest.influx import InfluxClient
from ingest.nats_auth import NatsAuth
from ingest.nats_bus import NatsBus
from ingest.partitions import DEFAULT_PARTITIONS, assignment

ROOT = Path(__file__).resolve().parents[1]
_STOPPED = re.compile(rb"partition worker stopped: (\d+) readings processed, (\d+) order violations")


INGRESS = ("mqtt", "bridge")
"""The ingress paths: devices on the nodes' MQTT listeners, or on an edge mosquitto bridged in."""


@dataclass(frozen=True, slots=True)
class ScaleRow:
    """One round."""

    workers: int
    count: int
    seconds: float
    stored: int
    server_cpu_s: float
    order_violations: int
    ingress: str = "mqtt"
    edge_cpu_s: float = 0.0
    """Of ``server_cpu_s``, the edge mosquitto's share (bridged path only)."""
    secured: bool = False
    """Accounts and permissions on (one MQTT connection and user per home)."""

    @property
    def rate(self) -> float:
        """Readings per second, publish start to all stored."""
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def edge_us_per_msg(self) -> float:
        """The edge mosquitto's CPU per reading, in microseconds (0 on the direct path)."""
        return self.edge_cpu_s / self.count * 1e6 if self.count else 0.0

    @property
    def cpu_us_per_msg(self) -> float:
        """Server CPU (all nodes) per reading, in microseconds."""
        return self.server_cpu_s / self.count * 1e6 if self.count else 0.0


def _publish(
    ports: Sequence[int], homes: Sequence[str], per_home: int, auth: NatsAuth | None = None, *, anonymous: bool = False
) -> None:
    """Publish QoS 1 and wait for every PUBACK.

    With ``auth`` each home has its own connection, as its gateway user unless ``anonymous`` (the open comparison).
    """
    clients = []
    for i, port in enumerate(ports if auth is None else [ports[h % len(ports)] for h in range(len(homes))]):
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{uuid.uuid4().hex[:8]}" if auth is None else homes[i],
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if auth is not None and not anonymous:
            c.username_pw_set(homes[i], gateway_password(auth.gateway_secret, homes[i]))
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    now = time.time_ns() // 1_000_000
    infos = []
    for i in range(per_home):
        for h, home in enumerate(homes):
            payload = b'{"seq":%d,"ts":%d,"occupied":true,"hr":60}' % (i + 1, now - 250_000 + i)
            infos.append(clients[h % len(clients)].publish(f"ec/v1/{home}/mattress/mat1/telemetry", payload, qos=1))
    for info in infos:
        info.wait_for_publish(600)
    for c in clients:
        c.disconnect()
        c.loop_stop()


def bridge_for(cluster: NatsCluster, *, client_id: str = "eldercare-bridge") -> NatsBridge:
    """A bridge into every node of ``cluster`` (its own client id, so several edge brokers can share a cluster)."""
    return NatsBridge(addresses=[f"127.0.0.1:{port}" for port in cluster.mqtt_ports], client_id=client_id)


def bridge_connection(cluster: NatsCluster, bridge: NatsBridge) -> tuple[NatsNode, int] | None:
    """The node holding the bridge's MQTT connection and how many command subscriptions it has there (1 once up)."""
    for node in cluster.nodes:
        if node.proc is None or node.proc.poll() is not None:
            continue
        try:
            conns = node.monitor("/connz?subs=1&limit=4096").get("connections")
        except OSError:
            continue
        for conn in conns if isinstance(conns, list) else []:
            if isinstance(conn, dict) and conn.get("mqtt_client") == bridge.client_id:
                subs = conn.get("subscriptions_list")
                return node, sum(1 for s in subs if str(s).endswith(".cmd")) if isinstance(subs, list) else 0
    return None


def wait_bridged(cluster: NatsCluster, bridge: NatsBridge, *, timeout: float = 180.0) -> NatsNode:
    """Block until the bridge is connected to a node with its command subscriptions in place; return that node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = bridge_connection(cluster, bridge)
        if found is not None and found[1] >= max(1, len(set(bridge.sites))):
            return found[0]
        time.sleep(0.1)
    raise ServerError(f"the bridge {bridge.client_id!r} is not connected with its subscriptions after {timeout} s")


class Gateways:
    """Home gateways on the edge mosquitto: one account and QoS 1 connection per home, as in the field."""

    def __init__(self, broker: Broker, homes: Sequence[str], *, inflight: int = 1000) -> None:
        self.clients: dict[str, mqtt.Client] = {}
        for home in homes:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=home, protocol=MQTTProtocolVersion.MQTTv311)
            c.username_pw_set(home, broker.gateway_password(home))
            c.max_inflight_messages_set(inflight)
            c.max_queued_messages_set(0)
            c.connect(broker.host, broker.port)
            c.loop_start()
            self.clients[home] = c

    def publish(self, messages: Sequence[tuple[str, bytes]], *, timeout: float = 600) -> None:
        """Publish each message on its home's connection and wait until the broker PUBACKed all of them."""
        infos = [self.clients[topic.split("/")[2]].publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout)

    def close(self) -> None:
        """Disconnect every gateway."""
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()


def _readings(homes: Sequence[str], per_home: int) -> list[tuple[str, bytes]]:
    now = time.time_ns() // 1_000_000
    return [
        (
            f"ec/v1/{home}/mattress/mat1/telemetry",
            b'{"seq":%d,"ts":%d,"occupied":true,"hr":60}' % (i + 1, now - 250_000 + i),
        )
        for i in range(per_home)
        for home in homes
    ]


def _publish_bridged(broker: Broker, homes: Sequence[str], per_home: int) -> None:
    gateways = Gateways(broker, homes)
    try:
        gateways.publish(_readings(homes, per_home))
    finally:
        gateways.close()


async def _settled(
    urls: Sequence[str], workers: Sequence[str], *, partitions: int = DEFAULT_PARTITIONS, auth: NatsAuth | None = None
) -> None:
    """Wait until every partition is held by the worker rendezvous hashing prefers (no hand-over in the round)."""
    want = {p: w for w, ps in assignment(partitions, workers).items() for p in ps}
    user, password = (auth.worker_user, auth.worker_password) if auth is not None else ("", "")
    async with NatsBus(servers=urls, name="bench", user=user, password=password) as bus:
        leases = await bus.leases(owner="bench", lease_s=10.0, replicas=3)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            holders = await asyncio.gather(*(leases.holder(p) for p in range(partitions)))
            if all(h is not None and h[0] == want[p] for p, h in enumerate(holders)):
                break
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError("the workers did not settle on their partitions within 180 s")
    await asyncio.sleep(2)  # their engines' rebuild from InfluxDB (empty here) and first fetch


async def _count(influx: InfluxClient, prefix: str) -> int:
    res = await influx.query(f'SELECT count("seq") FROM "mattress" WHERE "site" =~ /^{prefix}/')
    return int(res[0].series[0].values[0][1]) if res and res[0].series else 0


async def _round(
    workers: int,
    *,
    count: int,
    homes: int,
    influxd: Influxd,
    root: Path,
    secured: bool | None = None,
    ingress: str = "mqtt",
) -> ScaleRow:
    """One round.

    ``secured`` None: the open cluster as before; False / True: one connection per home, without / with accounts
    (direct MQTT only: the bridge's own NATS user is tested, tests/scale/test_scale_bridge.py, not benchmarked; it
    carries at most 65 homes' commands). ``ingress`` "bridge": the homes publish to an
    edge mosquitto bridged into the cluster.
    """
    if secured is not None and ingress != "mqtt":
        raise ValueError("accounts are measured on direct MQTT only")
    prefix = f"b{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}h{i:04d}" for i in range(homes)]
    db = f"scale_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=influxd.url, db=db)
    await influx.ensure_storage()
    auth = (
        NatsAuth(
            sites=tuple(names),
            gateway_secret=uuid.uuid4().hex,
            worker_user="eldercare-worker",
            worker_password=uuid.uuid4().hex,
            route_password=uuid.uuid4().hex,
        )
        if secured is not None
        else None
    )
    with (
        NatsCluster(data_dir=root / f"nats-{db}", auth=auth if secured else None) as cluster,
        contextlib.ExitStack() as edge,
    ):
        broker: Broker | None = None
        if ingress == "bridge":
            broker = Broker(data_dir=root / f"mosquitto-{db}", secret=uuid.uuid4().hex, bridge=bridge_for(cluster))
            broker.start()
            edge.callback(broker.stop)
            await asyncio.to_thread(broker.provision, names, timeout=60)
            await asyncio.to_thread(wait_bridged, cluster, bridge_for(cluster))
        env = {
            **os.environ,
            "ELDERCARE_NATS_URLS": ",".join(cluster.urls),
            **(
                {"ELDERCARE_NATS_USER": auth.worker_user, "ELDERCARE_NATS_PASSWORD": auth.worker_password}
                if secured and auth is not None
                else {}
            ),
            "ELDERCARE_INFLUX_URL": influxd.url,
            "ELDERCARE_INFLUX_DB": db,
            "ELDERCARE_LINK_SECRET": uuid.uuid4().hex * 2,  # required by the alert service; no links sent here
        }
        procs, logs = [], []
        for w in range(workers):
            log = root / f"{db}-w{w}.log"
            logs.append(log)
            with log.open("wb") as out:
                wenv = {**env, "ELDERCARE_WORKER_ID": f"w{w}", "ELDERCARE_DATA_DIR": str(root / f"{db}-w{w}")}
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "eldercare.partition_worker"], env=wenv, cwd=ROOT, stdout=out, stderr=out
                    )
                )
        try:
            deadline = time.monotonic() + 120
            while not all(b"partition worker ready" in log.read_bytes() for log in logs):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("worker did not start: " + logs[0].read_text()[-2000:])
                await asyncio.sleep(0.1)
            await _settled(cluster.urls, [f"w{w}" for w in range(workers)], auth=auth if secured else None)
            servers = [*cluster.nodes, *([broker.server] if broker is not None else [])]
            pids = [n.proc.pid for n in servers if n.proc is not None]
            cpu0 = sum(proc_cpu_s(p) for p in pids)
            edge_pid = broker.server.proc.pid if broker is not None and broker.server.proc is not None else None
            edge0 = proc_cpu_s(edge_pid) if edge_pid is not None else 0.0
            start = time.monotonic()
            per_home = max(1, count // homes)
            total = per_home * homes
            # Without accounts (secured False) the per-home connections connect anonymously: same shape, no users.
            publisher = (
                threading.Thread(target=_publish_bridged, args=(broker, names, per_home))
                if broker is not None
                else threading.Thread(
                    target=_publish,
                    args=(cluster.mqtt_ports, names, per_home, auth),
                    kwargs={"anonymous": not secured},
                )
            )
            publisher.start()
            stored = 0
            while stored < total and time.monotonic() - start < 900:
                await asyncio.sleep(0.2)
                stored = await _count(influx, prefix)
            seconds = time.monotonic() - start
            cpu = sum(proc_cpu_s(p) for p in pids) - cpu0
            edge_cpu = proc_cpu_s(edge_pid) - edge0 if edge_pid is not None else 0.0
            await asyncio.to_thread(publisher.join, 600)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(60)
        violations = 0
        for log in logs:
            m = _STOPPED.search(log.read_bytes())
            violations += int(m.group(2)) if m else 0
    with contextlib.suppress(Exception):
        await influx.drop_database()
    await influx.aclose()
    return ScaleRow(workers, total, seconds, stored, cpu, violations, ingress, edge_cpu, secured=bool(secured))


def run_bench_scale(
    *,
    count: int = 20_000,
    homes: int = 200,
    workers: Sequence[int] = (1, 2, 4),
    ingress: Sequence[str] = ("mqtt",),
    secured: bool = False,
) -> list[ScaleRow]:
    """Start influxd, then one round per worker count and ingress path (each with its own 3-node cluster).

    With both paths the rounds alternate per worker count (mqtt, bridge, mqtt, bridge, ...), so a change in the
    machine's load during the run hits both alike. ``secured``: each direct-MQTT round twice, without and with
    accounts (one connection per home in both).
    """
    unknown = set(ingress) - set(INGRESS)
    if unknown or not ingress:
        raise ValueError(f"ingress must be among {INGRESS}, got {list(ingress)}")
    modes: tuple[bool | None, ...] = (False, True) if secured else (None,)
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-scale-") as tmp:
        root = Path(tmp)
        with Influxd(data_dir=root / "influxdb") as influxd:
            return [
                asyncio.run(_round(w, count=count, homes=homes, influxd=influxd, root=root, secured=m, ingress=path))
                for w in workers
                for path in ingress
                for m in (modes if path == "mqtt" else (None,))
            ]


def table(rows: Sequence[ScaleRow]) -> str:
    """Markdown table: each rate against the 1-worker round of its path, and the bridge against direct MQTT.

    With secured rounds, also their server CPU per reading as a ratio to the open round with as many workers.
    """
    base = {r.ingress: r for r in rows if r.workers == 1 and not r.secured}
    direct = {r.workers: r for r in rows if r.ingress == "mqtt" and not r.secured}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    accounts = any(r.secured for r in rows)
    extra = " accounts | CPU vs open |" if accounts else ""
    lines = [
        f"cores: {os.cpu_count()} (shared by publishers, 3 nats-server nodes, mosquitto, workers and influxd); "
        f"load average at the end: {load}",
        "",
        "| ingress | workers | readings | seconds | readings/s | vs 1 worker | vs mqtt | server CPU µs/reading "
        "| of which mosquitto | order violations | lost |" + extra,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---|---:|" if accounts else ""),
    ]
    for r in rows:
        b = base.get(r.ingress)
        vs = f"{r.rate / b.rate:.2f}×" if b and b.rate else ""
        d = direct.get(r.workers)
        vs_mqtt = f"{r.rate / d.rate:.2f}×" if d and d.rate and r.ingress != "mqtt" else ""
        line = (
            f"| {r.ingress} | {r.workers} | {r.count:,} | {r.seconds:.1f} | {r.rate:,.0f} | {vs} | {vs_mqtt} "
            f"| {r.cpu_us_per_msg:,.0f} | {r.edge_us_per_msg:,.0f} | {r.order_violations} | {r.count - r.stored} |"
        )
        if accounts:
            open_row = next((o for o in rows if o.workers == r.workers and not o.secured), None)
            ratio = (
                f"{r.cpu_us_per_msg / open_row.cpu_us_per_msg:.2f}×"
                if open_row is not None and open_row.cpu_us_per_msg
                else ""
            )
            line += f" {'yes' if r.secured else 'no'} | {ratio} |"
        lines.append(line)
    return "\n".join(lines)
