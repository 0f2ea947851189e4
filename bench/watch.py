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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from eldercare.servers._child import free_port
from eldercare.stack import Broker, local_stack
from firmware_sim.watch import SimWatch, frame
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
        "ELDERCARE_DATA_DIR": str(workdir / db),
        "ELDERCARE_REGISTRY_PATH": str(registry),
        "ELDERCARE_WATCH_PORT": str(watch_port),
        "ELDERCARE_WATCH_HOST": "127.0.0.1",
    }
    log = workdir / f"pipeline-{db}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eldercare.pipeline"], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while b"pipeline ready" not in log.read_bytes():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("pipeline did not start: " + log.read_text()[-2000:])
            await asyncio.sleep(0.05)
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


async def bench_watch(*, broker: Broker, influx_url: str, count: int, workdir: Path) -> WatchBench:
    """Both stages on running servers (see the module docstring)."""
    broker.provision([SITE])
    result = WatchBench(count=count)
    result.rows.append(
        await _stage("contract v1 (MQTT)", broker, influx_url, workdir, count, _v1_sender(broker, workdir, count))
    )
    result.rows.append(await _stage("4G watch (TCP)", broker, influx_url, workdir, count, _watch_sender(count)))
    return result


def run_bench_watch(*, count: int = 20_000, data_dir: Path | None = None) -> WatchBench:
    """``eldercare bench watch``: start a local mosquitto + influxd and run both stages."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-bench-")))
        broker, influx = stack.enter_context(local_stack(data_dir=root))
        work = root / "work"
        work.mkdir(exist_ok=True)
        return asyncio.run(bench_watch(broker=broker, influx_url=influx.url, count=count, workdir=work))
