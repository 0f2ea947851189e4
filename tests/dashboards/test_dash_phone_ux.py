"""Issue 15 on a phone: the grid worker's one-tap link page, outcome choice, live list (Debian's chromium)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from dash_harness import LiveServer, browser_login, raise_sos
from dash_helpers import Backend, alert_of, login
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from test_dash_console_ux import _shot

PHONE: Any = {"width": 390, "height": 844}


@pytest.mark.integration
@pytest.mark.browser
def test_link_page_calls_map_on_my_way_and_outcome_must_be_chosen(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    alert_id = raise_sos(backend)
    token = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="view", now_ms=int(time.time() * 1000))
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{live_server.url}/m/{token}")  # straight from the notification, not logged in
    expect(page.locator("a.tel-elder")).to_have_attribute("href", "tel:13900000001")
    expect(page.locator("a.tel-contact")).to_have_attribute("href", "tel:13700000001")
    expect(page.locator("a.tel-contact")).to_contain_text("张明")
    expect(page.locator("#map-link")).to_have_attribute(
        "href", f"https://uri.amap.com/search?keyword={quote('张桂英家 h1 号')}"
    )
    expect(page.locator("button.act-en_route")).to_have_text("我已出发")
    expect(page.locator("select[name=outcome]")).to_have_value("")  # never defaults to 误报
    _shot(page, "phone-link.png")
    page.locator("button.act-resolve").click()  # without choosing: the browser refuses to submit
    expect(page.locator("select[name=outcome]:invalid")).to_have_count(1)
    page.locator("button.act-en_route").click()
    expect(page.locator("#alert-state")).to_have_text("正在赶往")
    page.select_option("select[name=outcome]", "sent_to_hospital")
    page.locator("button.act-resolve").click()
    expect(page.locator("#alert-state")).to_have_text("已处置")
    assert alert_of(backend, alert_id).outcome == "sent_to_hospital"
    context.close()


@pytest.mark.integration
@pytest.mark.browser
def test_phone_list_updates_live_has_logout_and_devices_stay_phone(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    expect(page).to_have_url(f"{live_server.url}/m")
    expect(page.locator("#live")).to_have_class("live ok")
    alert_id = raise_sos(backend)  # raised while the list is open
    expect(page.locator(f'a[data-alert="{alert_id}"]')).to_be_visible(timeout=2000)
    _shot(page, "phone-alerts.png")
    page.click(".tabs a[href='/devices?m=1']")
    expect(page.locator("header.phone-top")).to_be_visible()
    expect(page.locator("table.devices-table thead")).to_be_hidden()
    page.click("#logout")
    expect(page).to_have_url(f"{live_server.url}/login")
    context.close()


def test_resolve_without_outcome_is_refused_on_every_phone_path(client: TestClient, backend: Backend) -> None:
    alert_id = raise_sos(backend)
    now = int(time.time() * 1000)
    token = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="resolve", now_ms=now)
    r = client.post(f"/m/{token}", data={})
    assert r.status_code == 200 and "请先选择处置结果" in r.text
    assert alert_of(backend, alert_id).state == "open"
    csrf = login(client, "W_G1")
    r = client.post(f"/m/alerts/{alert_id}/act", data={"csrf": csrf, "action": "resolve"}, follow_redirects=True)
    assert "请先选择处置结果" in r.text
    assert alert_of(backend, alert_id).state == "open"
