"""Issue 15: page titles, the statistics page's month handling and report heading, the escalation-gap banner and
start-up warning, and the 大屏 overview with live numbers (chromium)."""

from __future__ import annotations

import logging
import re
import time

import pytest
from dash_harness import LiveServer, TestStoreBackend, browser_login
from dash_helpers import Backend, login
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from test_dash_console_ux import _raise, _shot

from dashboards.app import create_app
from dashboards.listing import month_window
from detection.models import AlertType, Severity
from eldercare.settings import Settings


def _title(html: str) -> str:
    m = re.search(r"<title>(.*?)</title>", html, re.S)
    assert m, html[:300]
    return m.group(1).strip()


def test_every_page_has_its_own_title(client: TestClient) -> None:
    login(client, "W_C1")
    pages = ["/console", "/residents", "/residents/R1", "/devices", "/stats", "/stats/report", "/registry",
             "/workers", "/bigscreen", "/m", "/m/residents", "/m/visits"]  # fmt: skip
    titles = {p: _title(client.get(p).text) for p in pages}
    assert len(set(titles.values())) == len(pages), titles
    assert titles["/console"].startswith("告警值守")
    assert titles["/residents/R1"].startswith("张桂英")


def test_stats_month_picker_bad_month_and_report_heading(client: TestClient) -> None:
    login(client, "W_C1")
    r = client.get("/stats?month=bogus")
    assert r.status_code == 422  # the page still renders this month, with a notice and the picker
    assert 'id="bad-month"' in r.text and 'type="month"' in r.text
    r = client.get("/stats/report?month=2026-02")
    assert r.status_code == 200
    assert re.search(r'id="report-area">幸福社区<', r.text)
    assert "2026-02-01 – 2026-02-28" in r.text


def test_stats_future_month_is_refused_like_a_malformed_one(client: TestClient) -> None:
    """``?month=2099-01`` showed an empty month as if it were real: refused with the reason, as a malformed month."""
    login(client, "W_C1")
    this, _, end = month_window(None, int(time.time() * 1000))
    after = month_window(None, end)[0]  # the very next month is already the future

    def notice(html: str) -> str:
        m = re.search(r'id="bad-month">([^<]*)<', html)
        assert m, html[:2000]
        return m.group(1)

    for month in ("2099-01", after):
        for path in ("/stats", "/stats/report"):
            r = client.get(path, params={"month": month})
            assert r.status_code == 422, (path, month)
            assert notice(r.text) == f"{month} 尚未到来，没有数据；已显示本月", path
            assert re.search(rf"<h1>[^<]*· {this}</h1>", r.text)  # this month is shown, not an empty future one
        assert f'value="{this}" id="month-picker"' in client.get("/stats", params={"month": month}).text
    r = client.get("/stats", params={"month": "2026-13"})  # malformed: the same notice, its own reason
    assert r.status_code == 422 and notice(r.text) == "月份格式不正确（应为 YYYY-MM），已显示本月"
    en = notice(client.get("/stats?month=2099-01&lang=en").text)
    assert en == "2099-01 has not come yet, so it has no data; showing this month"
    assert client.get("/stats", params={"month": this}).status_code == 200
    # The JSON and CSV refuse it too, with the same 422 body as a malformed month's (FastAPI's list of errors).
    for path in ("/api/stats/monthly", "/api/stats/monthly.csv"):
        r = client.get(path, params={"month": "2099-01"})
        assert r.status_code == 422, path
        errors = [(e["loc"], e["msg"]) for e in r.json()["detail"]]
        assert errors == [(["query", "month"], "month 2099-01 has not come yet")]
        assert client.get(path, params={"month": "2026-13"}).json()["detail"][0]["loc"] == ["query", "month"]
        assert client.get(path, params={"month": this}).status_code == 200


def test_escalation_gap_banner_and_startup_warning(
    settings: Settings, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.set_worker_active("W_S1", False, actor="admin")  # nobody left to escalate to on 东城街道
    with caplog.at_level(logging.WARNING, logger="dashboards.web.gaps"):
        app: FastAPI = create_app(settings, backend=backend)
    assert any("S01" in r.getMessage() and "street" in r.getMessage() for r in caplog.records)
    with TestClient(app, base_url="http://testserver") as client:
        login(client, "W_C1")
        page = client.get("/console").text
        assert 'id="gap-banner"' in page and "东城街道" in page
        backend.set_worker_active("W_S1", True, actor="admin")
        assert 'id="gap-banner"' not in client.get("/console").text


def test_queue_shows_repeats_state_colours_and_translated_rooms(client: TestClient, backend: Backend) -> None:
    first = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=30, device="btn1")
    if isinstance(backend, TestStoreBackend):  # the real store merges a repeat into the open alert
        assert _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, device="btn1") == first
    login(client, "W_C1")
    queue = client.get("/console/queue").text
    assert 'class="q-item sev-critical st-open life' in queue
    if isinstance(backend, TestStoreBackend):
        assert "重复 2 次" in queue
    detail = client.get(f"/console/alerts/{first}").text
    assert "卧室" in detail and "bedroom" not in detail  # room names in the Chinese UI
    assert "系统</b> 产生告警" in detail  # history: who and what, not "system · raised"
    assert "act-acknowledge" in detail
    csrf = login(client, "W_C1")
    acked = client.post(f"/console/alerts/{first}/act", data={"csrf": csrf, "action": "acknowledge"}).text
    assert "act-acknowledge" not in acked and "act-on_site" in acked  # only the actions valid now
    refused = client.post(f"/console/alerts/{first}/act", data={"csrf": csrf, "action": "resolve"}).text
    assert "请选择处置结果" in refused


@pytest.mark.integration
@pytest.mark.browser
def test_bigscreen_shows_live_numbers(chromium: Browser, live_server: LiveServer, backend: Backend) -> None:
    now_s = time.time()
    _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=90)
    _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    # "Today" is the console's local day (UTC+8): just after midnight the older alert belongs to yesterday (the
    # suite failed once at 00:0x Beijing time).
    midnight_s = (now_s + 8 * 3600) // 86400 * 86400 - 8 * 3600
    today = sum(1 for ago in (90, 600) if now_s - ago >= midnight_s)
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_S1")
    page.goto(f"{live_server.url}/bigscreen")
    expect(page.locator("#big")).to_have_attribute("data-state", "ready")
    expect(page.locator("#big-active")).to_have_text("2")
    expect(page.locator("#big-unacked")).to_have_text("2")
    expect(page.locator("#big-today")).to_have_text(str(today))
    # No telemetry store in the test app: status from alerts, no device alert open, so 9 of 9 devices are online.
    expect(page.locator("#big-online")).to_have_text("100.0%")
    expect(page.locator("#big-online-of")).to_have_text("9 / 9")
    expect(page.locator("#chart-state canvas")).to_have_count(1)
    _raise(backend, "h3", AlertType.FALL, Severity.CRITICAL)  # the screen refreshes by itself
    expect(page.locator("#big-active")).to_have_text("3", timeout=10_000)
    time.sleep(0.3)  # let the charts finish their frame for the screenshot (not an assertion)
    _shot(page, "bigscreen.png")
    context.close()
