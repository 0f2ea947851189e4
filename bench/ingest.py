"""``eldercare bench ingest``: readings/s of the MQTT receive path and of the whole pipeline, in one run.

Every stage gets the same live stream: ``count`` valid mattress telemetry messages of one provisioned home,
published at QoS 1 as fast as possible by ``mosquitto_pub -l`` (one process per device), while the stage
under test is subscribed at QoS 1. A rate is ``count / (done - publishing started)``:

a. ``mosquitto_sub`` into /dev/null: the ceiling for one subscriber;
b. a bare paho subscriber that only counts;
c. a naive pipeline: paho callback → decode → one HTTP write per reading (auto-ack);
d. ours (``python -m eldercare.pipeline``), done when InfluxDB holds all ``count`` readings (one process: the
   ``$share`` multi-worker rows are gone with the share-group mode, issue 18; scale-out is ``bench scale``);
e. ours on a Zigbee2MQTT home's door-contact snapshots (:mod:`bench.ingest_z2m`).

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
import os
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

from eldercare.stack import local_stack
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


@dataclass(slots=True)
class BenchResult:
    """One stage: how many readings, how long, the rate, and whether all arrived."""

    name: str
    count: int
    seconds: float
    received: int
    note: str = ""

    @property
    def rate(self) -> float:
        """Readings per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class BenchReport:
    """All stages of one run."""

    results: list[BenchResult] = field(default_factory=list)

    def get(self, name: str) -> BenchResult | None:
        """The result of a stage by name."""
        return next((r for r in self.results if r.name == name), None)

    def table(self) -> str:
        """Markdown table with rates and ratios to bare paho and to the naive pipeline."""
        paho, naive = self.get("bare paho"), self.get("naive")
        lines = [
            "| stage | readings | seconds | readings/s | vs bare paho | vs naive | lost |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            vs_paho = f"{r.rate / paho.rate:.0%}" if paho and paho.rate else ""
            vs_naive = f"{r.rate / naive.rate:.1f}×" if naive and naive.rate else ""
            lines.append(
                f"| {r.name} | {r.count:,} | {r.seconds:.2f} | {r.rate:,.0f} | {vs_paho} | {vs_naive} "
                f"| {r.count - r.received} |"
            )
        return "\n".join(lines)


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


class _Publishers:
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


def _subscriber(mode: str, *, target: BenchTarget, count: int, db: str) -> None:
    """Bare paho counter or naive pipeline; prints ``ready`` once subscribed and ``done <monotonic>`` at the end."""
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

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{mode}-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(target.backend_user, target.backend_password)
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: print("ready", flush=True)
    client.on_connect = lambda c, *_a: c.subscribe(f"ec/v1/{target.site}/+/+/telemetry", qos=1)
    client.connect(target.mqtt_host, target.backend_port, keepalive=60)
    while done["n"] < count:
        client.loop(timeout=0.1)
    print(f"done {done['last']:.6f} {done['n']}", flush=True)
    client.disconnect()


async def _subscriber_stage(
    name: str, mode: str, target: BenchTarget, *, count: int, db: str, workdir: Path
) -> BenchResult:
    pubs = _Publishers(target, count=count, workdir=workdir)
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
    return BenchResult(name, count, float(line[1]) - start, int(line[2]))


async def _mosquitto_sub_stage(target: BenchTarget, *, count: int, workdir: Path) -> BenchResult:
    pubs = _Publishers(target, count=count, workdir=workdir)
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


async def _count(influx: InfluxClient, site: str) -> int:
    results = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
    return int(results[0].series[0].values[0][1]) if results and results[0].series else 0


async def _pipeline_stage(
    target: BenchTarget, *, count: int, workers: int, workdir: Path, env: dict[str, str]
) -> BenchResult:
    if workers != 1:
        raise ValueError("one pipeline process per broker session; several workers: eldercare bench scale")
    db = f"bench_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=target.influx_url, db=db)
    await influx.ensure_storage()
    group = f"bench{uuid.uuid4().hex[:6]}"
    procs = []
    logs = []
    for w in range(workers):
        log = workdir / f"pipeline-{db}-{w}.log"
        logs.append(log)
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
            "ELDERCARE_DATA_DIR": str(workdir / f"{group}-{w}"),
        }
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen([sys.executable, "-m", "eldercare.pipeline"], env=worker_env, stdout=out, stderr=out)
            )
    try:
        deadline = time.monotonic() + 60
        while not all(b"pipeline ready" in log.read_bytes() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("pipeline did not start: " + logs[0].read_text()[-2000:])
            await asyncio.sleep(0.05)
        pubs = _Publishers(target, count=count, workdir=workdir)
        start = await asyncio.to_thread(pubs.run)
        n = 0
        deadline = time.monotonic() + 600
        while n < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            n = await _count(influx, target.site)
        end = time.monotonic()
        await asyncio.to_thread(pubs.wait)
        await asyncio.sleep(1)
        n = await _count(influx, target.site)
        name = "ours" if workers == 1 else f"ours, {workers} workers"
        return BenchResult(name, count, end - start, n, note="verified in InfluxDB")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(30)
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()


async def run_bench(
    target: BenchTarget,
    *,
    count: int = 200_000,
    naive_count: int = 5_000,
    workers: Sequence[int] = (1,),
    pipeline_env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> BenchReport:
    """Run every stage once against ``target`` and return the results (see the module docstring)."""
    report = BenchReport()
    with tempfile.TemporaryDirectory(prefix="eldercare-bench-") as tmp:
        wd = workdir or Path(tmp)
        report.results.append(await _mosquitto_sub_stage(target, count=count, workdir=wd))
        report.results.append(await _subscriber_stage("bare paho", "paho", target, count=count, db="", workdir=wd))
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
        for w in workers:
            report.results.append(
                await _pipeline_stage(target, count=count, workers=w, workdir=wd, env=pipeline_env or {})
            )
        from bench.ingest_z2m import z2m_pipeline_stage  # imports this module

        report.results.append(await z2m_pipeline_stage(target, count=count, workdir=wd, env=pipeline_env))
    return report


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark subscriber stage (internal).")
    parser.add_argument("--subscriber", choices=("paho", "naive"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--db", default="")
    parser.add_argument("--target", required=True)
    args = parser.parse_args(argv)
    target = msgspec.json.decode(args.target, type=BenchTarget)
    _subscriber(args.subscriber, target=target, count=args.count, db=args.db)


def run_bench_ingest(
    *, count: int = 200_000, naive_count: int = 5_000, workers: Sequence[int] = (1,), data_dir: Path | None = None
) -> BenchReport:
    """``eldercare bench ingest``: start a local mosquitto + influxd, provision a home, run every stage."""
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-bench-")))
        broker, influx = stack.enter_context(local_stack(data_dir=root))
        site = "bench"
        broker.provision([site])
        target = BenchTarget(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            backend_port=broker.backend_port,
            backend_user=broker.backend_user,
            backend_password=broker.backend_password,
            site=site,
            site_password=broker.gateway_password(site),
            influx_url=influx.url,
        )
        return asyncio.run(run_bench(target, count=count, naive_count=naive_count, workers=workers, workdir=root))


if __name__ == "__main__":
    _main()
