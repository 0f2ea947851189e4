"""``eldercare bench ingest``: readings/s of the MQTT receive path and of the whole pipeline, in one run.

Every stage gets the same live stream: ``count`` valid mattress telemetry messages of one provisioned home,
published at QoS 1 as fast as possible by ``mosquitto_pub -l`` (one process per device), while the stage
under test is subscribed at QoS 1. A rate is ``count / (done - publishing started)``:

a. ``mosquitto_sub`` into /dev/null: the ceiling for one subscriber;
b. count-only subscribers: bare paho (auto-ack), bare gmqtt (asyncio, acks each message) and ours
   (:mod:`gateway.mqtt_wire`, acks each batch);
c. a naive pipeline: paho callback → decode → one HTTP write per reading (auto-ack);
d. ours (``python -m eldercare.pipeline``), done when InfluxDB holds all ``count`` readings, with each receive
   client (``ELDERCARE_MQTT_CLIENT``), one process (the ``$share`` multi-worker rows went with the share-group mode,
   issue 18; scale-out is ``eldercare bench scale``); and draining ``count`` readings the broker queued while the
   pipeline was stopped (timed from the process start: the receive path's own ceiling, not the publishers'), beside
   bare paho and Node-RED draining the same queue into a persistent session of their own (like for like);
e. the peer: Node-RED 4.x's ``mqtt in`` → ``json`` → ``function`` → ``join`` → ``influxdb batch`` flow, done when
   InfluxDB holds all ``count`` readings (:mod:`bench.nodered`; skipped with a one-line reason without node/npm);
f. ours on a Zigbee2MQTT home's door-contact snapshots (:mod:`bench.ingest_z2m`).

The table puts every rate beside mosquitto_sub's, bare paho's, Node-RED's and the naive pipeline's from the same run,
with each storing stage's peak resident memory.

The baselines (b, c) use paho-mqtt and ``http.client`` directly: a deliberate exception to the rule that
only ``gateway/listener.py`` talks MQTT and only ``ingest/influx.py`` talks HTTP, because they measure
what the pipeline is compared with. This module imports nothing from ``eldercare`` (the composition root
starts the servers and passes their addresses in).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from bench.procstat import proc_cpu_s
from eldercare.stack import Broker, local_stack
from ingest.influx import InfluxClient

DEVICES: Final = 4
"""Devices (and publisher processes) of the benchmark home."""


@dataclass(frozen=True, slots=True)
class BenchTarget:
    """Where the benchmark runs: a broker with a provisioned home, and an InfluxDB."""

    mqtt_host: str
    mqtt_port: int
    backend_port: int
    backend_user: str
    backend_password: str
    site: str
    site_password: str
    influx_url: str
    broker_pid: int = 0
    """mosquitto's process id when it runs on this machine (0: unknown), for its CPU time per stage."""
    influxd_pid: int = 0
    """influxd's process id when it runs on this machine (0: unknown)."""

    @classmethod
    def of(cls, broker: Broker, influx_url: str, site: str = "", *, influxd_pid: int = 0) -> BenchTarget:
        """The target of a started broker; ``site`` (provisioned) is the home the stages publish as, if any."""
        proc = broker.server.proc
        return cls(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            backend_port=broker.backend_port,
            backend_user=broker.backend_user,
            backend_password=broker.backend_password,
            site=site,
            site_password=broker.gateway_password(site) if site else "",
            influx_url=influx_url,
            broker_pid=proc.pid if proc is not None else 0,
            influxd_pid=influxd_pid,
        )

    def server_cpu_s(self) -> tuple[float | None, float | None]:
        """CPU seconds so far of mosquitto and of influxd (None where unknown)."""
        return cpu_seconds(self.broker_pid) if self.broker_pid else None, (
            cpu_seconds(self.influxd_pid) if self.influxd_pid else None
        )


