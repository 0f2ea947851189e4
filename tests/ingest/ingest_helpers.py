"""Helpers of the ingest pipeline tests: the pipeline as a subprocess, a paced publisher, counting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.processes import kill_process, stop_process

from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_mattress_telemetry
from ingest.influx import InfluxClient

ROOT = Path(__file__).resolve().parents[2]


def hr_of(i: int) -> float:
    return 40.0 + (i * 7) % 600 / 10


class Pipeline:
    """``python -m eldercare.pipeline`` as a child process, killable with SIGKILL."""

    def __init__(
        self, *, broker: Broker, influx_url: str, db: str, data_dir: Path, client_id: str, mqtt_client: str = "native"
    ) -> None:
        self.env = {
            **os.environ,
            "ELDERCARE_MQTT_HOST": broker.host,
            "ELDERCARE_MQTT_PORT": str(broker.backend_port),
            "ELDERCARE_MQTT_USERNAME": broker.backend_user,
            "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
            "ELDERCARE_MQTT_CLIENT_ID": client_id,
            "ELDERCARE_MQTT_CLIENT": mqtt_client,
            "ELDERCARE_INFLUX_URL": influx_url,
            "ELDERCARE_INFLUX_DB": db,
            "ELDERCARE_DATA_DIR": str(data_dir),
            "ELDERCARE_INFLUX_RETRY_INTERVAL_MS": "500",
            # One home stands for a whole neighbourhood's load here (thousands a second): its budget of messages
            # (gateway/budget.py, tested on its own) would count most of them as over_budget instead of storing them.
            "ELDERCARE_SITE_BUDGET": "off",
        }
        self.data_dir = data_dir
        self.client_id = client_id
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "pipeline.log"
        data_dir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 60) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eldercare.pipeline"], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while b"pipeline ready" not in self.log.read_bytes()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pipeline did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        kill_process(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)

    def spool_files(self) -> list[Path]:
        return list((self.data_dir / "spool" / self.client_id).glob("*.seg"))

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the pipeline's log, for a failure message."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


class PacedPublisher(threading.Thread):
    """Publishes ``count`` mattress readings for one site at about ``rate`` per second (QoS 1)."""

    def __init__(self, *, broker: Broker, site: str, count: int, rate: float, devices: int = 4) -> None:
        super().__init__(daemon=True)
        self.broker, self.site, self.count, self.rate, self.devices = broker, site, count, rate, devices
        self.t0 = time.time_ns() // 1_000_000 - 60_000
        self.published = 0
        self.error: BaseException | None = None

    def message(self, i: int) -> tuple[str, bytes]:
        msg = encode_mattress_telemetry(
            site=self.site,
            device=f"mat{i % self.devices}",
            seq=i + 1,
            ts=self.t0 + i,
            occupied=True,
            hr=hr_of(i),
            rr=14.0,
            movement=i % 100,
        )
        return msg.topic, msg.payload

    def run(self) -> None:
        try:
            gw = GatewayPublisher(
                site=self.site, password=self.broker.gateway_password(self.site), port=self.broker.port
            )
            gw.connect()
            chunk = max(1, int(self.rate / 20))
            start = time.monotonic()
            infos = []
            for i in range(self.count):
                topic, payload = self.message(i)
                infos.append(gw.client.publish(topic, payload, qos=1))
                self.published = i + 1
                if (i + 1) % chunk == 0:
                    ahead = (i + 1) / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
            for info in infos:
                # Queued while the broker was away: paho resends it; the InfluxDB count decides.
                with contextlib.suppress(RuntimeError):
                    info.wait_for_publish(timeout=120)
            gw.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


async def count_site(influx: InfluxClient, site: str) -> int:
    results = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
    series = results[0].series
    return int(series[0].values[0][1]) if series else 0


async def wait_count(influx: InfluxClient, site: str, expected: int, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    n = -1
    while time.monotonic() < deadline:
        try:
            n = await count_site(influx, site)
        except Exception:  # influxd may be down on purpose
            n = -1
        if n >= expected:
            return n
        await asyncio.sleep(0.2)
    return n
