"""The partition workers' downlink on a real 3-node NATS cluster (issue 13 item 2, issue 18/19 remainder).

One gateway firmware in both modes: a home gateway with an outbox waits for the backend's ``stored`` confirmations
(docs/contract.md); a worker sends them through NATS once a batch is durable, so the outbox empties and nothing is
republished. A behavioural alert on a worker asks the elder first (``cmd: checkin`` to the home's call button and
wristband), and the call button's ``cancel``, an ordinary uplink event of the worker's partition, closes it as
"elder fine" without a page. The gateway is the simulator's, on a node's MQTT listener, as in the field.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from scale_helpers import Worker, worker_env
from support.backend import registry_for
from support.checkin import AWAY, FAST, WINDOW_S

from alerts.notices import SYSTEM
from alerts.store.away import AwayStore
from alerts.store.checkins import CheckInStore
from alerts.store.learned import SAVED_KEY, LearnedStore
from alerts.store.repository import AlertStore
from detection.config import DetectConfig
from detection.models import AlertType
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from eldercare.servers.postgres import Postgres
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import (
    encode_call_button_event,
    encode_door_event,
    encode_mattress_telemetry,
    encode_motion_event,
    encode_wristband_event,
)
from ingest.influx import InfluxClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A cluster of this module's own: its workers' consumers (epochs of the default lease bucket) must not meet
    the session cluster's tests, which use fresh lease buckets on the same partitions."""
    with NatsCluster(data_dir=tmp_path_factory.mktemp("nats-downlink")) as cluster:
        yield cluster


@pytest.fixture
def one_worker(
    nats_cluster: NatsCluster, influxd: Influxd, postgres_server: Postgres, unique_db: str, tmp_path: Path
) -> Iterator[tuple[Worker, str, str]]:
    """One partition worker (it owns every partition) with a registry of one home; yields it, the site and the
    alert store's URL."""
    yield from _one_worker(nats_cluster, influxd, postgres_server, unique_db, tmp_path, detect=FAST)


@pytest.fixture
def away_worker(
    nats_cluster: NatsCluster, influxd: Influxd, postgres_server: Postgres, unique_db: str, tmp_path: Path
) -> Iterator[tuple[Worker, str, str]]:
    """The same with the away-notice test's seconds-scale rules (out after 2 s, not back after 6 s)."""
    yield from _one_worker(nats_cluster, influxd, postgres_server, unique_db, tmp_path, detect=AWAY)


def _one_worker(
    nats_cluster: NatsCluster,
    influxd: Influxd,
    postgres_server: Postgres,
    unique_db: str,
    tmp_path: Path,
    *,
    detect: DetectConfig,
) -> Iterator[tuple[Worker, str, str]]:
    site = f"d{uuid.uuid4().hex[:6]}"
    registry = registry_for(site)
    (tmp_path / "registry.json").write_text(json.dumps(registry, ensure_ascii=False))
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    db_url = postgres_server.create_database(db_name)
    store = AlertStore(url=db_url)  # migrated once, before the worker starts; the home's devices are known
    store.import_registry(registry, now_ms=time.time_ns() // 1_000_000)
    store.close()
    env = worker_env(
        nats_cluster,
        influxd,
        unique_db,
        database_url=db_url,
        registry=tmp_path / "registry.json",
        confirm_interval_ms=200,
        detect=detect,
    )
    worker = Worker("w1", env, tmp_path)
    worker.start()
    try:
        worker.wait_ready()
        worker.wait_restored(site)  # the home's partition claimed and restored: what is published now is detected
        yield worker, site, db_url
    finally:
        worker.stop()
        postgres_server.drop_database(db_name)


def test_a_worker_sends_the_downlink_an_mqtt_gateway_subscribes_to(nats_cluster: NatsCluster) -> None:
    """The cluster's partition mapping leaves ``cmd`` subjects alone: a NATS publish reaches an MQTT subscriber."""
    got: list[tuple[str, bytes]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-hdown", protocol=MQTTProtocolVersion.MQTTv311)
    sub.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload)))
    subscribed: list[int] = []
    sub.on_subscribe = lambda *_a: subscribed.append(1)
    sub.connect("127.0.0.1", nats_cluster.nodes[1].mqtt_port)
    sub.loop_start()
    try:
        sub.subscribe("ec/v1/hdown/+/+/cmd", qos=1)
        _until(lambda: subscribed, 30)

        async def publish() -> None:
            from ingest.nats_bus import NatsBus, NatsDownlink

            async with NatsBus(servers=[nats_cluster.urls[0]], name="downlink-probe") as bus:
                await NatsDownlink(bus).publish("ec/v1/hdown/gateway/gw-hdown/cmd", b'{"cmd":"stored","seqs":{}}')

        asyncio.run(publish())
        _until(lambda: got, 30)
        assert got == [("ec/v1/hdown/gateway/gw-hdown/cmd", b'{"cmd":"stored","seqs":{}}')]
    finally:
        sub.disconnect()
        sub.loop_stop()


