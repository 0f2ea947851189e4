"""``eldercare bench flood``: one home's gateway floods valid telemetry; how long a neighbour's press waits behind it.

The neighbour is a Zigbee2MQTT home: its call button publishes on ``z2m/<site>/<name>`` like every other device of
that home, so its press comes on the backend's main session, behind whatever was published there before it (the
contract's life-safety topics have a session of their own; docs/operations.md, "What one gateway can still do").

One run, on real components (mosquitto, influxd, the whole :class:`~eldercare.backend.Backend` in this process),
two rounds on the same servers, each with a fresh backend and fresh homes:

1. ``budget off`` (``ELDERCARE_SITE_BUDGET=off``, the backend before 2026-12-07): every valid reading is written;
2. ``budget on`` (the default, ``50/20000``): what a home sends beyond its budget is counted, not written
   (:mod:`gateway.budget`).

In each round the backend starts once (its persistent broker sessions now exist) and stops; while it is away the
attacker (a paho client with its home's account, QoS 1, up to 1,000 in flight, in a process of its own as a real box
would be) publishes ``flood`` mattress readings, then the neighbour's bridge publishes one ``{"action":
"emergency"}``, and the broker queues all of it, in that order, for the backend's main session. The backend starts
again; measured from that start: **raised**, the neighbour's alert committed to the store (polled every 5 ms), and
**handled**, the whole flood stored in InfluxDB or counted ``over_budget``. Ratios are budget on / budget off.

Why a backlog and not a live flood: one such client publishes about 2,500 readings a second here, which the backend
keeps up with (measured live at 100,000 readings: the press raised 0.05 s after its publish with or without the
budget). The backlog is what a restart behind a flood leaves, and what a faster attacker (several boxes, a C client,
a slower InfluxDB) builds live, only more slowly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import SecretStr

from eldercare.backend import Backend
from eldercare.settings import Settings
from eldercare.stack import Broker, local_stack
from firmware_sim.scenario import generate
from gateway.deadletter import DeadLetterStore
from gateway.errors import Reason
from ingest.influx import InfluxClient

_LOG: Final = logging.getLogger(__name__)

SOS_IEEE: Final = "0x847127fffe0542eb"
"""The neighbour's call button: a Tuya TS0215A SOS key (its Z2M mapping is in gateway/z2m/models.toml)."""

SOS_NAME: Final = "hall sos"


@dataclass(frozen=True, slots=True)
class FloodRound:
    """One round: the budget setting and what the neighbour and the flood saw."""

    budget: str
    flood: int
    published_s: float
    """The attacker's process from start to exit (every message acknowledged by the broker)."""
    raised_s: float
    """The backend's start → the neighbour's alert committed."""
    drained_s: float
    """The backend's start → the whole flood handled (stored + counted)."""
    stored: int
    over_budget: int


