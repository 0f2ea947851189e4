"""Issue 18 item 1 and issue 13 R2: why ``$share`` subscriptions are not a way to scale out, on the real mosquitto.

mosquitto hands a shared subscription's messages to the group's members round-robin *per message*: a home's
readings are split across processes (each running a detection engine on its fragment sees false silences), and
any account allowed to read a topic at delivery time can join the group and take its turn (issue 13, R2: the
gateway's ACL denies the read, so its share is dropped). The share-group setting is therefore refused; several
processes scale out by owning whole homes (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from gw_helpers import MakeListener, directory_for, site_filters
from pydantic import SecretStr, ValidationError
from test_gw_broker import gateway, of_site, running
from test_gw_hostile import Hostile, hostile  # noqa: F401 - the fixture is used by name

from detection.config import DetectConfig
from detection.engine import Engine
from detection.models import Alert, AlertType
from eldercare.pipeline import run_pipeline
from eldercare.servers.influxd import Influxd
from eldercare.settings import Settings
from eldercare.stack import Broker
from firmware_sim.wire import WireMessage, encode_mattress_telemetry
from gateway.deadletter import DeadLetterStore
from gateway.models import DeviceKind, Reading
from gateway.service import GatewayService, ListSink
from ingest.influx import InfluxClient

pytestmark = pytest.mark.integration

GAP_S = 2.0
"""The home's mattress reports every 2 s (wall clock: detection timers run on arrival time)."""


def _detect(readings: list[Reading], *, offline_after_s: int, until_ms: int) -> list[Alert]:
    """Alerts one detection engine raises on ``readings`` (arrival order), with its clock run on to ``until_ms``."""
    engine = Engine(config=DetectConfig(site_offline_after_s=offline_after_s))
    alerts = engine.process_many(readings)
    return alerts + engine.advance(until_ms)


def _max_gap_ms(readings: list[Reading]) -> int:
    times = [r.received_ms for r in readings]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


async def test_share_subscriptions_split_a_home_across_detection_engines(
    broker: Broker, make_listener: MakeListener, unique_site: str, deadletter: DeadLetterStore
) -> None:
    """Two members of one ``$share`` group each see a fragment of a home: a false site-offline the whole never has."""
    site = unique_site
    group = f"g{uuid.uuid4().hex[:8]}"
    shared = tuple(f"$share/{group}/{f}" for f in site_filters(site))
    sinks = [ListSink(), ListSink()]
    members = [await make_listener(subscriptions=shared) for _ in sinks]
    services = [GatewayService(directory=directory_for(site), deadletter=deadletter, sink=s) for s in sinks]
    async with running(services[0], members[0]), running(services[1], members[1]), gateway(broker, site) as gw:
        for _ in range(8):  # the gateway's online status went to one member; the mattress alternates
            now = time.time_ns() // 1_000_000
            msg = encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=now, occupied=True, hr=60, rr=14)
            await asyncio.to_thread(gw.publish_all, [msg])
            await asyncio.sleep(GAP_S)  # pacing the home, not waiting for a result
        for _ in range(500):
            if sum(len(of_site(s.readings, site, kind=DeviceKind.MATTRESS)) for s in sinks) >= 8:
                break
            await asyncio.sleep(0.02)
    # What each process saw while the home was reporting (the gateway's clean goodbye at the end left out).
    fragments = [[r for r in of_site(s.readings, site) if r.fields.get("online") is not False] for s in sinks]
    assert all(len([r for r in f if r.kind is DeviceKind.MATTRESS]) == 4 for f in fragments), "not split per message"
    whole = sorted((r for f in fragments for r in f), key=lambda r: r.received_ms)
    mattress = [r for r in whole if r.kind is DeviceKind.MATTRESS]
    limit_s = _max_gap_ms(mattress) // 1000 + 1  # longer than any real silence of the home
    with_status = next(f for f in fragments if any(r.kind is DeviceKind.GATEWAY for r in f))
    assert _max_gap_ms([r for r in with_status if r.kind is DeviceKind.MATTRESS]) > limit_s * 1000
    until = mattress[-1].received_ms + 500
    assert [
        a for a in _detect(whole, offline_after_s=limit_s, until_ms=until) if a.type is AlertType.SITE_OFFLINE
    ] == []
    split = _detect(with_status, offline_after_s=limit_s, until_ms=until)
    assert any(a.type is AlertType.SITE_OFFLINE and not a.clears for a in split)


