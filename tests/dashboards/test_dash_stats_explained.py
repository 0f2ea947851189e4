"""Statistics that say what they measure: the online rate over registered devices, one duration format, the SLA's
definition and target, outcomes of resolved alerts only, empty states, and a 大屏 whose numbers fit their tiles."""

from __future__ import annotations

import csv
import importlib
import io
import re
import time
from dataclasses import replace
from typing import Any

import pytest
from dash_fixtures import PASSWORD, registry
from dash_harness import LiveServer, browser_login
from dash_helpers import Backend, login, raise_now
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from test_dash_console_ux import _raise
from test_dash_stats import ALERTS, RESIDENTS, T0, VISITS

from alerts.lifecycle import Action, Channel
from dashboards.device_report import DeviceReport, Presence
from dashboards.i18n import Translator
from dashboards.listing import month_window
from dashboards.security import hash_password
from dashboards.stats import SLA_TARGET, format_duration, monthly_report
from detection.models import AlertType, Severity


def test_one_duration_format_seconds_minutes_hours_days() -> None:
    zh, en = Translator("zh"), Translator("en")
    assert [format_duration(s, zh) for s in (None, 0, 23, 59.4, 59.6, 180, 2700, 3590, 5400, 36 * 3600)] == [
        "-", "0 秒", "23 秒", "59 秒", "1 分钟", "3 分钟", "45 分钟", "1 小时", "1.5 小时", "1.5 天",
    ]  # fmt: skip
    assert [format_duration(s, en) for s in (23, 180, 5400)] == ["23 s", "3 min", "1.5 h"]


def test_outcomes_are_of_resolved_alerts_and_open_ones_apart() -> None:
    r = monthly_report(
        month="2026-03", alerts=ALERTS, residents=RESIDENTS, visits=VISITS, now_ms=T0 + 30 * 86_400_000,
        devices=(6, 10), device_source="telemetry", devices_unseen=3, devices_offline=1,
    )  # fmt: skip
    assert r.by_outcome == {"assisted_at_home": 3, "family_contacted": 2, "false_alarm": 1}
    assert (r.still_open, r.cleared) == (1, 1)
    # A device that never reported is not online: it counts in the denominator.
    assert r.device_online_rate == 6 / 10


def _acknowledged_after(backend: Backend, site: str, seconds: int) -> None:
    """An SOS at ``site`` acknowledged exactly ``seconds`` after it rose (both instants from one clock reading: a
    second boundary crossed between raising and acknowledging made the median read 24 s, CI 2026-12-07)."""
    now_ms = int(time.time() * 1000)
    alert = raise_now(backend, site, AlertType.SOS, Severity.CRITICAL, ago_s=seconds, device="btn1", now_ms=now_ms)
    backend.act(alert, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.PHONE, now_ms=now_ms)


def test_an_action_is_recorded_at_the_instant_its_caller_gives(backend: Backend) -> None:
    """``act`` and ``assign`` record the instant they are given: they took the service's own clock reading instead, so
    a second boundary crossed between raising and acknowledging made a 23-second median read 24 s (CI, twice)."""
    at = int(time.time() * 1000) - 3_600_000  # an hour away from the wall clock: a second reading cannot match it
    alert = raise_now(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=23, device="btn1", now_ms=at)
    assert backend.act(alert, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.PHONE, now_ms=at).acked_ms == at
    view = backend.assign(alert, "W_G1", actor="W_C1", now_ms=at + 5_000)
    assert [(e.action, e.time_ms) for e in view.events[1:]] == [("acknowledge", at), ("assign", at + 5_000)]