async def test_a_gateway_with_an_outbox_is_confirmed_by_a_worker(
    one_worker: tuple[Worker, str, str], nats_cluster: NatsCluster, influxd: Influxd, unique_db: str
) -> None:
    _worker, site, _db_url = one_worker
    n = 300
    gw = GatewayPublisher(
        site=site,
        password=None,
        port=nats_cluster.nodes[0].mqtt_port,
        announce=False,
        outbox=10_000,
        resend_after_s=600,
    )
    await asyncio.to_thread(gw.connect, timeout=30)
    try:
        t0 = time.time_ns() // 1_000_000 - 60_000
        messages = [
            encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=t0 + i, occupied=True, hr=60.0, rr=14.0, movement=1)
            for i in range(n)
        ]
        assert await asyncio.to_thread(gw.publish_all, messages, timeout=60) == n
        confirmed = await asyncio.to_thread(gw.wait_confirmed, timeout=60)
        print(f"worker confirmations: {gw.confirmed} of {n} confirmed, {gw.republished} republished")
        assert confirmed and gw.unconfirmed == 0, f"{gw.unconfirmed} of {n} readings never confirmed"
        assert gw.confirmed == n and gw.republished == 0 and gw.commands == []
    finally:
        await asyncio.to_thread(gw.close)
    influx = InfluxClient(url=influxd.url, db=unique_db)
    try:
        res = await influx.query('SELECT count("seq") FROM "mattress" WHERE "site" = $site', params={"site": site})
        assert res[0].series and res[0].series[0].values[0][1] == n  # confirmed means stored
    finally:
        await influx.aclose()


