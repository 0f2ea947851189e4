"""Resident charts: a fake reader for the route, and the real InfluxReader against a real influxd."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dash_helpers import Backend, login
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboards.app import create_app
from dashboards.telemetry import resident_charts
from detection.baseline import Baseline
from detection.config import DetectConfig
from eldercare.settings import Settings
from gateway.models import DeviceKind, MessageType
from ingest.influx import InfluxClient
from ingest.reader import Bucket, InfluxReader

HOUR = 3_600_000


class FakeReader:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    async def aggregate(self, kind: DeviceKind, field: str, **kw: Any) -> list[Bucket]:
        self.calls.append((kind.value, field, kw["site"]))
        return [Bucket(time_ms=kw["start_ms"], value=60.0), Bucket(time_ms=kw["start_ms"] + 600_000, value=None)]


BASELINE = Baseline(
    n_days=20,
    personal=True,
    bed_exit_limit_min=40,
    inactivity_limit_min=(50,) * 5,
    not_up_min=600,
    out_limit_min=240,
    hr_med=62.0,
    hr_mad=3.0,
    rr_med=14.0,
    rr_mad=1.0,
)


@pytest.fixture
def chart_app(settings: Settings, backend: Backend) -> tuple[FastAPI, FakeReader]:
    reader = FakeReader()
    app = create_app(settings, backend=backend, telemetry=reader, baselines=lambda site: BASELINE)
    return app, reader


def test_telemetry_route_is_scoped_and_shows_baseline(chart_app: tuple[FastAPI, FakeReader], backend: Backend) -> None:
    app, reader = chart_app
    with TestClient(app) as client:
        login(client, "W_G1")
        assert client.get("/api/elders/R2/telemetry").status_code == 404
        assert reader.calls == []
        data = client.get("/api/elders/R1/telemetry?range=7d").json()
    assert data["range"] == "7d" and data["end_ms"] - data["start_ms"] == 7 * 24 * HOUR
    assert {c[2] for c in reader.calls} == {"h1"}
    names = [s["name"] for s in data["series"]]
    assert names == ["心率 (次/分)", "呼吸 (次/分)", "在床", "开门次数", "活动次数"]
    k = DetectConfig().trend_mads
    assert data["baseline"] == {
        "personal": True,
        "days": 20,
        "hr": [round(62 - 3 * k, 1), round(62 + 3 * k, 1)],
        "rr": [round(14 - k, 1), round(14 + k, 1)],
    }
    assert data["series"][0]["points"][1][1] is None
    # Health readings are personal data: the read is audited, with what and which range (it was not).
    reads = [e.detail for e in backend.audit_log() if e.action == "resident.read" and e.entity_id == "R1"]
    assert reads == [{"what": "telemetry", "range": "7d"}], reads


def test_telemetry_unconfigured_is_503(client: TestClient) -> None:
    login(client, "W_G1")
    assert client.get("/api/elders/R1/telemetry").status_code == 503


@pytest.mark.integration
async def test_charts_from_real_influxd(influxd: Any, unique_db: str) -> None:
    now = (int(time.time() * 1000) // HOUR) * HOUR
    lines = []
    for i in range(12):
        t = now - (12 - i) * 600_000
        lines.append(f"mattress,site=h1,device=mat1,type=telemetry hr={60 + i}.0,rr=14.0,occupied=true {t}")
        lines.append(f"motion,site=h1,device=pir1,type=telemetry count={i}i,window_s=600i {t}")
    lines.append(f"door,site=h1,device=door1,type=event,event=open received_ms={now}i {now - 1_800_000}")
    lines.append(f"door,site=h1,device=door1,type=event,event=close received_ms={now}i {now - 1_700_000}")
    lines.append(f"mattress,site=h2,device=mat1,type=telemetry hr=99.0,rr=30.0,occupied=false {now - 600_000}")
    async with InfluxClient(url=influxd.url, db=unique_db) as client:
        await client.execute(f'CREATE DATABASE "{unique_db}"')
        await client.write("\n".join(lines).encode(), precision="ms")
        data = await resident_charts(InfluxReader(client=client), site="h1", range_key="24h", now_ms=now, baseline=None)
    hr = [v for _, v in data["series"][0]["points"] if v is not None]
    assert hr == [float(60 + i) for i in range(12)]  # h2's 99 bpm is not mixed in
    assert data["series"][0]["band"] == [40.0, 130.0]  # no personal baseline yet: the safety floors
    bed = [v for _, v in data["series"][2]["points"] if v is not None]
    assert bed and set(bed) == {1.0}
    assert sum(v or 0 for _, v in data["series"][3]["points"]) == 2
    assert sum(v or 0 for _, v in data["series"][4]["points"]) == sum(range(12))
    assert MessageType.EVENT.value == "event"


@pytest.mark.integration
def test_visit_list_ranks_declining_activity_first(
    influxd: Any, unique_db: str, settings: Settings, backend: Backend
) -> None:
    """h2's motion fell to 40% of its usual level: R2 tops W_C1's visit list with the reason shown."""
    from alerts.queries import run_async

    day = 24 * HOUR
    now = int(time.time() * 1000)
    lines = []
    for d in range(35):  # one daily total at mid-day offsets, clear of the window edges
        for site in ("h1", "h2"):
            count = 40 if (site == "h2" and d < 7) else 100
            t = now - d * day - day // 2
            lines.append(f"motion,site={site},device=pir1,type=telemetry count={count}i,window_s=86400i {t}")
    client = InfluxClient(url=influxd.url, db=unique_db)

    async def load() -> None:
        async with InfluxClient(url=influxd.url, db=unique_db) as c:
            await c.execute(f'CREATE DATABASE "{unique_db}"')
            await c.write("\n".join(lines).encode(), precision="ms")

    run_async(load)
    app = create_app(settings, backend=backend, telemetry=InfluxReader(client=client))
    with TestClient(app) as tc:
        login(tc, "W_C1")
        page = tc.get("/m/visits").text
    first = page.index('data-resident="R2"')
    assert first < page.index('data-resident="R1"')
    assert "活动量下降 60%" in page[first : first + 800]


def test_visit_list_shows_an_unusual_day_from_the_engine_baseline(settings: Settings, backend: Backend) -> None:
    import msgspec

    odd = msgspec.structs.replace(BASELINE, routine_score=2.6, routine_drivers=("activity", "wake_min"))
    app = create_app(settings, backend=backend, baselines=lambda site: odd if site == "h2" else BASELINE)
    with TestClient(app) as tc:
        login(tc, "W_C1")
        page = tc.get("/m/visits").text
        english = tc.get("/m/visits?lang=en").text
    first = page.index('data-resident="R2"')
    assert first < page.index('data-resident="R1"')
    assert "作息异常 (活动量, 起床时间)" in page[first : first + 800]
    assert "unusual day (activity, wake time)" in english
