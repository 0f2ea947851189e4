"""``eldercare bench watch``: readings/s of the 4G watch path against contract v1 wristbands, in one run.

Both stages run ``python -m eldercare.pipeline`` (one worker process, a database of its own) on the same local
mosquitto and influxd, with a registry whose home has :data:`WATCHES` wristbands, each registered as a 4G watch
(``imei``), and feed it ``count`` wristband heart-rate readings:

a. **contract v1** (the baseline): ``mosquitto_pub -l`` per device (4 processes, as ``eldercare bench ingest``)
   publishes ``{"seq", "ts", "worn": true, "hr"}`` telemetry at QoS 1;
b. **4G watch**: :data:`WATCHES` simulated watches (``firmware_sim.watch``, one TCP connection each, in this
   process) write ``heart,<bpm>`` frames to the pipeline's watch server as fast as their sockets take them.

A stage is done when InfluxDB holds all ``count`` readings; the rate is ``count / (done - sending started)`` and
the watch row is also given as a ratio of the contract v1 row measured in the same run. Indicative only on a
shared machine.

Then **SOS latency** on the whole backend (:class:`eldercare.backend.Backend`, in this process): ``presses`` SOS
presses by contract v1 wristbands (a gateway's paho connection, QoS 1) and as many by 4G watches (``AL`` frames),
alternating, each on a home of its own so every press is a new alert; the time from the send call to the alert
row committed (``AlertStore.raise_alert`` returned, timed by wrapping it on the running instance, as
``bench/latency.py`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from alerts.store.records import RaiseResult
from bench.ingest import wait_pipeline_ready
from detection.models import Alert, AlertType
from eldercare.backend import Backend
from eldercare.servers._child import free_port
from eldercare.settings import Settings
from eldercare.stack import Broker, local_stack
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.scenario import generate
from firmware_sim.watch import SimWatch, frame
from firmware_sim.wire import encode_wristband_event
from ingest.influx import InfluxClient

WATCHES: Final = 20
"""Watches (TCP connections) of the benchmark home."""
PUBLISHERS: Final = 4
"""``mosquitto_pub`` processes of the contract v1 stage."""
SITE: Final = "benchw"
CHUNK: Final = 200
"""Frames a simulated watch writes at once."""


def imei_of(i: int) -> str:
    """IMEI of benchmark watch ``i``."""
    return f"86800000{i:07d}"


@dataclass(slots=True)
class WatchBench:
    """The rows of one run."""

    count: int
    rows: list[tuple[str, float, int]] = field(default_factory=list)
    """(stage, seconds, readings stored)."""
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    """Path → send-to-stored time of each SOS press, ms."""

    def table(self) -> str:
        """Markdown table: readings/s and the ratio to the contract v1 row."""
        base = next((self.count / s for name, s, _ in self.rows if name.startswith("contract v1") and s > 0), 0.0)
        lines = [
            "| stage | readings | seconds | readings/s | vs contract v1 | lost |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, seconds, stored in self.rows:
            rate = self.count / seconds if seconds > 0 else 0.0
            ratio = f"{rate / base:.0%}" if base else ""
            lines.append(f"| {name} | {self.count:,} | {seconds:.2f} | {rate:,.0f} | {ratio} | {self.count - stored} |")
        if self.latency_ms:
            base_p50 = statistics.median(self.latency_ms.get("contract v1 (MQTT)", [0.0]) or [0.0])
            lines += [
                "",
                "| SOS press → alert stored | presses | p50 ms | max ms | p50 vs contract v1 |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, times in self.latency_ms.items():
                p50 = statistics.median(times) if times else 0.0
                ratio = f"{p50 / base_p50:.0%}" if base_p50 else ""
                lines.append(f"| {name} | {len(times)} | {p50:.1f} | {max(times, default=0.0):.1f} | {ratio} |")
        return "\n".join(lines)


def _registry(path: Path) -> None:
    devices = [{"device": f"w{i}", "kind": "wristband", "imei": imei_of(i)} for i in range(WATCHES)]
    path.write_text(json.dumps({"version": 1, "sites": [{"site": SITE, "gateway": f"gw-{SITE}", "devices": devices}]}))


async def _count(influx: InfluxClient) -> int:
    q = 'SELECT count("hr") FROM "wristband" WHERE "site" = $site'
    results = await influx.query(q, params={"site": SITE})
    return int(results[0].series[0].values[0][1]) if results and results[0].series else 0


async def _stage(
    name: str,
    broker: Broker,
    influx_url: str,
    workdir: Path,
    count: int,
    send: Callable[[int], Coroutine[None, None, None]],
) -> tuple[str, float, int]:
    """Start a pipeline worker, run ``send(watch_port)``, wait until InfluxDB holds ``count`` readings."""
    db = f"benchw_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=influx_url, db=db)
    await influx.ensure_storage()
    registry = workdir / f"registry-{db}.json"
    _registry(registry)
    watch_port = free_port()
    env = {
        **os.environ,
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
        "ELDERCARE_MQTT_CLIENT_ID": f"benchw-{uuid.uuid4().hex[:6]}",
        "ELDERCARE_INFLUX_URL": influx_url,
        "ELDERCARE_INFLUX_DB": db,
        # One home publishes every reading of the stage: its budget (gateway/budget.py) would count most of them
        # as over_budget instead of storing them. The bench measures the write path.
        "ELDERCARE_SITE_BUDGET": "off",
        "ELDERCARE_DATA_DIR": str(workdir / db),
        "ELDERCARE_REGISTRY_PATH": str(registry),
        "ELDERCARE_WATCH_PORT": str(watch_port),
        "ELDERCARE_WATCH_HOST": "127.0.0.1",
    }
    log = workdir / f"pipeline-{db}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eldercare.pipeline"], env=env, stdout=out, stderr=out)
    try:
        await wait_pipeline_ready(proc, log)
        start = time.monotonic()
        sender = asyncio.create_task(send(watch_port))
        n, deadline = 0, time.monotonic() + 600
        while n < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            n = await _count(influx)
        end = time.monotonic()
        await sender
        return name, end - start, n
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()


def _v1_sender(broker: Broker, workdir: Path, count: int) -> Callable[[int], Coroutine[None, None, None]]:
    now = time.time_ns() // 1_000_000
    files: list[tuple[str, Path]] = []
    for d in range(PUBLISHERS):
        n = len(range(d, count, PUBLISHERS))
        lines = [b'{"seq":%d,"ts":%d,"worn":true,"hr":%d.0}' % (k + 1, now - n + k, 60 + k % 40) for k in range(n)]
        path = workdir / f"v1-w{d}-{uuid.uuid4().hex[:6]}.txt"
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append((f"ec/v1/{SITE}/wristband/w{d}/telemetry", path))

    async def send(_watch_port: int) -> None:
        password = broker.gateway_password(SITE)
        pubs = [
            await asyncio.create_subprocess_exec(
                *("mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-u", SITE, "-P", password),
                *("-i", f"{SITE}-{uuid.uuid4().hex[:6]}", "-q", "1", "-t", topic, "-l"),
                stdin=path.open("rb"),
                stdout=subprocess.DEVNULL,
            )
            for topic, path in files
        ]
        for p in pubs:
            await p.wait()

    return send


def _watch_sender(count: int) -> Callable[[int], Coroutine[None, None, None]]:
    async def one(i: int, port: int) -> None:
        n = len(range(i, count, WATCHES))
        async with SimWatch(host="127.0.0.1", port=port, imei=imei_of(i)) as watch:
            await watch.login()
            for k in range(0, n, CHUNK):
                await watch.send_raw(
                    b"".join(frame("3G", imei_of(i), f"heart,{60 + j % 40}") for j in range(k, min(n, k + CHUNK)))
                )
            await watch.lk()  # answered once every heart before it is durable
            while await watch.reply() != "LK":
                pass

    async def send(port: int) -> None:
        await asyncio.gather(*(one(i, port) for i in range(WATCHES)))

    return send


async def sos_latency(
    *, broker: Broker, influx_url: str, workdir: Path, presses: int, spacing_s: float = 0.3
) -> dict[str, list[float]]:
    """Send-to-stored times of SOS presses by contract v1 wristbands and by 4G watches (module docstring)."""
    sim = generate(homes=2 * presses, days=1, seed=7)
    doc: dict[str, Any] = json.loads(json.dumps(sim.registry))
    v1_sites = [str(site["site"]) for site in doc["sites"][:presses]]
    watch_sites = [str(site["site"]) for site in doc["sites"][presses:]]
    for i, site in enumerate(doc["sites"][presses:]):
        site["devices"].append({"device": "watch1", "kind": "wristband", "imei": imei_of(i)})
    broker.provision(v1_sites)
    settings = Settings(
        data_dir=workdir / "latency-backend",
        mqtt_host=broker.host,
        mqtt_port=broker.backend_port,
        mqtt_username=broker.backend_user,
        mqtt_password=SecretStr(broker.backend_password),
        mqtt_client_id=f"benchw-{uuid.uuid4().hex[:6]}",
        influx_url=influx_url,
        influx_db=f"benchw_latency_{uuid.uuid4().hex[:6]}",
        link_secret=SecretStr(secrets.token_urlsafe(24)),
        watch_port=0,
        watch_host="127.0.0.1",
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backend = Backend(settings, registry=doc)
    stored: dict[str, float] = {}
    raise_alert = backend.store.raise_alert

    def timed_raise(alert: Alert, **kwargs: Any) -> RaiseResult:
        result = raise_alert(alert, **kwargs)
        if alert.type == AlertType.SOS:
            stored.setdefault(alert.site, time.monotonic())
        return result

    backend.store.raise_alert = timed_raise  # type: ignore[method-assign]
    stop = asyncio.Event()
    run = asyncio.create_task(backend.run(stop=stop), name="backend")
    sent: dict[str, float] = {}
    gateways: list[GatewayPublisher] = []
    watches: list[SimWatch] = []
    try:
        await asyncio.wait_for(backend.ready.wait(), 60)
        await asyncio.wait_for(backend.recovered.wait(), 60)
        assert backend.watch_server is not None
        for site in v1_sites:
            gw = GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port)
            await asyncio.to_thread(gw.__enter__)
            gateways.append(gw)
        for i in range(presses):
            watch = SimWatch(host="127.0.0.1", port=backend.watch_server.port, imei=imei_of(i))
            await watch.connect()
            await watch.login()
            watches.append(watch)
        for gw, watch, watch_site in zip(gateways, watches, watch_sites, strict=True):
            message = encode_wristband_event(**gw.wire.stamp("band1"), ts=time.time_ns() // 1_000_000, event="sos")
            sent[gw.site] = time.monotonic()
            await asyncio.to_thread(gw.publish, message)
            await asyncio.sleep(spacing_s)
            sent[watch_site] = time.monotonic()
            await watch.sos()
            await asyncio.sleep(spacing_s)
        deadline = time.monotonic() + 30
        while len(stored) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for watch in watches:
            await watch.close()
        for gw in gateways:
            await asyncio.to_thread(gw.__exit__, None, None, None)
        stop.set()
        await run

    def times(sites: list[str]) -> list[float]:
        return [(stored[s] - sent[s]) * 1000 for s in sites if s in stored and s in sent]

    return {"contract v1 (MQTT)": times(v1_sites), "4G watch (TCP)": times(watch_sites)}


async def bench_watch(*, broker: Broker, influx_url: str, count: int, workdir: Path, presses: int = 20) -> WatchBench:
    """Both throughput stages and the SOS latency on running servers (see the module docstring)."""
    broker.provision([SITE])
    result = WatchBench(count=count)
    result.rows.append(
        await _stage("contract v1 (MQTT)", broker, influx_url, workdir, count, _v1_sender(broker, workdir, count))
    )
    result.rows.append(await _stage("4G watch (TCP)", broker, influx_url, workdir, count, _watch_sender(count)))
    if presses:
        result.latency_ms = await sos_latency(broker=broker, influx_url=influx_url, workdir=workdir, presses=presses)
    return result


def run_bench_watch(*, count: int = 20_000, presses: int = 20, data_dir: Path | None = None) -> WatchBench:
    """``eldercare bench watch``: start a local mosquitto + influxd and run both stages and the SOS latency."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-bench-")))
        broker, influx = stack.enter_context(local_stack(data_dir=root))
        work = root / "work"
        work.mkdir(exist_ok=True)
        return asyncio.run(
            bench_watch(broker=broker, influx_url=influx.url, count=count, workdir=work, presses=presses)
        )
