"""The same district through one process and through the cluster raises the same alerts (issue 18 acceptance).

24 simulated homes (SOS, smoke, gas, fall, a night bed exit without return, one with return) are published at QoS 1
to mosquitto for one embedded backend (:class:`eldercare.backend.Backend`, SQLite store) and to the 3-node NATS
cluster for three partition workers (PostgreSQL store), with the same payloads at the same time. The stores must
hold the same (home, type, care day) set, each once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr
from scale_helpers import Devices, Worker, worker_env
from support.backend import running

from alerts.store.records import AlertRecord
from alerts.store.repository import AlertStore
from detection.config import DetectConfig
from detection.models import AlertType
from eldercare.backend import Backend
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from eldercare.servers.postgres import Postgres
from eldercare.settings import Settings, detect_config_from
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import (
    WireMessage,
    encode_call_button_event,
    encode_fall,
    encode_gas_alarm,
    encode_mattress_telemetry,
    encode_smoke_alarm,
)
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scale]

DAY_MS = 86_400_000
ROLES = ("sos", "smoke", "gas", "fall", "bed_exit", "back_in_bed")
EXPECTED = {
    "sos": {AlertType.SOS, AlertType.CALL_BUTTON},
    "smoke": {AlertType.SMOKE},
    "gas": {AlertType.GAS},
    "fall": {AlertType.FALL},
    "bed_exit": {AlertType.NIGHT_BED_EXIT},
}
BED_EXIT_MIN = 1.0


def _night_tz_offset_s() -> int:
    """A tz offset that makes "now" 01:00 local (the bed-exit rule is nightly)."""
    return (3600 - int(time.time()) % 86_400) % 86_400


def _district(prefix: str, now: int) -> tuple[dict[str, str], list[WireMessage]]:
    """Homes and their roles, and the first messages: three in-bed samples each, then the incidents."""
    roles = {f"{prefix}h{i:02d}": ROLES[i % len(ROLES)] for i in range(24)}
    first: list[WireMessage] = []
    for site, role in roles.items():
        first += [
            encode_mattress_telemetry(site=site, device="mat1", seq=1 + i, ts=now - 30_000 + i * 10_000, occupied=True)
            for i in range(3)
        ]
        if role == "sos":
            first.append(encode_call_button_event(site=site, device="btn1", seq=1, ts=now, event="press"))
        elif role == "smoke":
            first.append(encode_smoke_alarm(site=site, device="smk1", seq=1, ts=now, level=3))
        elif role == "gas":
            first.append(encode_gas_alarm(site=site, device="gas1", seq=1, ts=now, lel=25))
        elif role == "fall":
            first.append(encode_fall(site=site, device="wb1", seq=1, ts=now, confidence=0.95))
    return roles, first


def _bed(roles: dict[str, str], which: tuple[str, ...], *, seq: int, occupied: bool) -> list[WireMessage]:
    """A mattress sample, now, of the homes whose role is in ``which``."""
    ts = time.time_ns() // 1_000_000
    return [
        encode_mattress_telemetry(site=site, device="mat1", seq=seq, ts=ts, occupied=occupied)
        for site, role in roles.items()
        if role in which
    ]


def _care_day(cfg: DetectConfig, t_ms: int) -> int:
    return (t_ms + cfg.tz_offset_s * 1000 - cfg.day_boundary_min * 60_000) // DAY_MS


def _alerts(store: AlertStore, prefix: str) -> list[AlertRecord]:
    return [a for a in store.list_alerts(limit=5000) if a.site.startswith(prefix)]


async def _until_alert(store: AlertStore, site: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(lambda: store.list_alerts(site=site, limit=5)):
        assert time.monotonic() < deadline, f"no alert of {site} within {timeout:.0f} s"
        await asyncio.sleep(0.2)


async def test_the_cluster_raises_the_same_alerts_as_one_process(
    cluster: NatsCluster,
    broker: Broker,
    influxd: Influxd,
    postgres_server: Postgres,
    unique_db: str,
    tmp_path: Path,
) -> None:
    detect = {
        "checkin_window_s": 0,  # page at once in both (no elder to answer a check-in prompt here)
        "tz_offset_s": _night_tz_offset_s(),
        "bed_exit_floor_min": 0.5,
        "bed_exit_ceiling_min": 1.5,
        "bed_exit_default_min": BED_EXIT_MIN,
    }
    cfg = detect_config_from(detect)
    prefix = f"d{uuid.uuid4().hex[:6]}"
    now = time.time_ns() // 1_000_000
    roles, first = _district(prefix, now)
    sentinel = f"{prefix}zz"  # pressed after every timer of the district fell due: both sides then had their ticks
    broker.provision([*roles, sentinel])

    # One process: the embedded backend on mosquitto, its own InfluxDB database and SQLite store.
    one_db = f"one_{uuid.uuid4().hex[:8]}"
    (tmp_path / "one").mkdir()
    one = Backend(
        Settings(
            data_dir=tmp_path / "one",
            mqtt_host=broker.host,
            mqtt_port=broker.backend_port,
            mqtt_username=broker.backend_user,
            mqtt_password=SecretStr(broker.backend_password),
            mqtt_client_id=f"backend-{prefix}",
            influx_url=influxd.url,
            influx_db=one_db,
            link_secret=SecretStr("test-link-secret-0123456789"),
            detect=detect,
        )
    )
    # The cluster: three workers, PostgreSQL store.
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    db_url = postgres_server.create_database(db_name)
    AlertStore(url=db_url).close()
    env = worker_env(cluster, influxd, unique_db, database_url=db_url, detect=detect)
    workers = [Worker(f"w{i}", env, tmp_path) for i in (1, 2, 3)]
    for w in workers:
        w.start()
    for w in workers:
        w.wait_ready()
    devices = await asyncio.to_thread(Devices, [n.mqtt_port for n in cluster.nodes])
    gateways = {
        site: GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port, announce=False)
        for site in [*roles, sentinel]
    }
    cluster_store = AlertStore(url=db_url)

    def to_mosquitto(messages: list[WireMessage]) -> None:
        for site, gw in gateways.items():
            gw.publish_all([m for m in messages if m.topic.split("/")[2] == site], timeout=60)

    async def to_both(messages: list[WireMessage]) -> None:
        await asyncio.gather(
            asyncio.to_thread(to_mosquitto, messages),
            asyncio.to_thread(devices.publish, [(m.topic, m.payload) for m in messages]),
        )

    try:
        for gw in gateways.values():
            await asyncio.to_thread(gw.connect)
        async with running(one) as app:
            await asyncio.wait_for(app.recovered.wait(), 60)
            await to_both(first)
            exits_sent = time.monotonic()  # just before the exits' timestamps are taken
            await to_both(_bed(roles, ("bed_exit", "back_in_bed"), seq=4, occupied=False))
            await asyncio.sleep(10)
            await to_both(_bed(roles, ("back_in_bed",), seq=5, occupied=True))
            # Back in bed well within the limit on both sides, or the test's premise is broken (a slow box).
            assert time.monotonic() - exits_sent < BED_EXIT_MIN * 60 - 15
            # Every bed-exit limit has run out (plus ticks) before the sentinel's press is sent.
            await asyncio.sleep(max(0.0, exits_sent + BED_EXIT_MIN * 60 + 3 - time.monotonic()))
            ts = time.time_ns() // 1_000_000
            press = encode_call_button_event(site=sentinel, device="btn1", seq=1, ts=ts, event="press")
            await to_both([press])
            await _until_alert(app.store, sentinel)
            await _until_alert(cluster_store, sentinel)
            one_alerts = _alerts(app.store, prefix)
        cluster_alerts = _alerts(cluster_store, prefix)
    finally:
        cluster_store.close()
        for gw in gateways.values():
            gw.close()
        await asyncio.to_thread(devices.close)
        for w in workers:
            w.stop()
        for db in (one_db, unique_db):
            async with InfluxClient(url=influxd.url, db=db) as influx:
                await influx.drop_database()
        postgres_server.drop_database(db_name)

    def keys(records: list[AlertRecord]) -> Counter[tuple[str, str, int]]:
        return Counter((a.site, a.type, _care_day(cfg, a.raised_ms)) for a in records)

    one_keys, cluster_keys = keys(one_alerts), keys(cluster_alerts)
    # The reference itself raised what the district holds: each incident home its alert, no bed exit for the
    # elder back in bed within the limit.
    for site, role in roles.items():
        types = {t for s, t, _ in one_keys if s == site}
        if role in EXPECTED:
            assert types & EXPECTED[role], (site, role, types)
        else:
            assert AlertType.NIGHT_BED_EXIT not in types, (site, types, one_alerts)
    assert set(cluster_keys) == set(one_keys)
    assert max(cluster_keys.values()) == 1 and max(one_keys.values()) == 1  # no duplicates on either side