async def test_a_gateway_in_a_share_group_takes_its_turn_and_the_messages_are_dropped(
    broker: Broker,
    make_listener: MakeListener,
    unique_site: str,
    deadletter: DeadLetterStore,
    hostile: list[Hostile],  # noqa: F811
) -> None:
    """R2 on mosquitto 2.0.11: the ACL is checked at delivery, after the member was chosen; the reading is lost."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    group = f"g{uuid.uuid4().hex[:8]}"
    sink = ListSink()
    backend = await make_listener(subscriptions=tuple(f"$share/{group}/{f}" for f in site_filters(victim)))
    attacker = Hostile(broker, site, client_id=site)
    hostile.append(attacker)
    assert await asyncio.to_thread(attacker.wait_connack) == "Success"
    # The same filter as the backend's (a group is per group name and filter): the default deployment's
    # ``$share/<group>/ec/v1/+/+/+/event`` works the same way.
    await asyncio.to_thread(attacker.subscribe, f"$share/{group}/ec/v1/{victim}/+/+/event")
    service = GatewayService(directory=directory_for(site, victim), deadletter=deadletter, sink=sink)
    n = 40
    now = time.time_ns() // 1_000_000
    async with running(service, backend), gateway(broker, victim) as gw:
        doors = [
            WireMessage(f"ec/v1/{victim}/door/door1/event", b'{"event":"open","seq":%d,"ts":%d}' % (i, now))
            for i in range(1, n + 1)
        ]
        await asyncio.to_thread(gw.publish_all, doors)
        # Positive signal that everything was routed: a last event on another filter, which the attacker lacks.
        await asyncio.to_thread(
            gw.publish_all, [encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=now, occupied=False)]
        )
        await sink.wait_for(lambda rs: len(of_site(rs, victim, kind=DeviceKind.MATTRESS)) == 1, timeout=20)
    got = len(of_site(sink.readings, victim, kind=DeviceKind.DOOR))
    assert 0 < got < n and attacker.received == []  # the attacker's turns went nowhere


def test_the_share_group_setting_is_refused_with_a_pointer_to_scale_out() -> None:
    """``ELDERCARE_MQTT_SHARE_GROUP`` fails fast (zh + en), it is not silently ignored."""
    with pytest.raises(ValidationError) as err:
        Settings(mqtt_share_group="ingest")
    text = str(err.value)
    assert "ELDERCARE_MQTT_SHARE_GROUP" in text and "docs/scale-out.md" in text and "按住户" in text


async def test_a_gateway_joining_any_share_group_loses_no_reading_of_the_backend(
    broker: Broker,
    influxd: Influxd,
    unique_site: str,
    unique_db: str,
    tmp_path: Path,
    hostile: list[Hostile],  # noqa: F811
) -> None:
    """R2 closed: whatever ``$share`` group a gateway joins, InfluxDB holds exactly every reading sent."""
    site, victim = unique_site, unique_site + "v"
    broker.provision([site, victim])
    attacker = Hostile(broker, site, client_id=site)
    hostile.append(attacker)
    assert await asyncio.to_thread(attacker.wait_connack) == "Success"
    groups = ("ingest", "eldercare", "backend", "workers", "g", "bench")
    await asyncio.to_thread(
        attacker.subscribe,
        *(f"$share/{g}/{f}" for g in groups for f in ("ec/v1/#", "ec/v1/+/+/+/telemetry", "ec/v1/+/+/+/event")),
    )
    settings = Settings(
        data_dir=tmp_path,
        mqtt_host=broker.host,
        mqtt_port=broker.backend_port,
        mqtt_username=broker.backend_user,
        mqtt_password=SecretStr(broker.backend_password),
        mqtt_client_id=f"r2-{uuid.uuid4().hex[:8]}",
        influx_url=influxd.url,
        influx_db=unique_db,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_pipeline(settings, directory=None, stop=stop, ready=ready, setup_storage=True))
    influx = InfluxClient(url=influxd.url, db=unique_db)
    n = 300
    try:
        await asyncio.wait_for(ready.wait(), 60)
        now = time.time_ns() // 1_000_000
        async with gateway(broker, victim) as gw:
            sent = [
                encode_mattress_telemetry(**gw.wire.stamp("mat1"), ts=now - n + i, occupied=True, hr=60, rr=14)
                for i in range(n)
            ]
            await asyncio.to_thread(gw.publish_all, sent)
        count = 0
        for _ in range(600):
            res = await influx.query('SELECT count("hr") FROM "mattress" WHERE "site" = $s', params={"s": victim})
            count = int(res[0].series[0].values[0][1]) if res and res[0].series else 0
            if count >= n:
                break
            await asyncio.sleep(0.05)
        assert count == n
        assert attacker.received == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await influx.drop_database()
        await influx.aclose()