def _with_unseen(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Half the registered devices never reported (as if InfluxDB had nothing from them)."""
    real = importlib.import_module(module).device_report

    async def fake(*args: Any, **kwargs: Any) -> DeviceReport:
        rep = await real(*args, **kwargs)
        rows = tuple(replace(r, presence=Presence.UNSEEN) if i % 2 else r for i, r in enumerate(rep.rows))
        return replace(rep, rows=rows)

    monkeypatch.setattr(f"{module}.device_report", fake)


def test_stats_page_explains_rate_sla_outcomes_and_empty_load(
    client: TestClient, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_unseen(monkeypatch, "dashboards.api.routes.stats")
    _acknowledged_after(backend, "h1", seconds=23)
    _raise(backend, "h2", AlertType.FALL, Severity.CRITICAL)  # still open
    login(client, "W_C1")
    data = client.get("/api/stats/monthly").json()
    assert (data["devices_total"], data["devices_unseen"]) == (6, 3)
    assert data["device_online_rate"] == pytest.approx(data["devices_online"] / 6)
    assert data["still_open"] == 2 and "open" not in data["by_outcome"]
    page = client.get("/stats").text
    # The headline counts never-reported devices as not online, says so, and shows them next to it.
    online = data["devices_online"]
    assert re.search(rf'id="kpi-devices">{100 * online / 6:.1f}%<', page)
    assert re.search(rf'id="kpi-devices-of">{online} / 6<', page)
    assert re.search(r'id="kpi-unseen"[^>]*>3<', page)
    assert 'id="device-rate-note"' in page and "从未上报的设备计为不在线" in page
    # One duration format: a 23-second median reads 23 秒, never "0 分钟".
    assert "23 秒" in page and "0 / " not in page
    # The SLA names its definition and target.
    sla = re.search(r'<p[^>]*id="sla-definition"[^>]*>(.*?)</p>', page, re.S)
    assert sla and "5 分钟" in sla.group(1) and "30 分钟" in sla.group(1) and f"{SLA_TARGET:.0%}" in sla.group(1)
    assert 'id="kpi-sla"' in page
    # Outcomes of resolved alerts only; the still-open ones apart.
    outcomes = re.search(r'id="by-outcome">(.*?)</section>', page, re.S)
    assert outcomes and "待处理" not in outcomes.group(1)
    assert re.search(r'id="still-open">2<', page)
    # Nothing behavioural this month: the load table says so instead of showing bare headers.
    assert 'id="load-empty"' in page and "本月没有行为类告警" in page
    en = client.get("/stats?lang=en").text
    assert "23 s" in en and "Never-reported devices count as not online" in en


def test_sla_tile_says_so_when_no_alert_has_a_result_yet(client: TestClient, backend: Backend) -> None:
    """The SLA tile showed a bare "-" when no alert's SLA was decided; it says why, like the empty tables."""

    def tile(html: str) -> tuple[str, str]:
        m = re.search(r'<b id="kpi-sla" class="([^"]*)">([^<]*)<', html)
        assert m, html
        return m.group(1), m.group(2)

    login(client, "W_C1")
    assert client.get("/api/stats/monthly").json()["sla_rate"] is None
    assert tile(client.get("/stats").text) == ("muted", "本月没有告警")  # no alert at all: the tables' own words
    _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=10)  # within its 5 minutes: not decided yet
    assert client.get("/api/stats/monthly").json()["sla_rate"] is None
    assert tile(client.get("/stats").text) == ("muted", "尚无已处理告警")
    assert tile(client.get("/stats/report").text) == ("muted", "尚无已处理告警")
    assert tile(client.get("/stats?lang=en").text) == ("muted", "No handled alerts yet")


def test_sla_cells_and_device_tile_say_why_they_are_empty(client: TestClient, backend: Backend) -> None:
    """The per-community and per-grid SLA cells and the device tile showed a bare "-": they say why, like the tile."""

    def sla_cells(html: str) -> list[tuple[str, str]]:
        """(row name, SLA cell) of both response tables: the 5th cell of each row."""
        rows = re.findall(
            r"<tr><td>([^<]*)</td><td>\d+</td>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td([^>]*)>([^<]*)<", html
        )
        return [(name, text) for name, _, text in rows]

    _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=10)  # within its 5 minutes: not decided yet
    login(client, "W_C1")
    for path in ("/stats", "/stats/report"):
        assert sla_cells(client.get(path).text) == [("幸福社区", "尚无已处理告警"), ("第一网格", "尚无已处理告警")]
    assert re.search(r'<td class="muted">尚无已处理告警<', client.get("/stats").text)  # muted, as in the tile
    assert sla_cells(client.get("/stats?lang=en").text) == [
        ("幸福社区", "No handled alerts yet"), ("第一网格", "No handled alerts yet"),
    ]  # fmt: skip

    # A new community whose homes have no device registered yet: the tile says so instead of "-".
    doc = registry()
    doc["communities"].append({"id": "C04", "name": "新建社区", "street": "S02"})
    doc["grids"].append({"id": "G05", "name": "第五网格", "community": "C04"})
    doc["workers"].append({"id": "W_C4", "name": "孙值班", "role": "community_duty", "scope": "C04"})
    doc["sites"].append(
        {
            "site": "h5",
            "gateway": "gw-h5",
            "grid": "G05",
            "address": "新建社区 5 号",
            "residents": [{"id": "R5", "name": "周秀英"}],
        }
    )
    backend.store.import_registry(doc, now_ms=int(time.time() * 1000))
    backend.set_password_hash("W_C4", hash_password(PASSWORD), actor="system")
    client.cookies.clear()
    login(client, "W_C4")
    assert client.get("/api/stats/monthly").json()["devices_total"] == 0
    for path, words in (
        ("/stats", "尚无登记设备"),
        ("/stats/report", "尚无登记设备"),
        ("/stats?lang=en", "No devices registered"),
    ):
        page = client.get(path).text
        assert re.search(rf'<b id="kpi-devices" class="muted">{words}</b>', page), path
        tile = re.search(r'id="kpi-devices-tile">(.*?)</div>', page, re.S)
        assert tile and ">-<" not in tile.group(1)


