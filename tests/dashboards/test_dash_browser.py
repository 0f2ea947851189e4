"""Acceptance in a real browser: Debian's chromium through Playwright against uvicorn on a free port."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from dash_harness import LiveServer, browser_login, raise_sos
from dash_helpers import Backend, alert_of
from playwright.sync_api import Browser, Page, expect

from detection.models import Alert, AlertType, Severity

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE: Any = {"width": 390, "height": 844}


def _shot(page: Page, name: str) -> None:
    """Screenshot every main page; written to docs/screenshots/ only with UPDATE_SCREENSHOTS=1."""
    target = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "ec-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)


def test_duty_officer_sees_sos_live_and_acknowledges(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    warn = Alert(
        site="h2",
        type=AlertType.INACTIVITY,
        severity=Severity.WARNING,
        time_ms=int(time.time() * 1000) - 25 * 60_000,
        explanation="No movement for 95 min (usual longest quiet spell 70 min).",
        explanation_zh="已 95 分钟无活动（平时最长 70 分钟）。",
    )
    backend.raise_alert(warn)
    context = chromium.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    expect(page).to_have_url(f"{live_server.url}/console")
    expect(page.locator("#live")).to_have_class("live ok")
    expect(page.locator(".q-item")).to_have_count(1)

    alert_id = raise_sos(backend)  # raised while the page is open: must appear without reload
    item = page.locator(f"#alert-{alert_id}")
    expect(item).to_be_visible(timeout=10_000)
    expect(page.locator(".q-item").first).to_have_attribute("data-alert", str(alert_id))  # critical first
    expect(item.locator(".clock[data-since]")).to_have_text(re.compile(r"^00:0\d$"))
    expect(item.locator(".on-site .clock[data-due]")).to_have_text(re.compile(r"^(30:00|29:\d\d)$"))
    expect(item.locator(".escalates")).to_contain_text("未接单将上报街道值班")  # unless taken: the street, in 5 min
    expect(item.locator(".escalates .clock[data-due]")).to_have_text(re.compile(r"^(05:00|04:\d\d)$"))

    item.click()
    detail = page.locator("#detail")
    expect(detail.locator(".explanation")).to_have_text("卧室一键呼叫按钮被按下。")
    expect(detail.locator(".resident-card")).to_contain_text("张桂英")
    expect(detail.locator(".resident-card")).to_contain_text("张明")
    _shot(page, "console.png")
    detail.locator("button.act-acknowledge").click()
    expect(detail.locator("#alert-state")).to_have_text("已接单")
    expect(item).to_have_attribute("data-state", "acknowledged", timeout=10_000)
    expect(item.locator(".escalates")).to_have_count(0)  # taken: nobody above is told
    assert alert_of(backend, alert_id).acked_ms is not None
    assert alert_of(backend, alert_id).events[-1].actor == "W_C1"

    page.click("#lang-switch")
    expect(page.locator("header nav")).to_contain_text("Alert console")
    expect(page.locator(f"#alert-{alert_id} .q-state")).to_have_text("acknowledged")
    context.close()


def test_grid_worker_phone_link_arrive_resolve(chromium: Browser, live_server: LiveServer, backend: Backend) -> None:
    alert_id = raise_sos(backend)
    token = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="view", now_ms=int(time.time() * 1000))
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    expect(page).to_have_url(f"{live_server.url}/m")
    expect(page.locator(f'a[data-alert="{alert_id}"]')).to_be_visible()
    _shot(page, "phone-alerts.png")

    page.goto(f"{live_server.url}/m/{token}")  # the notification link
    expect(page.locator("#alert-state")).to_have_text("待处理")
    page.locator("button.act-on_site").click()
    expect(page.locator("#alert-state")).to_have_text("已到场")
    _shot(page, "phone-alert.png")
    page.select_option("select[name=outcome]", "assisted_at_home")
    page.locator("button.act-resolve").click()
    expect(page.locator("#alert-state")).to_have_text("已处置")
    a = alert_of(backend, alert_id)
    assert a.state == "resolved" and a.outcome == "assisted_at_home" and a.on_site_ms is not None
    assert {e.actor for e in a.events[1:]} == {"W_G1"}

    page.goto(f"{live_server.url}/m/visits")
    expect(page.locator("#coverage")).to_have_text("0/1")
    page.locator("details summary").first.click()
    page.fill("textarea[name=note]", "精神状态良好")
    page.locator(".visit-form button").first.click()
    expect(page.locator("#coverage")).to_have_text("1/1")
    _shot(page, "phone-visits.png")

    page.click("#lang-switch")
    expect(page.locator(".tabs")).to_contain_text("My alerts")
    page.goto(f"{live_server.url}/devices?lang=zh")  # the grid worker's own homes, as cards on a phone
    expect(page.locator("table.devices-table tbody tr")).to_have_count(3)
    expect(page.locator("table.devices-table thead")).to_be_hidden()
    expect(page.locator("#device-source")).to_have_attribute("data-source", "alerts")
    _shot(page, "phone-devices.png")
    context.close()


def test_screenshots_of_desktop_pages(chromium: Browser, live_server: LiveServer, backend: Backend) -> None:
    raise_sos(backend, "h2")
    context = chromium.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    browser_login(page, live_server.url, "W_D")
    page.goto(f"{live_server.url}/residents")
    expect(page.locator("table.residents tbody tr")).to_have_count(4)
    expect(page.locator("table.residents")).not_to_contain_text("110101194001010024")
    _shot(page, "residents.png")
    page.goto(f"{live_server.url}/stats")
    expect(page.locator("#kpi-alerts")).to_have_text("1")
    _shot(page, "stats.png")
    page.goto(f"{live_server.url}/residents/R1?lang=en")
    expect(page.locator("h1")).to_contain_text("张桂英")
    _shot(page, "resident-en.png")
    context.close()


def test_resident_page_charts_from_influxd(
    chromium: Browser, influxd: Any, unique_db: str, settings: Any, backend: Backend
) -> None:
    """The resident page draws ECharts from a real influxd through the real InfluxReader."""
    from alerts.queries import run_async
    from dashboards.app import create_app
    from ingest.influx import InfluxClient
    from ingest.reader import InfluxReader

    hour = 3_600_000
    now = int(time.time() * 1000)
    lines = []
    for i in range(0, 24 * 6):
        t = now - i * 600_000
        night = (i // 6) % 24 < 8
        lines.append(
            f"mattress,site=h1,device=mat1,type=telemetry hr={58 + (i % 7)}.0,rr={13 + (i % 3)}.0,"
            f"occupied={'true' if night else 'false'} {t}"
        )
        lines.append(f"motion,site=h1,device=pir1,type=telemetry count={0 if night else 3 + i % 5}i,window_s=600i {t}")
    lines += [
        f"door,site=h1,device=door1,type=event,event=open received_ms={now}i {now - k * 5 * hour}" for k in range(4)
    ]
    # device health: heard from just now, a while ago, long ago (and h2's call button never)
    for site, device, kind, ago, battery in (
        ("h1", "gw-h1", "gateway", 60_000, None),
        ("h1", "mat1", "mattress", 20_000, None),
        ("h1", "btn1", "call_button", 2 * hour, 85),
        ("h1", "door1", "door", 3 * hour, 64),
        ("h2", "gw-h2", "gateway", 90_000, None),
        ("h2", "mat1", "mattress", 2 * hour, None),
        ("h2", "door1", "door", 20 * hour, 12),
    ):
        t = now - ago
        extra = f",battery={battery}i" if battery is not None else ""
        lines.append(f"{kind},site={site},device={device},type=status received_ms={t}i{extra} {t}")

    async def load() -> None:
        async with InfluxClient(url=influxd.url, db=unique_db) as c:
            await c.execute(f'CREATE DATABASE "{unique_db}"')
            await c.write("\n".join(lines).encode(), precision="ms")

    run_async(load)
    reader = InfluxReader(client=InfluxClient(url=influxd.url, db=unique_db))
    server = LiveServer(create_app(settings, backend=backend, telemetry=reader))
    server.start()
    try:
        context = chromium.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        browser_login(page, server.url, "W_C1")
        page.goto(f"{server.url}/residents/R1")
        expect(page.locator("#chart-vitals")).to_have_attribute("data-state", "ready")
        expect(page.locator("#chart-vitals canvas").first).to_be_visible()
        _shot(page, "resident.png")
        page.click("[data-range='7d']")
        expect(page.locator("#chart-vitals")).to_have_attribute("data-state", "ready")
        page.goto(f"{server.url}/registry")
        expect(page.locator(".tree")).to_contain_text("第一网格")
        _shot(page, "registry.png")
        page.click("header nav >> text=设备管理")
        expect(page.locator("#device-source")).to_have_attribute("data-source", "telemetry")
        expect(page.locator("tr[data-site='h2'][data-device='door1']")).to_have_attribute("data-status", "offline")
        expect(page.locator("tr[data-site='h2'][data-device='btn1']")).to_have_attribute("data-status", "unseen")
        expect(page.locator("#count-online b")).to_have_text("5")  # 3 devices and 2 gateways
        _shot(page, "devices.png")
        page.select_option("select[name=status]", "offline")
        page.click(".filters button[type=submit]")
        expect(page.locator("table.devices-table tbody tr")).to_have_count(2)
        context.close()
    finally:
        server.stop()


def test_officer_adds_and_deactivates_a_worker(chromium: Browser, live_server: LiveServer, backend: Backend) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    page.click("header nav >> text=人员管理")
    expect(page.locator("tr[data-worker]")).to_have_count(3)
    form = page.locator("#add-worker form")
    form.locator("input[name=worker_id]").fill("W_G9")
    form.locator("input[name=name]").fill("孙网格")
    form.locator("select[name=role]").select_option("grid_worker")
    form.locator("select[name=area]").select_option("G02")
    form.locator("input[name=phone]").fill("13800000099")
    form.locator("button[type=submit]").click()
    password = page.locator("#one-time-password").inner_text()
    expect(page.locator("tr[data-worker='W_G9']")).to_have_attribute("data-active", "true")
    _shot(page, "workers.png")

    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    worker = phone.new_page()
    worker.goto(f"{live_server.url}/login")
    worker.fill("input[name=username]", "13800000099")
    worker.fill("input[name=password]", password)
    worker.click("button[type=submit]")
    expect(worker).to_have_url(f"{live_server.url}/m")

    page.locator("tr[data-worker='W_G9'] button.deactivate").click()
    expect(page.locator("tr[data-worker='W_G9']")).to_have_attribute("data-active", "false")
    worker.reload()  # the open session ends at once
    expect(worker).to_have_url(re.compile(r"/login\?next=/m$"))
    worker.fill("input[name=username]", "W_G9")
    worker.fill("input[name=password]", password)
    worker.click("button[type=submit]")
    expect(worker.locator(".error")).to_have_text("账号或密码错误")
    assert backend.account("W_G9") is None
    assert {"worker.created", "worker.deactivated"} <= {e.action for e in backend.audit_log() if e.actor == "W_C1"}
    phone.close()
    context.close()
