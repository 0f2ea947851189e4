"""Device status from last-seen time and battery: the cadence rule, and the query against a real influxd."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dash_helpers import Backend, login
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboards.app import create_app
from dashboards.device_report import Presence, presence
from detection.config import DetectConfig
from detection.models import Alert, AlertType, Severity
from eldercare.servers._child import free_port
from eldercare.settings import Settings
from ingest.influx import InfluxClient
from ingest.reader import InfluxReader, last_seen, last_seen_statement

MIN = 60_000
HOUR = 60 * MIN
CFG = DetectConfig()


def test_presence_follows_each_kinds_cadence() -> None:
    now = 100 * HOUR
    # mattress: every 30 s; late after 60 s, offline after 15 min (the offline detector's limit)
    assert presence("mattress", now - 50_000, now_ms=now, config=CFG) is Presence.ONLINE
    assert presence("mattress", now - 5 * MIN, now_ms=now, config=CFG) is Presence.LATE
    assert presence("mattress", now - 16 * MIN, now_ms=now, config=CFG) is Presence.OFFLINE
    # a door contact's heartbeat is 6-hourly: offline after two missed heartbeats + 5 min (the detector's rule)
    assert presence("door", now - 5 * HOUR, now_ms=now, config=CFG) is Presence.ONLINE
    assert presence("door", now - 12 * HOUR - 2 * MIN, now_ms=now, config=CFG) is Presence.LATE
    assert presence("door", now - 12 * HOUR - 6 * MIN, now_ms=now, config=CFG) is Presence.OFFLINE
    # a wristband leaves home with the elder: 3 h away is late, not offline
    assert presence("wristband", now - 3 * HOUR, now_ms=now, config=CFG) is Presence.LATE
    assert presence("gateway", now - 16 * MIN, now_ms=now, config=CFG) is Presence.OFFLINE
    assert presence("door", None, now_ms=now, config=CFG) is Presence.UNSEEN


def test_one_statement_with_bound_sites() -> None:
    q = last_seen_statement(3)
    assert q.count("SELECT") == 1 and '"mattress"' in q and '"gateway"' in q
    assert '"site" = $s2' in q and 'GROUP BY "site", "device"' in q and "$start" in q and "$end" in q


NOW = (int(time.time() * 1000) // MIN) * MIN


def _line(kind: str, site: str, device: str, ago_ms: int, *, battery: int | None = None, mtype: str = "status") -> str:
    t = NOW - ago_ms
    fields = f"received_ms={t}i" + (f",battery={battery}i" if battery is not None else "")
    return f"{kind},site={site},device={device},type={mtype} {fields} {t}"


POINTS = [
    # h1 (G01): mattress seconds ago, call button late (12 h 02 min: two heartbeats missed, not yet offline),
    # door offline (20 h) with a low battery, gateway fresh
    _line("mattress", "h1", "mat1", 90 * MIN, mtype="telemetry"),
    _line("mattress", "h1", "mat1", 10_000, mtype="telemetry"),
    _line("call_button", "h1", "btn1", 12 * HOUR + 2 * MIN, battery=80),
    _line("door", "h1", "door1", 30 * HOUR, battery=40),
    _line("door", "h1", "door1", 20 * HOUR, battery=15),
    _line("gateway", "h1", "gw-h1", 60_000),
    # h2 (G02): mattress silent for 2 h, call button fine, door never heard, gateway dark for 30 min
    _line("mattress", "h2", "mat1", 2 * HOUR, mtype="telemetry"),
    _line("call_button", "h2", "btn1", HOUR, battery=90),
    _line("gateway", "h2", "gw-h2", 30 * MIN),
    # h4 (G04, another street) and a point older than the look-back window
    _line("mattress", "h4", "mat1", 5_000, mtype="telemetry"),
    _line("door", "h2", "door1", 8 * 24 * HOUR, battery=99),
]


@pytest.fixture
def influx_reader(influxd: Any, unique_db: str) -> Iterator[InfluxReader]:
    from alerts.queries import run_async

    async def load() -> None:
        async with InfluxClient(url=influxd.url, db=unique_db) as c:
            await c.execute(f'CREATE DATABASE "{unique_db}"')
            await c.write("\n".join(POINTS).encode(), precision="ms")

    run_async(load)
    yield InfluxReader(client=InfluxClient(url=influxd.url, db=unique_db))


@pytest.mark.integration
async def test_last_seen_from_real_influxd(influx_reader: InfluxReader) -> None:
    seen = await last_seen(influx_reader, ["h1", "h2"], now_ms=NOW)
    assert {k: (s.kind, NOW - s.last_seen_ms, s.battery_pct) for k, s in seen.items()} == {
        ("h1", "mat1"): ("mattress", 10_000, None),
        ("h1", "btn1"): ("call_button", 12 * HOUR + 2 * MIN, 80),
        ("h1", "door1"): ("door", 20 * HOUR, 15),
        ("h1", "gw-h1"): ("gateway", 60_000, None),
        ("h2", "mat1"): ("mattress", 2 * HOUR, None),
        ("h2", "btn1"): ("call_button", HOUR, 90),
        ("h2", "gw-h2"): ("gateway", 30 * MIN, None),
    }  # h4 is not asked for; h2's door is older than the 7-day window
    assert await last_seen(influx_reader, [], now_ms=NOW) == {}


@pytest.fixture
def fixed_now_app(settings: Settings, backend: Backend, influx_reader: InfluxReader) -> FastAPI:
    return create_app(settings, backend=backend, telemetry=influx_reader, clock=lambda: NOW)


@pytest.mark.integration
def test_device_api_and_page_from_telemetry(fixed_now_app: FastAPI, backend: Backend) -> None:
    low = backend.raise_alert(
        Alert(site="h1", type=AlertType.LOW_BATTERY, severity=Severity.INFO, time_ms=NOW - HOUR,
              explanation="battery 15%", explanation_zh="电量 15%", device="door1")
    )  # fmt: skip
    with TestClient(fixed_now_app) as client:
        login(client, "W_C1")
        devices = client.get("/api/devices").json()
        status = {(d["site"], d["device"]): d["status"] for d in devices}
        assert status == {
            ("h1", "gw-h1"): "online",
            ("h1", "mat1"): "online",
            ("h1", "btn1"): "late",
            ("h1", "door1"): "offline",
            ("h2", "gw-h2"): "offline",
            ("h2", "mat1"): "offline",
            ("h2", "btn1"): "online",
            ("h2", "door1"): "unseen",
        }
        by_key = {(d["site"], d["device"]): d for d in devices}
        door = by_key[("h1", "door1")]
        assert (door["battery_pct"], door["open_alerts"], door["last_seen_ms"]) == (15, 1, NOW - 20 * HOUR)
        assert by_key[("h2", "btn1")]["gateway_status"] == "offline" and {d["source"] for d in devices} == {"telemetry"}
        offline = client.get("/api/devices?status=offline&kind=mattress").json()
        assert [(d["site"], d["device"]) for d in offline] == [("h2", "mat1")]

        page = client.get("/devices")
        assert page.status_code == 200 and 'data-source="telemetry"' in page.text
        # The tiles count what the list lists, gateways too (gw-h2 is offline: the tile said 2 while listing 3).
        assert 'id="count-offline"><b>3<' in page.text and 'id="count-unseen"><b>1<' in page.text
        tiles = [int(n) for n in re.findall(r'id="count-\w+"><b>(\d+)<', page.text)]
        assert sum(tiles) == page.text.count('<tr class="presence-') == len(devices) == 8
        assert "12 小时前" in page.text and 'class="battery low">15%' in page.text
        filtered = client.get("/devices?status=late").text
        assert filtered.count('data-status="late"') == 1 and 'data-device="btn1"' in filtered
        assert client.get("/devices?site=h2").text.count('<tr class="presence-') == 4
        assert "last report against how often its kind should report" in client.get("/devices?lang=en").text

        stats = client.get("/api/stats/monthly").json()
        assert (stats["devices_online"], stats["devices_total"], stats["device_source"]) == (3, 6, "telemetry")
        assert 'data-source="telemetry"' in client.get("/stats").text

        card = client.get("/residents/R1").text  # the resident page judges its home's devices the same way
        assert 'data-source="telemetry"' in card
        assert 'data-device="door1" data-status="offline"' in card and 'data-device="btn1" data-status="late"' in card
        assert 'class="battery low">15%' in card
        detail = client.get(f"/console/alerts/{low.id}").text  # and so does the console's resident card
        assert 'data-source="telemetry"' in detail and 'data-device="door1" data-status="offline"' in detail

        login(client, "W_G1")  # a grid worker: their own homes only, on the same page
        assert {(d["site"]) for d in client.get("/api/devices").json()} == {"h1"}
        assert 'data-site="h2"' not in client.get("/devices").text


def test_without_telemetry_status_comes_from_alerts(client: TestClient, backend: Backend) -> None:
    now = int(time.time() * 1000)
    backend.raise_alert(
        Alert(site="h1", type=AlertType.DEVICE_OFFLINE, severity=Severity.WARNING, time_ms=now - HOUR,
              explanation="mat1 silent", explanation_zh="床垫无数据", device="mat1")
    )  # fmt: skip
    login(client, "W_C1")
    devices = {(d["site"], d["device"]): d for d in client.get("/api/devices").json()}
    assert devices[("h1", "mat1")]["status"] == "offline" and devices[("h1", "mat1")]["open_alerts"] == 1
    assert devices[("h1", "btn1")]["status"] == "online" and devices[("h1", "btn1")]["source"] == "alerts"
    page = client.get("/devices").text
    assert 'data-source="alerts"' in page and 'id="count-offline"><b>1<' in page
    stats = client.get("/api/stats/monthly").json()
    assert (stats["devices_online"], stats["devices_total"], stats["device_source"]) == (5, 6, "alerts")


def test_unreachable_influx_falls_back_to_alerts(settings: Settings, backend: Backend) -> None:
    dead = InfluxReader(client=InfluxClient(url=f"http://127.0.0.1:{free_port()}", db="nothing"))
    with TestClient(create_app(settings, backend=backend, telemetry=dead)) as client:
        login(client, "W_C1")
        assert {d["source"] for d in client.get("/api/devices").json()} == {"alerts"}
        assert client.get("/api/stats/monthly").json()["device_source"] == "alerts"


def test_resident_card_and_nav_link_to_devices(client: TestClient) -> None:
    login(client, "W_C1")
    page = client.get("/residents/R1").text
    assert 'href="/devices?site=h1"' in page and 'href="/devices"' in page