@dataclass(frozen=True, slots=True)
class FloodReport:
    """Both rounds of one run."""

    rounds: tuple[FloodRound, ...]

    def summary(self) -> str:
        """A Markdown table, ratios against the ``off`` round."""
        base = self.rounds[0]
        lines = [
            f"Flood: {base.flood:,} valid readings of one home, then a Z2M neighbour's press, queued while the backend"
            " was away; times from its start",
            "",
            "| budget | flood published (s) | start → press raised (s) | ratio | start → flood handled (s) | stored |"
            " over_budget |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.rounds:
            ratio = r.raised_s / base.raised_s if base.raised_s > 0 else float("nan")
            lines.append(
                f"| {r.budget} | {r.published_s:.2f} | {r.raised_s:.2f} | {ratio:.2f}x | {r.drained_s:.2f} |"
                f" {r.stored:,} | {r.over_budget:,} |"
            )
        return "\n".join(lines)


def _registry(attacker: str, neighbour: str) -> dict[str, Any]:
    """Two simulator homes; the neighbour's devices are one Zigbee2MQTT call button (registered by IEEE address)."""
    doc: dict[str, Any] = dict(generate(homes=2, days=1, site_prefix=f"f{uuid.uuid4().hex[:5]}").registry)
    first, second = doc["sites"]
    first.update(site=attacker, gateway=f"gw-{attacker}")
    second.update(site=neighbour, gateway=f"gw-{neighbour}")
    second["devices"] = [{"device": SOS_IEEE, "kind": "call_button", "room": "hall"}]
    return doc


def _bridge_devices() -> bytes:
    return json.dumps(
        [
            {
                "ieee_address": SOS_IEEE,
                "friendly_name": SOS_NAME,
                "type": "EndDevice",
                "supported": True,
                "definition": {"model": "TS0215A_sos", "vendor": "Tuya", "description": "", "exposes": []},
            }
        ]
    ).encode()


class _Bridge:
    """The neighbour's Zigbee2MQTT bridge: a paho client with the home's account, base topic ``z2m/<site>``."""

    def __init__(self, broker: Broker, site: str) -> None:
        self.base = f"z2m/{site}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=MQTTProtocolVersion.MQTTv311)
        self.client.username_pw_set(site, broker.gateway_password(site))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, rest: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(f"{self.base}/{rest}", payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _flood_file(path: Path, flood: int, t0_ms: int) -> None:
    path.write_bytes(
        b"\n".join(b'{"seq":%d,"ts":%d,"occupied":true}' % (i, t0_ms + i) for i in range(1, flood + 1)) + b"\n"
    )


async def _round(broker: Broker, influx_url: str, work: Path, *, budget: str, flood: int) -> FloodRound:
    tag = uuid.uuid4().hex[:6]
    attacker, neighbour = f"fa{tag}", f"fn{tag}"
    broker.provision([attacker, neighbour])
    db = f"bench_flood_{tag}"
    settings = Settings(
        data_dir=work / tag,
        mqtt_host=broker.host,
        mqtt_port=broker.backend_port,
        mqtt_username=broker.backend_user,
        mqtt_password=SecretStr(broker.backend_password),
        mqtt_client_id=f"bench-flood-{tag}",
        influx_url=influx_url,
        influx_db=db,
        link_secret=SecretStr(secrets.token_urlsafe(24)),
        site_budget=budget,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    flood_path = work / f"flood-{tag}.txt"
    _flood_file(flood_path, flood, int(time.time() * 1000) - 3_600_000)
    registry = _registry(attacker, neighbour)
    influx = InfluxClient(url=influx_url, db=db)
    async with _running(Backend(settings, registry=registry)):
        pass  # its sessions now exist at the broker, which queues for them while the backend is away
    bridge = _Bridge(broker, neighbour)
    try:
        await asyncio.to_thread(bridge.publish, "bridge/devices", _bridge_devices())
        command = [
            sys.executable, "-m", "bench.flood", broker.host, str(broker.port), attacker,
            f"ec/v1/{attacker}/mattress/mat1/telemetry", str(flood_path),
        ]  # fmt: skip
        started = time.monotonic()
        env = {**os.environ, "FLOOD_PASSWORD": broker.gateway_password(attacker)}
        await asyncio.to_thread(subprocess.run, command, env=env, check=True)
        published_s = time.monotonic() - started
        await asyncio.to_thread(bridge.publish, SOS_NAME, b'{"action":"emergency","linkquality":90}')
    finally:
        await asyncio.to_thread(bridge.close)
    backend = Backend(settings, registry=registry)
    back = time.monotonic()
    async with _running(backend):
        raised_s = await asyncio.to_thread(_until_raised, backend, neighbour, back)
        with DeadLetterStore.in_data_dir(settings.data_dir) as letters:
            while True:
                stored = await _stored(influx, attacker)
                over = _over_budget(letters, attacker)
                if stored + over >= flood:
                    drained_s = time.monotonic() - back
                    break
                if time.monotonic() - back > 600:
                    raise RuntimeError(f"flood not handled after 600 s: {stored} stored, {over} counted")
                await asyncio.sleep(0.05)
    _LOG.info("round %s: raised %.2f s, drained %.2f s", budget, raised_s, drained_s)
    return FloodRound(budget, flood, published_s, raised_s, drained_s, stored, over)


@contextlib.asynccontextmanager
async def _running(backend: Backend) -> AsyncIterator[Backend]:
    """Run ``backend`` until the block ends (a clean stop keeps its broker sessions)."""
    stop = asyncio.Event()
    task = asyncio.create_task(backend.run(stop=stop))
    try:
        await asyncio.wait_for(backend.ready.wait(), 60)
        yield backend
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def _until_raised(backend: Backend, site: str, since: float) -> float:
    deadline = since + 600
    while time.monotonic() < deadline:
        if backend.store.list_alerts(site=site):
            return time.monotonic() - since
        time.sleep(0.005)
    raise RuntimeError(f"the neighbour's press raised no alert within 600 s ({site})")


async def _stored(influx: InfluxClient, site: str) -> int:
    results = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
    return int(results[0].series[0].values[0][1]) if results and results[0].series else 0


def _over_budget(letters: DeadLetterStore, site: str) -> int:
    kept = len(letters.query(site=site, reason=Reason.OVER_BUDGET, limit=1_000_000))
    return kept + sum(c.count for c in letters.counted(site=site) if c.reason is Reason.OVER_BUDGET)


def run_bench_flood(*, flood: int = 100_000, budget: str = "50/20000", data_dir: Path | None = None) -> FloodReport:
    """Run both rounds on a fresh local stack (in ``data_dir`` or a temporary directory)."""
    if flood < 1:
        raise ValueError("flood must be at least 1")
    with contextlib.ExitStack() as stack:
        work = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-flood-")))
        broker, influxd = stack.enter_context(local_stack(data_dir=work))

        async def both() -> FloodReport:
            rounds = [await _round(broker, influxd.url, work, budget=b, flood=flood) for b in ("off", budget)]
            return FloodReport(tuple(rounds))

        return asyncio.run(both())
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def publish_flood(host: str, port: int, account: str, password: str, topic: str, path: Path) -> int:
    """The attacker: every line of ``path`` published on ``topic`` at QoS 1, as fast as the broker acknowledges.

    Up to 1,000 unacknowledged at once; returns once every message is acknowledged (a process of its own: a box).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=account, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set(account, password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    sent = 0
    waiting: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()

    def acknowledged(info: mqtt.MQTTMessageInfo) -> None:
        info.wait_for_publish(120)
        if not info.is_published():
            raise RuntimeError("the broker did not acknowledge the flood within 120 s")

    try:
        for line in path.read_bytes().splitlines():
            if len(waiting) >= 30_000:  # paho numbers what it holds with 16-bit message ids
                acknowledged(waiting.popleft())
            waiting.append(client.publish(topic, line, qos=1))
            sent += 1
        while waiting:
            acknowledged(waiting.popleft())
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


if __name__ == "__main__":  # the attacker's process: host port account topic file (password in FLOOD_PASSWORD)
    host_, port_, account_, topic_, path_ = sys.argv[1:6]
    publish_flood(host_, int(port_), account_, os.environ["FLOOD_PASSWORD"], topic_, Path(path_))
