"""``eldercare bench confirm``: what the end-to-end acknowledgement costs, with and without, in one run.

``homes`` simulated home gateways (firmware_sim's :class:`~firmware_sim.live.Fleet`: one MQTT connection each,
one thread) publish ``count`` mattress readings at QoS 1, round robin, as fast as they can, into the ingest
pipeline (``python -m eldercare.pipeline`` in a child process). Two rounds on the same broker and influxd:

1. ``without``: ``ELDERCARE_MQTT_CONFIRM_STORED=false``, gateways without outbox (PUBACK is the end);
2. ``with``: confirmations on (one ``stored`` message per gateway every ``ELDERCARE_MQTT_CONFIRM_INTERVAL_MS``),
   gateways keep an outbox until the backend confirms each reading.

A round's rate is ``count / (all stored in InfluxDB - first publish)``; ``confirmed`` is when every outbox is
empty (the gateway knows each reading is durable). The pipeline's CPU per reading and peak RSS come from /proc.
The rounds alternate ``repeat`` times (without, with, without, ...) so load on the shared machine hits both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.ingest import BenchTarget, cpu_seconds, end_session, peak_rss_mib, wait_pipeline_ready
from eldercare.stack import Broker, local_stack
from firmware_sim.live import Fleet
from firmware_sim.wire import encode_mattress_telemetry
from ingest.influx import InfluxClient


@dataclass(slots=True)
class ConfirmRound:
    """One round: readings, seconds until stored (and until confirmed), pipeline CPU and RSS."""

    confirm: bool
    count: int
    stored: int
    stored_s: float
    confirmed_s: float | None
    cpu_s: float | None
    rss_mib: float | None
    confirmations: int
    interval_ms: int

    @property
    def rate(self) -> float:
        """Readings stored per second."""
        return self.stored / self.stored_s if self.stored_s else 0.0


def _site_ids(homes: int) -> list[str]:
    return [f"bc{i:05d}" for i in range(homes)]


class _Publisher(threading.Thread):
    """Publishes ``count`` readings round robin over the fleet, then pumps until told to stop."""

    def __init__(self, fleet: Fleet, *, count: int, t0: int) -> None:
        super().__init__(daemon=True, name="bench-confirm-fleet")
        self.fleet, self.count, self.t0 = fleet, count, t0
        self.halt = threading.Event()
        self.started_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            gateways = list(self.fleet.gateways.values())
            self.started_at = time.monotonic()
            for i in range(self.count):
                gw = gateways[i % len(gateways)]
                msg = encode_mattress_telemetry(
                    **gw.wire.stamp("mat1"), ts=self.t0 + i, occupied=True, hr=60.0 + i % 30, rr=14.0, movement=1
                )
                self.fleet.publish(gw.site, msg.topic, msg.payload, retain=False)
                if i % 200 == 199:
                    self.fleet.pump(0)
            while not self.halt.is_set():
                self.fleet.pump(0.01)
        except BaseException as exc:  # reported by the caller
            self.error = exc


async def _round(
    broker: Broker, influx_url: str, *, confirm: bool, homes: int, count: int, workdir: Path, interval_ms: int
) -> ConfirmRound:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    client_id = f"benchconfirm{uuid.uuid4().hex[:6]}"
    influx = InfluxClient(url=influx_url, db=db)
    await influx.ensure_storage()
    log = workdir / f"pipeline-{db}.log"
    env = {
        **os.environ,
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
        "ELDERCARE_MQTT_CLIENT_ID": client_id,
        "ELDERCARE_MQTT_CONFIRM_STORED": "true" if confirm else "false",
        "ELDERCARE_MQTT_CONFIRM_INTERVAL_MS": str(interval_ms),
        "ELDERCARE_INFLUX_URL": influx_url,
        "ELDERCARE_INFLUX_DB": db,
        "ELDERCARE_DATA_DIR": str(workdir / client_id),
    }
    sites = _site_ids(homes)
    fleet = Fleet(
        sites=[(s, f"gw-{s}") for s in sites],
        host=broker.host,
        port=broker.port,
        password_for=broker.gateway_password,
        outbox=count if confirm else 0,
    )
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eldercare.pipeline"], env=env, stdout=out, stderr=out)  # noqa: S603
    publisher: _Publisher | None = None
    try:
        await wait_pipeline_ready(proc, log)
        await asyncio.to_thread(fleet.connect_all)
        cpu0 = cpu_seconds(proc.pid)
        publisher = _Publisher(fleet, count=count, t0=time.time_ns() // 1_000_000 - 3_600_000)
        publisher.start()
        stored = 0
        stored_at = confirmed_at = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and (stored_at is None or (confirm and confirmed_at is None)):
            await asyncio.sleep(0.05)
            if publisher.error is not None:
                raise publisher.error
            if stored_at is None:
                stored = await _total(influx)
                if stored >= count:
                    stored_at = time.monotonic()
            if confirm and confirmed_at is None and sum(gw.confirmed for gw in fleet.gateways.values()) >= count:
                confirmed_at = time.monotonic()
        cpu1 = cpu_seconds(proc.pid)
        start = publisher.started_at
        return ConfirmRound(
            confirm=confirm,
            count=count,
            stored=stored,
            stored_s=(stored_at or time.monotonic()) - start,
            confirmed_s=None if confirmed_at is None else confirmed_at - start,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            rss_mib=peak_rss_mib(proc.pid),
            confirmations=sum(gw.confirmed for gw in fleet.gateways.values()),
            interval_ms=interval_ms,
        )
    finally:
        if publisher is not None:
            publisher.halt.set()
            publisher.join(30)
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        for gw in fleet.gateways.values():
            with contextlib.suppress(Exception):
                gw.client.disconnect()
        await end_session(BenchTarget.of(broker, influx_url), client_id)
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()


async def _total(influx: InfluxClient) -> int:
    results = await influx.query('SELECT count("seq") FROM "mattress"')
    series = results[0].series
    return int(series[0].values[0][1]) if series else 0


def run_bench_confirm(
    *, homes: int = 1_000, count: int = 100_000, repeat: int = 2, interval_ms: int = 1000, data_dir: Path | None = None
) -> list[ConfirmRound]:
    """Start a local mosquitto + influxd, provision ``homes``, run the rounds (see the module docstring)."""
    rounds: list[ConfirmRound] = []
    with contextlib.ExitStack() as stack:
        root = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eldercare-bench-")))
        broker, influxd = stack.enter_context(local_stack(data_dir=root))
        broker.provision(_site_ids(homes))
        for _ in range(repeat):
            for confirm in (False, True):
                rounds.append(
                    asyncio.run(
                        _round(
                            broker,
                            influxd.url,
                            confirm=confirm,
                            homes=homes,
                            count=count,
                            workdir=root,
                            interval_ms=interval_ms,
                        )
                    )
                )
    return rounds


def table(rounds: list[ConfirmRound], homes: int) -> str:
    """Markdown table: each round beside the mean of the rounds without confirmations."""
    base = [r for r in rounds if not r.confirm]
    base_rate = sum(r.rate for r in base) / len(base) if base else 0.0
    lines = [
        (
            f"{homes:,} homes, {rounds[0].count:,} readings per round, confirmations every {rounds[0].interval_ms} ms"
            if rounds
            else "no rounds"
        ),
        "",
        "| round | stored/s | vs without | all confirmed after | pipeline CPU µs/reading | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        confirmed = f"{r.confirmed_s:.1f} s" if r.confirmed_s is not None else "—"
        cpu = f"{r.cpu_s * 1e6 / r.stored:.0f}" if r.cpu_s is not None and r.stored else "?"
        rss = f"{r.rss_mib:.0f}" if r.rss_mib is not None else "?"
        ratio = f"{r.rate / base_rate:.2f}" if base_rate else "?"
        name = "with confirmations" if r.confirm else "without"
        lines.append(f"| {name} | {r.rate:,.0f} | {ratio} | {confirmed} | {cpu} | {rss} |")
    return "\n".join(lines)