@dataclass(slots=True)
class BenchResult:
    """One stage: how many readings, how long, the rate, and whether all arrived."""

    name: str
    count: int
    seconds: float
    received: int
    note: str = ""
    rss_mib: float | None = None
    """Peak resident memory of the stage's process (the largest worker's), MiB."""
    cpu_s: float | None = None
    """CPU time (user + system) the stage's own processes spent, all workers together: less sensitive to a busy
    machine than the rate, since other processes' work is not counted."""
    broker_cpu_s: float | None = None
    """CPU time mosquitto spent while the stage ran (drain rows)."""
    influxd_cpu_s: float | None = None
    """CPU time influxd spent while the stage ran (drain rows)."""

    @property
    def cpu_us_per_reading(self) -> float | None:
        """CPU microseconds per reading."""
        return self.cpu_s / self.count * 1e6 if self.cpu_s is not None and self.count else None

    def per_reading_us(self, cpu_s: float | None) -> str:
        """A CPU time in microseconds per reading, for the table ('' if unknown)."""
        return f"{cpu_s / self.count * 1e6:.1f}" if cpu_s is not None and self.count else ""

    @property
    def rate(self) -> float:
        """Readings per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class BenchReport:
    """All stages of one run."""

    results: list[BenchResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """One line per stage that could not run (printed under the table)."""

    def get(self, name: str) -> BenchResult | None:
        """The result of a stage by name."""
        return next((r for r in self.results if r.name == name), None)

    def table(self) -> str:
        """Markdown table: rates and ratios to mosquitto_sub, bare paho, Node-RED and the naive pipeline."""
        sub, paho, naive = self.get("mosquitto_sub"), self.get("bare paho"), self.get("naive")
        peer = next((r for r in self.results if r.name.startswith("Node-RED")), None)

        def ratio(r: BenchResult, base: BenchResult | None) -> str:
            return f"{r.rate / base.rate:.2f}×" if base and base.rate else ""

        lines = [
            "| stage | readings | seconds | readings/s | vs mosquitto_sub | vs bare paho | vs Node-RED | vs naive "
            "| lost | peak RSS MiB | CPU µs/reading |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            rss = f"{r.rss_mib:.0f}" if r.rss_mib is not None else ""
            cpu = r.cpu_us_per_reading
            lines.append(
                f"| {r.name} | {r.count:,} | {r.seconds:.2f} | {r.rate:,.0f} | {ratio(r, sub)} | {ratio(r, paho)} "
                f"| {ratio(r, peer)} | {ratio(r, naive)} | {max(r.count - r.received, 0)} | {rss} "
                f"| {f'{cpu:.1f}' if cpu is not None else ''} |"
            )
        drains = [r for r in self.results if r.name.endswith("queued (drain incl. start-up)")]
        ceiling = next((r for r in drains if r.name.startswith("mosquitto_sub")), None)
        base = next((r for r in drains if r.name.startswith("bare paho")), None)
        red = next((r for r in drains if r.name.startswith("Node-RED")), None)
        if drains and (base or red):
            lines += [
                "",
                "Drain, like for like (each timed from its process start until the last queued reading is counted"
                " or stored):",
                "",
                "| drain | readings/s | vs mosquitto_sub drain | vs bare paho drain | vs Node-RED drain "
                "| CPU µs/reading: stage | mosquitto | influxd |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {r.name} | {r.rate:,.0f} | {ratio(r, ceiling)} | {ratio(r, base)} | {ratio(r, red)} "
                f"| {r.per_reading_us(r.cpu_s)} | {r.per_reading_us(r.broker_cpu_s)} "
                f"| {r.per_reading_us(r.influxd_cpu_s)} |"
                for r in drains
            ]
        lines += [f"\nskipped: {line}" for line in self.skipped]
        return "\n".join(lines)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process so far; None if unknown."""
    try:
        return proc_cpu_s(pid)
    except (OSError, IndexError):
        return None


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size of a running process (Linux ``VmHWM``), MiB; None if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _messages(site: str, device: str, start: int, count: int, t0: int, step: int) -> list[bytes]:
    enc = msgspec.json.Encoder()
    out = []
    for k in range(count):
        i = start + k * step
        out.append(
            enc.encode(
                {
                    "seq": i + 1,
                    "ts": t0 + i,
                    "occupied": True,
                    "hr": 40.0 + (i * 7) % 600 / 10,
                    "rr": 14.0,
                    "movement": i % 100,
                }
            )
        )
    return out


