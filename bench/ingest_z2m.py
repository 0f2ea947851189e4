"""The Zigbee2MQTT row of ``eldercare bench ingest``: the same pipeline fed Z2M door-contact snapshots.

One Z2M home (base topic ``z2m/{site}``) with :data:`bench.ingest.DEVICES` Tuya TS0203 door contacts, announced in a
retained ``bridge/devices``; each device's ``mosquitto_pub -l`` publishes ``count / DEVICES`` state snapshots whose
``contact`` alternates, so every message after a device's first is one ``close``/``open`` event (its cached battery
and tamper repeat the last status, so no status reading: the person caused the message, it is no heartbeat) and a
device's first message is its status. The rate is messages per second (comparable with the contract v1 rows: one
message, one reading there), done when InfluxDB holds all ``count`` readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.ingest import DEVICES, BenchResult, BenchTarget, end_session, wait_pipeline_ready
from ingest.influx import InfluxClient


def _ieee(d: int) -> str:
    return f"0xa4c1380000{d:06x}"


def _device_list() -> bytes:
    return json.dumps(
        [
            {
                "ieee_address": _ieee(d),
                "friendly_name": f"door{d}",
                "type": "EndDevice",
                "definition": {"model": "TS0203", "vendor": "Tuya", "exposes": []},
            }
            for d in range(DEVICES)
        ]
    ).encode()


def _pub(target: BenchTarget, topic: str, *args: str) -> list[str]:
    return [
        "mosquitto_pub",
        "-h",
        target.mqtt_host,
        "-p",
        str(target.mqtt_port),
        "-u",
        target.site,
        "-P",
        target.site_password,
        "-i",
        f"{target.site}-z2m-{uuid.uuid4().hex[:6]}",
        "-q",
        "1",
        "-t",
        topic,
        *args,
    ]


async def _count(influx: InfluxClient, site: str) -> int:
    q = 'SELECT count("received_ms") FROM "door" WHERE "site" = $site'
    results = await influx.query(q, params={"site": site})
    return int(results[0].series[0].values[0][1]) if results and results[0].series else 0


async def z2m_pipeline_stage(
    target: BenchTarget, *, count: int, workdir: Path, env: dict[str, str] | None = None
) -> BenchResult:
    """Run ``python -m eldercare.pipeline`` (one worker) on ``count`` Z2M messages; see the module docstring."""
    db = f"benchz_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=target.influx_url, db=db)
    await influx.ensure_storage()
    base = f"z2m/{target.site}"
    subprocess.run(_pub(target, f"{base}/bridge/devices", "-r", "-m", _device_list().decode()), check=True)
    log = workdir / f"pipeline-{db}.log"
    client_id = f"benchz-{uuid.uuid4().hex[:6]}"
    worker_env = {
        **os.environ,
        **(env or {}),
        "ELDERCARE_MQTT_HOST": target.mqtt_host,
        "ELDERCARE_MQTT_PORT": str(target.backend_port),
        "ELDERCARE_MQTT_USERNAME": target.backend_user,
        "ELDERCARE_MQTT_PASSWORD": target.backend_password,
        "ELDERCARE_MQTT_CLIENT_ID": client_id,
        "ELDERCARE_INFLUX_URL": target.influx_url,
        "ELDERCARE_INFLUX_DB": db,
        # One home publishes every reading of the stage: its budget (gateway/budget.py) would count most of them
        # as over_budget instead of storing them. The bench measures the write path.
        "ELDERCARE_SITE_BUDGET": "off",
        "ELDERCARE_DATA_DIR": str(workdir / db),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eldercare.pipeline"], env=worker_env, stdout=out, stderr=out)
    files: list[tuple[str, Path]] = []
    for d in range(DEVICES):
        n = len(range(d, count, DEVICES))
        lines = [
            b'{"battery":97,"battery_low":false,"contact":%s,"linkquality":120,"tamper":false,"voltage":3000}'
            % (b"true" if k % 2 else b"false")
            for k in range(n)
        ]
        path = workdir / f"z2m-door{d}-{uuid.uuid4().hex[:6]}.txt"
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append((f"{base}/door{d}", path))
    expected = count
    try:
        await wait_pipeline_ready(proc, log)
        start = time.monotonic()
        pubs = [
            subprocess.Popen(_pub(target, topic, "-l"), stdin=path.open("rb"), stdout=subprocess.DEVNULL)
            for topic, path in files
        ]
        n = 0
        deadline = time.monotonic() + 600
        while n < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            n = await _count(influx, target.site)
        end = time.monotonic()
        for p in pubs:
            p.wait(600)
        await asyncio.sleep(1)
        n = await _count(influx, target.site)
        received = count - max(0, expected - n)  # one reading per message
        return BenchResult("ours, Zigbee2MQTT", count, end - start, received, note="1 reading/message, in InfluxDB")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        await end_session(target, client_id)
        subprocess.run(_pub(target, f"{base}/bridge/devices", "-r", "-n"), check=False)
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()