def test_device_online_rate_is_labelled_now_not_the_months(client: TestClient) -> None:
    """The online rate is judged now whatever month is chosen (no device status history is kept): it says so."""
    now = int(time.time() * 1000)
    last = month_window(None, month_window(None, now)[1] - 1)[0]  # last month
    login(client, "W_C1")
    for path in (f"/stats?month={last}", "/stats", f"/stats/report?month={last}"):
        page = client.get(path).text
        tile = re.search(r'id="kpi-devices-tile">(.*?)</div>', page, re.S)
        assert tile and "当前设备在线率" in tile.group(1), path
        assert re.search(r'id="devices-as-of">截至 \d{4}-\d\d-\d\d \d\d:\d\d（此刻状态，不是月度统计）<', tile.group(1))
        note = re.search(r'id="device-rate-note">([^<]*)<', page)
        assert note and "不随所选月份变化" in note.group(1) and "不保存设备在线状态的历史" in note.group(1)
    en = client.get(f"/stats?month={last}&lang=en").text
    assert "Devices online now" in en and "(the state now, not a monthly figure)" in en
    assert "does not change with the month chosen" in en
    # The JSON and the CSV say when it was judged, too.
    data = client.get("/api/stats/monthly", params={"month": last}).json()
    assert abs(data["devices_as_of_ms"] - now) < 60_000
    rows = list(csv.reader(io.StringIO(client.get("/api/stats/monthly.csv", params={"month": last}).text)))
    as_of = [r for r in rows if r[:3] == ["devices", "*", "online_as_of"]]
    assert len(as_of) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", as_of[0][3])


def test_bigscreen_data_uses_the_same_rate_and_duration(
    client: TestClient, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_unseen(monkeypatch, "dashboards.web.bigscreen")
    _acknowledged_after(backend, "h1", seconds=23)
    login(client, "W_C1")
    d = client.get("/bigscreen/data").json()
    registered = sum(d["devices"].values())
    assert d["devices"]["unseen"] == 3 and registered == 6
    assert d["device_online_rate"] == pytest.approx((d["devices"]["online"] + d["devices"]["late"]) / registered)
    assert d["ack_p50"] == "23 秒" and d["on_site_p50"] == "-"


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 1920])
def test_bigscreen_numbers_fit_their_tiles(
    chromium: Browser, live_server: LiveServer, backend: Backend, width: int
) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 720}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_S1")
    page.goto(f"{live_server.url}/bigscreen")
    expect(page.locator("#big")).to_have_attribute("data-state", "ready")
    page.evaluate("document.getElementById('big-online').textContent = '100.0%'")  # the widest value it shows
    over = page.evaluate(
        """() => [...document.querySelectorAll('.big-kpi')].flatMap((tile) => {
             const box = tile.getBoundingClientRect();
             return [...tile.querySelectorAll('b, span, small')].filter((el) => {
               const r = el.getBoundingClientRect();
               return el.scrollWidth > el.clientWidth + 1 || r.right > box.right + 1 || r.left < box.left - 1;
             }).map((el) => el.id || el.textContent);
           })"""
    )
    assert over == []
    expect(page.locator("#big-online-of")).to_have_text(re.compile(r"^\d+ / \d+$"))
    context.close()


@pytest.mark.integration
@pytest.mark.browser
def test_resident_chart_says_when_there_is_no_data(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    page.goto(f"{live_server.url}/residents/R1")  # no telemetry store in the test app
    expect(page.locator("#chart-vitals-empty")).to_be_visible()
    expect(page.locator("#chart-vitals-empty")).to_contain_text("暂无数据")
    context.close()