class Publishers:
    """``mosquitto_pub -l`` processes, one per device, each reading its messages from a file."""

    def __init__(self, target: BenchTarget, *, count: int, workdir: Path) -> None:
        self.target = target
        self.count = count
        self.files: list[tuple[str, Path]] = []
        t0 = time.time_ns() // 1_000_000 - count  # device clocks within the allowed skew, one ms apart
        for d in range(DEVICES):
            device = f"bench{d}"
            path = workdir / f"{device}-{uuid.uuid4().hex[:6]}.txt"
            n = len(range(d, count, DEVICES))
            path.write_bytes(b"\n".join(_messages(target.site, device, d, n, t0, DEVICES)) + b"\n")
            self.files.append((f"ec/v1/{target.site}/mattress/{device}/telemetry", path))

    def run(self) -> float:
        """Start publishing; return the monotonic start time (processes are awaited by :meth:`wait`)."""
        t = self.target
        start = time.monotonic()
        self.procs = [
            subprocess.Popen(
                [
                    "mosquitto_pub",
                    "-h",
                    t.mqtt_host,
                    "-p",
                    str(t.mqtt_port),
                    "-u",
                    t.site,
                    "-P",
                    t.site_password,
                    "-i",
                    f"{t.site}-pub{i}-{uuid.uuid4().hex[:4]}",
                    "-q",
                    "1",
                    "-t",
                    topic,
                    "-l",
                ],
                stdin=path.open("rb"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i, (topic, path) in enumerate(self.files)
        ]
        return start

    def wait(self) -> None:
        """Wait for every publisher to finish."""
        for p in self.procs:
            p.wait(600)


# -- subscriber stages run in their own process ------------------------------------------------------------


def _subscriber(
    mode: str, *, target: BenchTarget, count: int, db: str, client_id: str = "", prime: bool = False
) -> None:
    """Bare paho counter or naive pipeline; prints ``ready`` once subscribed and ``done <monotonic>`` at the end.

    With ``client_id`` the session is persistent (the drain rows): ``prime`` subscribes and leaves at once, so the
    broker queues what is published until the same client id comes back and counts.
    """
    import paho.mqtt.client as mqtt  # deliberate: baseline measurement, see the module docstring
    from paho.mqtt.enums import CallbackAPIVersion

    from gateway.contract import decode_message
    from ingest.schema import PRECISION, to_line

    done = {"n": 0, "last": 0.0}
    conn = http.client.HTTPConnection(target.influx_url.split("//", 1)[1], timeout=10)
    path = f"/write?db={db}&precision={PRECISION}"

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if mode == "naive":
            reading = decode_message(msg.topic, msg.payload, received_ms=time.time_ns() // 1_000_000)
            conn.request("POST", path, body=to_line(reading).encode())
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                raise RuntimeError(f"write failed: {resp.status}")
        done["n"] += 1
        done["last"] = time.monotonic()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"bench-{mode}-{uuid.uuid4().hex[:6]}",
        clean_session=not client_id,
    )
    client.username_pw_set(target.backend_user, target.backend_password)
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    cpu0 = [0.0]
    subscribed = [False]

    def on_subscribe(*_a: Any) -> None:
        if done["n"] == 0 and not client_id:  # a drain counts the CPU of the whole process, start-up included
            cpu0[0] = time.process_time()
        subscribed[0] = True
        print("ready", flush=True)

    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *_a: c.subscribe(f"ec/v1/{target.site}/+/+/telemetry", qos=1)
    client.connect(target.mqtt_host, target.backend_port, keepalive=60)
    if prime:
        while not subscribed[0]:
            client.loop(timeout=0.1)
        client.disconnect()
        return
    while done["n"] < count:
        client.loop(timeout=0.1)
    print(f"done {done['last']:.6f} {done['n']} {time.process_time() - cpu0[0]:.3f}", flush=True)
    client.disconnect()


async def _count_only_async(mode: str, *, target: BenchTarget, count: int) -> None:
    """Count-only subscribers on asyncio: our own client (acks each batch) or gmqtt (acks each message)."""
    topic = f"ec/v1/{target.site}/+/+/telemetry"
    client_id = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    n = 0
    last = 0.0
    cpu0 = 0.0
    if mode == "native":
        from gateway.mqtt_wire import NativeListener

        listener = NativeListener(
            host=target.mqtt_host,
            port=target.backend_port,
            username=target.backend_user,
            password=target.backend_password,
            client_id=client_id,
            subscriptions=(topic,),
        )
        await listener.start()
        await listener.wait_ready()
        cpu0 = time.process_time()
        print("ready", flush=True)
        batches = listener.batches(max_wait_s=0)
        while n < count:
            batch = await anext(batches)
            listener.ack(batch)
            n += len(batch)
            last = time.monotonic()
        await batches.aclose()
        await listener.close(end_session=True)
    else:
        import gmqtt  # type: ignore[import-untyped]  # deliberate: baseline measurement, see the module docstring
        from gmqtt.mqtt.constants import MQTTv311  # type: ignore[import-untyped]

        done = asyncio.Event()
        subscribed = asyncio.Event()

        def on_message(_c: Any, _topic: str, _payload: bytes, _qos: int, _props: Any) -> int:
            nonlocal n, last
            n += 1
            last = time.monotonic()
            if n >= count:
                done.set()
            return 0  # PUBACK: success

        client = gmqtt.Client(client_id)
        client.set_auth_credentials(target.backend_user, target.backend_password)
        client.on_message = on_message
        client.on_subscribe = lambda *_a: subscribed.set()
        await client.connect(target.mqtt_host, target.backend_port, version=MQTTv311)
        client.subscribe(topic, qos=1)
        await subscribed.wait()
        cpu0 = time.process_time()
        print("ready", flush=True)
        await done.wait()
        await client.disconnect()
    print(f"done {last:.6f} {n} {time.process_time() - cpu0:.3f}", flush=True)


async def _subscriber_stage(
    name: str, mode: str, target: BenchTarget, *, count: int, db: str, workdir: Path
) -> BenchResult:
    pubs = Publishers(target, count=count, workdir=workdir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.ingest",
        "--subscriber",
        mode,
        "--count",
        str(count),
        "--db",
        db,
        "--target",
        msgspec.json.encode(target).decode(),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "ready"
    start = await asyncio.to_thread(pubs.run)
    line = (await proc.stdout.readline()).decode().split()
    await proc.wait()
    await asyncio.to_thread(pubs.wait)
    return BenchResult(name, count, float(line[1]) - start, int(line[2]), cpu_s=float(line[3]))


async def _paho_drain_stage(target: BenchTarget, *, count: int, workdir: Path) -> BenchResult:
    """Bare paho draining ``count`` readings queued for its persistent session, timed from its process start.

    The like-for-like baseline of the pipelines' drain rows.
    """
    client_id = f"bench-drain-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "bench.ingest", "--subscriber", "paho", "--count", str(count)]
    command += ["--target", msgspec.json.encode(target).decode(), "--client-id", client_id]
    try:
        prime = await asyncio.create_subprocess_exec(*command, "--prime", stdout=asyncio.subprocess.PIPE)
        await prime.communicate()
        pubs = Publishers(target, count=count, workdir=workdir)
        await asyncio.to_thread(pubs.run)
        await asyncio.to_thread(pubs.wait)
        servers0 = target.server_cpu_s()
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line: list[str] = []
        while line[:1] != ["done"]:  # "ready" may come after the queue (it flows from the CONNACK on), or never
            raw = await proc.stdout.readline()
            if not raw:
                raise RuntimeError("the paho drain subscriber exited without counting the queue")
            line = raw.decode().split()
        servers1 = target.server_cpu_s()
        await proc.wait()
    finally:
        await end_session(target, client_id)
    name = f"bare paho, {count:,} queued (drain incl. start-up)"
    servers = _servers(servers0, servers1)
    return BenchResult(name, count, float(line[1]) - start, int(line[2]), cpu_s=float(line[3]), **servers)


def _servers(before: tuple[float | None, float | None], after: tuple[float | None, float | None]) -> dict[str, Any]:
    """``broker_cpu_s`` and ``influxd_cpu_s`` of a stage from :meth:`BenchTarget.server_cpu_s` before and after."""
    (b0, i0), (b1, i1) = before, after
    return {
        "broker_cpu_s": b1 - b0 if b0 is not None and b1 is not None else None,
        "influxd_cpu_s": i1 - i0 if i0 is not None and i1 is not None else None,
    }


async def _mosquitto_sub_drain_stage(target: BenchTarget, *, count: int, workdir: Path) -> BenchResult:
    """``mosquitto_sub`` draining ``count`` readings queued for its persistent session, timed from its process start.

    The broker's delivery ceiling for a queued QoS 1 session on this machine: libmosquitto in C acknowledges each
    message as it arrives and writes it to /dev/null, so nothing after the socket slows it down.
    """
    client_id = f"bench-subdrain-{uuid.uuid4().hex[:6]}"
    base = ["mosquitto_sub", "-h", target.mqtt_host, "-p", str(target.backend_port)]
    base += ["-u", target.backend_user, "-P", target.backend_password, "-c", "-i", client_id, "-q", "1"]
    base += ["-t", f"ec/v1/{target.site}/+/+/telemetry"]
    try:
        # -E: subscribe, wait for the SUBACK, leave (the persistent session stays and queues).
        prime = await asyncio.create_subprocess_exec(*base, "-E", stdout=asyncio.subprocess.DEVNULL)
        if await prime.wait() != 0:
            raise RuntimeError("mosquitto_sub could not prime its persistent session")
        pubs = Publishers(target, count=count, workdir=workdir)
        await asyncio.to_thread(pubs.run)
        await asyncio.to_thread(pubs.wait)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers0 = target.server_cpu_s()
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*base, "-C", str(count), stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        received = 0
        while received < count and await proc.stdout.readline():  # one line per message
            received += 1
        end = time.monotonic()
        servers1 = target.server_cpu_s()
        await proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the only child reaped meanwhile
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    finally:
        await end_session(target, client_id)
    name = f"mosquitto_sub, {count:,} queued (drain incl. start-up)"
    return BenchResult(name, count, end - start, received, cpu_s=cpu, **_servers(servers0, servers1))


async def _mosquitto_sub_stage(target: BenchTarget, *, count: int, workdir: Path) -> BenchResult:
    pubs = Publishers(target, count=count, workdir=workdir)
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        "-h",
        target.mqtt_host,
        "-p",
        str(target.backend_port),
        "-u",
        target.backend_user,
        "-P",
        target.backend_password,
        "-q",
        "1",
        "-C",
        str(count),
        "-t",
        f"ec/v1/{target.site}/+/+/telemetry",
        "-i",
        f"bench-sub-{uuid.uuid4().hex[:6]}",
        stdout=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # connected and subscribed long before this on loopback
    start = await asyncio.to_thread(pubs.run)
    code = await proc.wait()  # -C: exits after exactly ``count`` messages
    end = time.monotonic()
    await asyncio.to_thread(pubs.wait)
    return BenchResult("mosquitto_sub", count, end - start, count if code == 0 else 0)


async def wait_pipeline_ready(proc: subprocess.Popen[bytes], log: Path, *, timeout_s: float = 60.0) -> None:
    """Wait for a ``python -m eldercare.pipeline`` child's ready line in its log; a clear error if it died or hung."""
    deadline = time.monotonic() + timeout_s
    while b"pipeline ready" not in log.read_bytes():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("pipeline did not start: " + log.read_text()[-2000:])
        await asyncio.sleep(0.05)


async def influx_count(influx: InfluxClient, site: str, *, measurement: str = "mattress") -> int:
    """Points with a ``seq`` field of ``site`` in ``measurement`` (how every stage that stores is counted)."""
    results = await influx.query(
        f'SELECT count("seq") FROM "{measurement}" WHERE "site" = $site', params={"site": site}
    )
    return int(results[0].series[0].values[0][1]) if results and results[0].series else 0


async def _pipeline_stage(
    target: BenchTarget,
    *,
    count: int,
    workers: int,
    workdir: Path,
    env: dict[str, str],
    label: str = "ours",
    profile: Path | None = None,
    queued: bool = False,
) -> BenchResult:
    if workers != 1:
        raise ValueError("one pipeline process per broker session; several workers: eldercare bench scale")
    db = f"bench_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=target.influx_url, db=db)
    await influx.ensure_storage()
    group = f"bench{uuid.uuid4().hex[:6]}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [workdir / f"pipeline-{db}-{w}.log" for w in range(workers)]

    def spawn() -> None:
        procs.clear()
        for w, log in enumerate(logs):
            worker_env = {
                **os.environ,
                **env,
                "ELDERCARE_MQTT_HOST": target.mqtt_host,
                "ELDERCARE_MQTT_PORT": str(target.backend_port),
                "ELDERCARE_MQTT_USERNAME": target.backend_user,
                "ELDERCARE_MQTT_PASSWORD": target.backend_password,
                "ELDERCARE_MQTT_CLIENT_ID": f"{group}-{w}",
                "ELDERCARE_INFLUX_URL": target.influx_url,
                "ELDERCARE_INFLUX_DB": db,
                # One home publishes every reading of the stage: its budget (gateway/budget.py) would count most of them
                # as over_budget instead of storing them. The bench measures the write path.
                "ELDERCARE_SITE_BUDGET": "off",
                "ELDERCARE_DATA_DIR": str(workdir / f"{group}-{w}"),
            }
            command = [sys.executable, "-m", "eldercare.pipeline"]
            if profile is not None:  # cProfile writes its statistics when the pipeline exits on SIGTERM
                command[1:1] = ["-m", "cProfile", "-o", str(profile.with_suffix(f".{w}.prof"))]
            with log.open("ab") as out:
                procs.append(subprocess.Popen(command, env=worker_env, stdout=out, stderr=out))

    async def until_ready(runs: int) -> None:
        deadline = time.monotonic() + 60
        while not all(log.read_bytes().count(b"pipeline ready") >= runs for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("pipeline did not start: " + logs[0].read_text()[-2000:])
            await asyncio.sleep(0.05)

    spawn()
    try:
        await until_ready(1)
        pubs = Publishers(target, count=count, workdir=workdir)
        if queued:
            # Stop (the persistent session stays), let the broker queue everything, then time the drain.
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            await asyncio.to_thread(pubs.run)
            await asyncio.to_thread(pubs.wait)
            servers0 = target.server_cpu_s()
            start = time.monotonic()
            spawn()
            cpu0: list[float | None] = [0.0 for _ in procs]  # the whole process, start-up included
        else:
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            servers0 = target.server_cpu_s()
            start = await asyncio.to_thread(pubs.run)
        n = 0
        deadline = time.monotonic() + 600
        while n < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            n = await influx_count(influx, target.site)
        end = time.monotonic()
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        servers1 = target.server_cpu_s()
        await asyncio.to_thread(pubs.wait)
        await asyncio.sleep(1)
        n = await influx_count(influx, target.site)
        rss = [r for r in (peak_rss_mib(p.pid) for p in procs) if r is not None]
        cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True) if a is not None and b is not None]
        name = label if workers == 1 else f"{label}, {workers} workers"
        if queued:
            name += f", {count:,} queued (drain incl. start-up)"
        return BenchResult(
            name,
            count,
            end - start,
            n,
            note="verified in InfluxDB",
            rss_mib=max(rss, default=None),
            cpu_s=sum(cpu) if len(cpu) == len(procs) else None,
            **_servers(servers0, servers1),
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(30)
        for w in range(workers):
            await end_session(target, f"{group}-{w}")
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()


async def end_session(target: BenchTarget, client_id: str) -> None:
    """Discard a stopped pipeline's persistent session.

    Otherwise the broker keeps queueing every later stage's messages for it (and rewrites them on each autosave),
    which slows every stage that runs after it.
    """
    from gateway.mqtt_wire import NativeListener

    listener = NativeListener(
        host=target.mqtt_host,
        port=target.backend_port,
        username=target.backend_user,
        password=target.backend_password,
        client_id=client_id,
    )
    await listener._discard_session()  # noqa: SLF001 - connect once with a clean session, nothing else


async def run_bench(
    target: BenchTarget,
    *,
    count: int = 200_000,
    naive_count: int = 5_000,
    workers: Sequence[int] = (1,),
    pipeline_env: dict[str, str] | None = None,
    workdir: Path | None = None,
    nodered: bool = True,
    z2m: bool = True,
    clients: Sequence[str] = ("native", "paho"),
    queued: bool = True,
) -> BenchReport:
    """Run every stage once against ``target`` and return the results (see the module docstring)."""
    report = BenchReport()
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-") as tmp:
        wd = workdir or Path(tmp)
        report.results.append(await _mosquitto_sub_stage(target, count=count, workdir=wd))
        report.results.append(await _subscriber_stage("bare paho", "paho", target, count=count, db="", workdir=wd))
        if importlib.util.find_spec("gmqtt") is not None:
            report.results.append(
                await _subscriber_stage("bare gmqtt", "gmqtt", target, count=count, db="", workdir=wd)
            )
        else:
            report.skipped.append("bare gmqtt: the gmqtt package is not installed (uv sync installs the dev group)")
        report.results.append(
            await _subscriber_stage(
                "bare native (ours, acks per batch)", "native", target, count=count, db="", workdir=wd
            )
        )
        naive_db = f"naive_{uuid.uuid4().hex[:8]}"
        naive = InfluxClient(url=target.influx_url, db=naive_db)
        await naive.execute(f'CREATE DATABASE "{naive_db}"')
        try:
            report.results.append(
                await _subscriber_stage("naive", "naive", target, count=naive_count, db=naive_db, workdir=wd)
            )
        finally:
            await naive.drop_database()
            await naive.aclose()
        for client in clients:
            for w in workers if client == clients[0] else (1,):
                report.results.append(
                    await _pipeline_stage(
                        target,
                        count=count,
                        workers=w,
                        workdir=wd,
                        env={**(pipeline_env or {}), "ELDERCARE_MQTT_CLIENT": client},
                        label=f"ours ({client})",
                    )
                )
        if queued:
            report.results.append(await _mosquitto_sub_drain_stage(target, count=count, workdir=wd))
            report.results.append(await _paho_drain_stage(target, count=count, workdir=wd))
        for client in clients if queued else ():
            report.results.append(
                await _pipeline_stage(
                    target,
                    count=count,
                    workers=1,
                    workdir=wd,
                    env={**(pipeline_env or {}), "ELDERCARE_MQTT_CLIENT": client},
                    label=f"ours ({client})",
                    queued=True,
                )
            )
        if nodered:
            from bench.nodered import nodered_stage  # imports this module

            for drain in (False, True) if queued else (False,):
                peer = await nodered_stage(target, count=count, workdir=wd, queued=drain)
                if isinstance(peer, str):
                    report.skipped.append(f"Node-RED{' drain' if drain else ''}: {peer}")
                else:
                    report.results.append(peer)
        if z2m:
            from bench.ingest_z2m import z2m_pipeline_stage  # imports this module

            report.results.append(await z2m_pipeline_stage(target, count=count, workdir=wd, env=pipeline_env))
    return report


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark subscriber stage (internal).")
    parser.add_argument("--subscriber", choices=("paho", "naive", "native", "gmqtt"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--db", default="")
    parser.add_argument("--target", required=True)
    parser.add_argument("--client-id", default="", help="persistent session (paho only)")
    parser.add_argument("--prime", action="store_true", help="subscribe the persistent session, then leave")
    args = parser.parse_args(argv)
    target = msgspec.json.decode(args.target, type=BenchTarget)
    if args.subscriber in ("native", "gmqtt"):
        asyncio.run(_count_only_async(args.subscriber, target=target, count=args.count))
    else:
        _subscriber(
            args.subscriber, target=target, count=args.count, db=args.db, client_id=args.client_id, prime=args.prime
        )


def run_bench_ingest(
    *,
    count: int = 200_000,
    naive_count: int = 5_000,
    workers: Sequence[int] = (1,),
    data_dir: Path | None = None,
    nodered: bool = True,
    z2m: bool = True,
) -> BenchReport:
    """``eldercare bench ingest``: start a local mosquitto + influxd, provision a home, run every stage."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-bench-")))
        broker, influx = stack.enter_context(local_stack(data_dir=root))
        site = "bench"
        broker.provision([site])
        target = BenchTarget.of(broker, influx.url, site, influxd_pid=influx.proc.pid if influx.proc else 0)
        return asyncio.run(
            run_bench(
                target,
                count=count,
                naive_count=naive_count,
                workers=workers,
                workdir=root,
                nodered=nodered,
                z2m=z2m,
            )
        )


if __name__ == "__main__":
    _main()
