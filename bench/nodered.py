"""The Node-RED row of ``eldercare bench ingest``: the low-code peer on the same broker, publishers and counting.

The flow is the one many installers would build (issue 17): ``mqtt in`` (QoS 1) → ``json`` → ``function`` (to an
InfluxDB point) → ``join`` (1,000 messages, or 1 s for the tail) → ``influxdb batch`` (InfluxDB 1.x), from
node-red 4.x and node-red-contrib-influxdb 0.7. :func:`ensure_nodered` installs both from the npm registry into a
cache directory outside the repository (``~/.cache/eldercare/bench/nodered`` by default) the first time; nothing
fetched is ever part of the repository. Without node/npm, or when the install fails, the row is skipped with a
one-line reason.

The rate is counted exactly as for ours: publishing starts, and the stage is done when ``SELECT count(seq)`` in a
fresh InfluxDB database equals the number of readings published. Node-RED acknowledges each message to the broker
on arrival (before parsing or writing it), so its "lost" column shows what reached InfluxDB, not what a crash
would lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from bench.ingest import (
    BenchResult,
    BenchTarget,
    Publishers,
    cpu_seconds,
    end_session,
    influx_count,
    peak_rss_mib,
)
from ingest.influx import InfluxClient

DEFAULT_CACHE: Final = Path.home() / ".cache" / "eldercare" / "bench" / "nodered"
"""Where node-red and node-red-contrib-influxdb are installed (outside the repository)."""

PACKAGES: Final = ("node-red@4", "node-red-contrib-influxdb@0.7")
JOIN_COUNT: Final = 1000

_FUNCTION: Final = """
const t = msg.topic.split('/');
const p = msg.payload;
msg.payload = {
    measurement: t[3],
    tags: {site: t[2], device: t[4]},
    fields: {seq: p.seq, occupied: p.occupied, hr: p.hr, rr: p.rr, movement: p.movement},
    timestamp: new Date(p.ts)
};
return msg;
"""


def _red_js(cache: Path) -> Path:
    return cache / "node_modules" / "node-red" / "red.js"


def _installed_version(cache: Path) -> str | None:
    try:
        red = json.loads((cache / "node_modules" / "node-red" / "package.json").read_text())
        json.loads((cache / "node_modules" / "node-red-contrib-influxdb" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = str(red.get("version", ""))
    return version if version.startswith("4.") else None


def ensure_nodered(cache: Path = DEFAULT_CACHE, *, timeout_s: float = 600) -> tuple[Path | None, str]:
    """Install Node-RED 4.x and the InfluxDB nodes into ``cache`` if needed.

    Returns ``(red.js, version)`` when usable, else ``(None, reason)``: the reason is the one-line message the
    benchmark prints instead of the row.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node/npm not found on PATH"
    version = _installed_version(cache)
    if version is None:
        cache.mkdir(parents=True, exist_ok=True)
        manifest = cache / "package.json"
        if not manifest.exists():
            manifest.write_text('{"name": "eldercare-bench-nodered", "private": true}\n')
        try:
            proc = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", *PACKAGES],
                cwd=cache,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, f"npm install {' '.join(PACKAGES)} timed out after {timeout_s:.0f} s"
        version = _installed_version(cache)
        if proc.returncode != 0 or version is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"npm install {' '.join(PACKAGES)} failed: {tail}"
    return _red_js(cache), version


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flow(
    target: BenchTarget, *, db: str, client_id: str, clean: bool = True
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The flow (nodes) and its credentials file for ``target``'s broker, site and InfluxDB database ``db``.

    ``clean=False``: a persistent session, for the drain row.
    """
    influx = urlsplit(target.influx_url)
    nodes: list[dict[str, object]] = [
        {"id": "bench_tab", "type": "tab", "label": "eldercare bench"},
        {
            "id": "bench_broker",
            "type": "mqtt-broker",
            "name": "bench",
            "broker": target.mqtt_host,
            "port": str(target.backend_port),
            "clientid": client_id,
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": clean,
        },
        {
            "id": "bench_in",
            "type": "mqtt in",
            "z": "bench_tab",
            "topic": f"ec/v1/{target.site}/+/+/telemetry",
            "qos": "1",
            "datatype": "utf8",
            "broker": "bench_broker",
            "inputs": 0,
            "wires": [["bench_json"]],
        },
        {
            "id": "bench_json",
            "type": "json",
            "z": "bench_tab",
            "property": "payload",
            "action": "obj",
            "wires": [["bench_fn"]],
        },
        {
            "id": "bench_fn",
            "type": "function",
            "z": "bench_tab",
            "func": _FUNCTION,
            "outputs": 1,
            "wires": [["bench_join"]],
        },
        {
            "id": "bench_join",
            "type": "join",
            "z": "bench_tab",
            "mode": "custom",
            "build": "array",
            "property": "payload",
            "propertyType": "msg",
            "key": "topic",
            "joiner": "\\n",
            "joinerType": "str",
            "accumulate": False,
            "timeout": "1",
            "count": str(JOIN_COUNT),
            "wires": [["bench_batch"]],
        },
        {
            "id": "bench_batch",
            "type": "influxdb batch",
            "z": "bench_tab",
            "influxdb": "bench_influx",
            "precision": "ms",
            "retentionPolicy": "",
            "wires": [],
        },
        {
            "id": "bench_influx",
            "type": "influxdb",
            "hostname": influx.hostname,
            "port": str(influx.port),
            "protocol": "http",
            "database": db,
            "usetls": False,
            "influxdbVersion": "1.x",
        },
    ]
    creds: dict[str, object] = {
        "bench_broker": {"user": target.backend_user, "password": target.backend_password},
        "bench_influx": {"username": "", "password": ""},
    }
    return nodes, creds


async def nodered_stage(
    target: BenchTarget, *, count: int, workdir: Path, cache: Path = DEFAULT_CACHE, queued: bool = False
) -> BenchResult | str:
    """Run the Node-RED flow against ``target``; a string is the reason the row is skipped.

    ``queued``: the drain row. The flow connects once with a persistent session and is killed, the readings are
    published while it is down, and the row is timed from its restart until InfluxDB holds them all (as ours).
    """
    red_js, version = await asyncio.to_thread(ensure_nodered, cache)
    if red_js is None:
        return version
    db = f"nodered_{uuid.uuid4().hex[:8]}"
    influx = InfluxClient(url=target.influx_url, db=db)
    await influx.execute(f'CREATE DATABASE "{db}"')
    user_dir = workdir / f"nodered-{db}"
    user_dir.mkdir(parents=True)
    # Node-RED finds installed node packages in <userDir>/node_modules.
    (user_dir / "node_modules").symlink_to(cache / "node_modules", target_is_directory=True)
    client_id = f"bench-nodered-{uuid.uuid4().hex[:6]}"
    nodes, creds = flow(target, db=db, client_id=client_id, clean=not queued)
    (user_dir / "flows.json").write_text(json.dumps(nodes))
    (user_dir / "flows_cred.json").write_text(json.dumps(creds))
    (user_dir / "settings.js").write_text(
        "module.exports = "
        + json.dumps(
            {
                "uiHost": "127.0.0.1",
                "uiPort": _free_port(),
                "flowFile": "flows.json",
                "credentialSecret": False,
                "httpAdminRoot": False,
                "httpNodeRoot": False,
                "logging": {"console": {"level": "info", "metrics": False, "audit": False}},
                "externalModules": {"autoInstall": False},
            }
        )
        + ";\n"
    )
    log = user_dir / "nodered.log"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            procs.append(
                subprocess.Popen(
                    ["node", str(red_js), "--userDir", str(user_dir), "--settings", str(user_dir / "settings.js")],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "NODE_ENV": "production"},
                )
            )
        return procs[-1]

    async def connected(proc: subprocess.Popen[bytes], times: int) -> str | None:
        deadline = time.monotonic() + 120
        while log.read_bytes().count(b"Connected to broker") < times:
            if time.monotonic() > deadline or proc.poll() is not None:
                return f"Node-RED {version} did not start: " + log.read_text()[-300:].replace("\n", " | ")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the SUBSCRIBE follows the CONNACK at once on loopback; no log line marks it
        return None

    try:
        proc = spawn()
        if (failed := await connected(proc, 1)) is not None:
            return failed
        pubs = Publishers(target, count=count, workdir=workdir)
        if queued:
            # SIGKILL, not SIGTERM: on a graceful stop Node-RED's ``mqtt in`` node unsubscribes, so its persistent
            # session queues nothing while it is down (what is published meanwhile is dropped by the broker).
            proc.kill()
            await asyncio.to_thread(proc.wait, 30)
            await asyncio.to_thread(pubs.run)
            await asyncio.to_thread(pubs.wait)
            start = time.monotonic()
            proc = spawn()
            cpu0: float | None = 0.0  # the whole process, start-up included
        else:
            cpu0 = cpu_seconds(proc.pid)
            start = await asyncio.to_thread(pubs.run)
        n = 0
        deadline = time.monotonic() + 600
        while n < count and time.monotonic() < deadline and proc.poll() is None:
            await asyncio.sleep(0.05)
            n = await influx_count(influx, target.site, measurement="mattress")
        end = time.monotonic()
        cpu1 = cpu_seconds(proc.pid)
        await asyncio.to_thread(pubs.wait)
        await asyncio.sleep(1)
        n = await influx_count(influx, target.site, measurement="mattress")
        rss = peak_rss_mib(proc.pid)
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        name = f"Node-RED {version}, join {JOIN_COUNT:,} → batch"
        if queued:
            name += f", {count:,} queued (drain incl. start-up)"
        return BenchResult(name, count, end - start, n, note="verified in InfluxDB", rss_mib=rss, cpu_s=cpu)
    finally:
        for p in procs:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(30)
            if p.poll() is None:
                p.kill()
        if queued:
            await end_session(target, client_id)
        with contextlib.suppress(Exception):
            await influx.drop_database()
        await influx.aclose()