async def test_a_check_in_on_a_worker_is_sent_to_the_home_and_a_cancel_closes_it(
    one_worker: tuple[Worker, str, str], nats_cluster: NatsCluster
) -> None:
    worker, site, db_url = one_worker
    gw = GatewayPublisher(site=site, password=None, port=nats_cluster.nodes[2].mqtt_port, announce=False)
    await asyncio.to_thread(gw.connect, timeout=30)
    store = AlertStore(url=db_url)
    try:
        await asyncio.to_thread(_until, lambda: gw.subscribed, 30)  # the command subscription is in place
        now = time.time_ns() // 1_000_000
        gw.publish_all([encode_motion_event(**gw.wire.stamp("pir1"), ts=now, room="living")], timeout=30)
        # The worker's inactivity alert is held and the elder is asked on every device that can ask.
        commands = await asyncio.to_thread(lambda: gw.wait_for_commands(2, timeout=60.0))
        assert len(commands) >= 2, worker.log.read_text()[-3000:]
        assert sorted(c.topic.split("/", 3)[3] for c in commands[:2]) == ["call_button/btn1/cmd", "wristband/band1/cmd"]
        payload = json.loads(next(c.payload for c in commands if "call_button" in c.topic))
        assert payload["cmd"] == "checkin" and payload["window_s"] == WINDOW_S
        assert str(payload["prompt"]).startswith(f"{site}-")
        # "I'm fine": the button's cancel reaches the worker as an ordinary event of its partition.
        cancel = encode_call_button_event(**gw.wire.stamp("btn1"), ts=time.time_ns() // 1_000_000, event="cancel")
        gw.publish_all([cancel], timeout=30)
        steps = CheckInStore(store)
        answered = await _until_async(lambda: [s for s in steps.for_site(site) if s.what == "answered"], 30)
        assert answered[0].prompt_id == payload["prompt"] and answered[0].types == ("inactivity",)
        assert answered[0].time_ms - answered[0].prompt_ms < WINDOW_S * 1000
        # Answered inside the window: the held alert was dropped, never stored, nobody paged (the step says so).
        assert [s.what for s in steps.for_site(site)][-2:] == ["answered", "prompt"]
        assert store.list_alerts(site=site, alert_type=AlertType.INACTIVITY) == []
        # The worker saves what its engine learned about the home, for a console process of its own (issue 19).
        learned = await _until_async(lambda: LearnedStore(store).load(site).items(), 30)
        assert ("personal", False) in learned and any(k == SAVED_KEY for k, _ in learned)
        # An operator's log: the worker's own lines, not one per InfluxDB request (eldercare/logs.py).
        log = worker.log.read_text()
        assert "partition worker ready" in log and "HTTP Request" not in log, log[-2000:]
    finally:
        store.close()
        await asyncio.to_thread(gw.close)


@pytest.mark.scale  # ~35 s; the embedded backend's away-notice test (tests/test_e2e_away.py) is in the default run
async def test_an_away_notice_in_the_store_holds_a_workers_page_and_the_worker_ends_it_when_the_elder_is_back(
    away_worker: tuple[Worker, str, str], nats_cluster: NatsCluster
) -> None:
    """The clustered mode reads the same store: the partition worker holds the out-not-back page of a home under an
    away notice (外出报备), still raises an SOS, and ends the notice as the system once the elder is back."""
    worker, site, db_url = away_worker
    store = AlertStore(url=db_url)
    away = AwayStore(store)
    now = time.time_ns() // 1_000_000
    notice = away.register(
        site=site, starts_ms=now, ends_ms=now + 86_400_000, reason="住院", by_id="W01", by_name="王网格员", now_ms=now
    )
    gw = GatewayPublisher(site=site, password=None, port=nats_cluster.nodes[1].mqtt_port, announce=False)
    await asyncio.to_thread(gw.connect, timeout=30)
    try:
        st, ms = gw.wire.stamp, lambda: time.time_ns() // 1_000_000
        # Up and about at home until the home's engine on the worker has the notice (it says so), then out.
        in_force = f"away notice {notice.id} of {site} in force"
        for _ in range(60):
            gw.publish_all([encode_motion_event(**st("pir1"), ts=ms(), room="living")], timeout=30)
            if in_force in worker.log.read_text():
                break
            await asyncio.sleep(1.0)
        assert in_force in worker.log.read_text(), worker.log.read_text()[-3000:]
        held = f"away notice {notice.id} of {site}: "  # "… N behavioural alert(s) held so far"
        gw.publish_all([
            encode_door_event(**st("door1"), ts=ms(), event="open"),
            encode_door_event(**st("door1"), ts=ms() + 300, event="close"),
        ], timeout=30)  # fmt: skip
        # Out, not back within the limit: the worker's rule fires and the notice holds it (the worker says so).
        try:
            await asyncio.to_thread(
                _until, lambda: held in worker.log.read_text() and "held so far" in worker.log.read_text(), 60
            )
        except AssertionError:
            raise AssertionError(worker.log.read_text()[-4000:]) from None
        late = [AlertType.OUT_NOT_BACK, AlertType.NIGHT_DOOR, AlertType.INACTIVITY]
        assert [a for t in late for a in store.list_alerts(site=site, alert_type=t)] == []
        gw.publish_all([encode_wristband_event(**st("band1"), ts=ms(), event="sos")], timeout=30)
        await _until_async(lambda: store.list_alerts(site=site, alert_type=AlertType.SOS), 30)
        # Back for good: the door, then movement inside for longer than a visit (6 s here).
        gw.publish_all([encode_door_event(**st("door1"), ts=ms(), event="open")], timeout=30)
        for _ in range(30):
            gw.publish_all([encode_motion_event(**st("pir1"), ts=ms(), room="living")], timeout=30)
            if away.get(notice.id).ended_ms is not None:  # type: ignore[union-attr]
                break
            await asyncio.sleep(1.0)
        ended = away.get(notice.id)
        assert ended is not None and ended.ended_by == SYSTEM, worker.log.read_text()[-3000:]
    finally:
        store.close()
        await asyncio.to_thread(gw.close)


def _until(probe: object, timeout: float) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        time.sleep(0.05)


async def _until_async(probe: object, timeout: float) -> list[object]:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(probe)
        if found:
            return list(found)
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")
