"""The away notice (外出报备) form of the resident page and the phone page, in Debian's chromium through Playwright."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
from dash_harness import LiveServer, browser_login
from dash_helpers import Backend
from playwright.sync_api import Browser, expect

from alerts.store.away import AwayStore
from dashboards.listing import TZ

pytestmark = [pytest.mark.integration, pytest.mark.browser]
PHONE: Any = {"width": 390, "height": 844}


def _local(days: float) -> str:
    """A ``datetime-local`` value ``days`` from now, Beijing time."""
    return (dt.datetime.now(TZ) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_resident_page_registers_and_ends_an_away_notice(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    page.goto(f"{live_server.url}/residents/R1")
    section = page.locator("#away")
    expect(section.locator("#away-none")).to_be_visible()
    form = section.locator("#away-form")
    # a return too far ahead is refused in the section, what was typed is kept, nothing is stored
    form.locator("input[name=ends]").fill(_local(120))
    form.locator("input[name=reason]").fill("住女儿家")
    form.locator("#away-register").click()
    expect(section.locator("#away-error")).to_have_text("预计返回时间须在 90 天之内")
    expect(section.locator("input[name=reason]")).to_have_value("住女儿家")
    assert AwayStore(backend.store).of_site("h1") == []
    # a valid one: the notice in force with its line and the back-home button, instead of the form
    section.locator("input[name=ends]").fill(_local(6))
    section.locator("#away-register").click()
    expect(section.locator("#away-active")).to_contain_text(
        re.compile(r"外出至 \d+月\d+日 \d\d:\d\d · 住女儿家 · 登记人 王值班")
    )
    expect(section.locator("#away-form")).to_have_count(0)
    [notice] = AwayStore(backend.store).active(int(time.time() * 1000))
    assert (notice.site, notice.created_by, notice.reason) == ("h1", "W_C1", "住女儿家")
    page.goto(f"{live_server.url}/residents")
    expect(page.locator('tr[data-away="h1"] .away-badge')).to_be_visible()
    page.goto(f"{live_server.url}/residents/R1")
    page.locator("#away-end").click()
    expect(page.locator("#away-message")).to_have_text("外出报备已结束")
    expect(page.locator("#away-none")).to_be_visible()
    expect(page.locator("#away-history li")).to_contain_text("由 王值班 结束")
    assert AwayStore(backend.store).active(int(time.time() * 1000)) == []
    assert [e.action for e in backend.audit_log() if e.action.startswith("away.")] == ["away.ended", "away.registered"]
    context.close()


def test_grid_worker_phone_page_is_one_tap_from_my_residents(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    page.goto(f"{live_server.url}/m/residents")
    page.locator("a.away-link").click()
    expect(page).to_have_url(f"{live_server.url}/m/residents/R1/away")
    page.locator("input[name=ends]").fill(_local(3))
    page.locator("input[name=reason]").fill("住院")
    page.locator("#away-register").click()
    expect(page.locator("#away-active")).to_contain_text("住院 · 登记人 李网格")
    page.goto(f"{live_server.url}/m/residents")
    expect(page.locator('[data-away="h1"] .away-badge')).to_be_visible()
    context.close()
