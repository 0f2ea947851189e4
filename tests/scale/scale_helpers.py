"""Partition-worker processes and MQTT devices of the scale-out tests (one place for every test of tests/scale)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from support.processes import kill_process, stop_process

from detection.config import DetectConfig
from eldercare.partition_worker import READY_LINE
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from ingest.partitions import DEFAULT_PARTITIONS, partition_of

ROOT = Path(__file__).resolve().parents[2]
LINK_SECRET = "test-link-secret-0123456789"


def worker_env(
    cluster: NatsCluster,
    influxd: Influxd,
    influx_db: str,
    *,
    lease_s: float = 5,
    database_url: str | None = None,
    influx_retry_ms: int | None = None,
    snapshot_s: float | None = None,
    registry: Path | None = None,
    detect: DetectConfig | Mapping[str, object] | None = None,
    confirm_interval_ms: int | None = None,
    nats_user: str | None = None,
    nats_password: str | None = None,
    nats_ca: Path | None = None,
) -> dict[str, str]:
    """The environment of ``eldercare worker`` processes on ``cluster``: this process's, plus the worker settings.

    What is left ``None`` is not set (the worker's default applies); ``detect`` goes in as ``ELDERCARE_DETECT``.
    """
    optional = {
        "ELDERCARE_NATS_USER": nats_user,
        "ELDERCARE_NATS_PASSWORD": nats_password,
        "ELDERCARE_NATS_CA": None if nats_ca is None else str(nats_ca),
        "ELDERCARE_PARTITION_SNAPSHOT_S": None if snapshot_s is None else str(snapshot_s),
        "ELDERCARE_INFLUX_RETRY_INTERVAL_MS": None if influx_retry_ms is None else str(influx_retry_ms),
        "ELDERCARE_DATABASE_URL": database_url,
        "ELDERCARE_REGISTRY_PATH": None if registry is None else str(registry),
        "ELDERCARE_MQTT_CONFIRM_INTERVAL_MS": None if confirm_interval_ms is None else str(confirm_interval_ms),
        "ELDERCARE_DETECT": None if detect is None else msgspec.json.encode(detect).decode(),
    }
    return {
        **os.environ,
        "ELDERCARE_NATS_URLS": ",".join(cluster.urls),
        "ELDERCARE_LEASE_S": str(lease_s),
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": influx_db,
        "ELDERCARE_LINK_SECRET": LINK_SECRET,
        **{key: value for key, value in optional.items() if value is not None},
    }


class Worker:
    """One partition worker process, killable."""

    def __init__(self, name: str, env: dict[str, str], data_dir: Path) -> None:
        self.name = name
        self.env = {**env, "ELDERCARE_WORKER_ID": name, "ELDERCARE_DATA_DIR": str(data_dir / name)}
        self.log = data_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eldercare.partition_worker"], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_line(READY_LINE, timeout)

    def wait_consuming(self, site: str, *, partitions: int = DEFAULT_PARTITIONS, timeout: float = 180) -> None:
        """Wait until the worker consumes the partition of ``site`` (its state may still be being restored).

        "Ready" is logged once the worker has joined, before it claims its partitions (64 of them, each with its
        consumer: over a minute on a loaded 2-core machine, where a test that published at "ready" and waited 60 s
        for the home's check-in failed).
        """
        self.wait_line(f"partition {partition_of(site, partitions)}: consuming (", timeout)

    def wait_restored(self, site: str, *, partitions: int = DEFAULT_PARTITIONS, timeout: float = 180) -> None:
        """Wait until the partition of ``site`` has its detection state back (snapshot and InfluxDB's history).

        Readings consumed before then reach the behavioural detectors at that moment; life-safety ones at once.
        """
        self.wait_line(f"partition {partition_of(site, partitions)}: restored from", timeout)

    def wait_line(self, line: str, timeout: float) -> None:
        """Wait until the worker's log holds ``line`` (fails at once if the worker died, with its log's tail)."""
        deadline = time.monotonic() + timeout
        while line not in self.log.read_text():
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        kill_process(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


class Devices:
    """Homes' gateways, one paho QoS 1 connection per cluster node, publishing in a thread."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = []
        for port in ports:
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"gw-{uuid.uuid4().hex[:8]}",
                protocol=MQTTProtocolVersion.MQTTv311,
            )
            c.max_inflight_messages_set(200)
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)
        self.sent = 0
        self.acked = 0
        self._lock = threading.Lock()
        for c in self.clients:
            c.on_publish = self._on_publish

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish at QoS 1 and wait until every message is PUBACKed (paho re-sends after a reconnect)."""
        for i, (topic, payload) in enumerate(messages):
            self.clients[i % len(self.clients)].publish(topic, payload, qos=1)
            self.sent += 1
        deadline = time.monotonic() + 300
        while self.acked < self.sent:
            assert time.monotonic() < deadline, f"{self.sent - self.acked} QoS 1 messages never PUBACKed"
            time.sleep(0.01)

    def _on_publish(self, *_args: object) -> None:
        with self._lock:
            self.acked += 1

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


@dataclass
class TlsClient:
    """One paho MQTT 3.1.1 connection over TLS (checked against ``ca``) to a cluster node's MQTT port, recording what
    the broker answers: the CONNACK's code, SUBACKs, PUBACKs, messages and a drop.

    ``publish`` and ``subscribe`` wait up to ``ack_wait_s`` for their acknowledgement.
    """

    port: int
    ca: Path
    client_id: str
    username: str
    password: str
    clean_session: bool = True
    reconnect_on_failure: bool = True
    ack_wait_s: float = 10.0
    connected: threading.Event = field(default_factory=threading.Event)
    dropped: threading.Event = field(default_factory=threading.Event)
    subacks: dict[int, list[int]] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    rc: int | None = None

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=self.clean_session,
            reconnect_on_failure=self.reconnect_on_failure,
        )
        self.client.username_pw_set(self.username, self.password)
        self.client.tls_set(ca_certs=str(self.ca))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.dropped.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = lambda _c, _u, mid, *_a: self.acked.add(mid)
        self.client.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))

    def _on_connect(self, _c: object, _u: object, _f: object, rc: mqtt.ReasonCode, _p: object) -> None:
        self.rc = rc.value
        self.connected.set()

    def _on_subscribe(self, _c: object, _u: object, mid: int, rcs: list[mqtt.ReasonCode], _p: object) -> None:
        self.subacks[mid] = [r.value for r in rcs]

    def __enter__(self) -> TlsClient:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.connected.wait(15)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK (the broker has processed it; nats-server acknowledges a refused
        publish too)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        for _ in range(self._polls):
            if info.mid in self.acked:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no PUBACK for {topic}")

    async def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; the SUBACK's return code (1 granted, 128 refused)."""
        _, mid = self.client.subscribe(topic, qos=1)
        for _ in range(self._polls):
            if mid in self.subacks:
                return self.subacks[mid][0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no SUBACK for {topic}")

    @property
    def _polls(self) -> int:
        return round(self.ack_wait_s / 0.02)
