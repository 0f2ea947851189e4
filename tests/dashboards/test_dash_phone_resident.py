"""A grid worker's phone: the resident page in the phone layout (call the elder and every contact, navigate to the
address, scoped and audited like the desktop page), no sideways scrolling, and touch targets of at least 44 px."""

from __future__ import annotations

from typing import Any

import pytest
from dash_harness import LiveServer, browser_login, raise_sos
from dash_helpers import Backend, login
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect
from test_dash_console_ux import _shot

PHONE: Any = {"width": 390, "height": 844}
MIN_TARGET_PX = 44


def test_phone_resident_page_calls_navigates_and_is_scoped_and_audited(client: TestClient, backend: Backend) -> None:
    login(client, "W_G1")
    listing = client.get("/m/residents").text
    assert 'href="/m/residents/R1"' in listing and 'href="/residents/R1"' not in listing
    assert "13900000001" not in listing  # masked in the list
    devices = client.get("/devices?m=1").text
    assert 'href="/m/residents/R1"' in devices  # the phone's device tab stays phone
    assert "InfluxDB" not in devices  # no database names for a grid worker
    filtered = client.get("/devices?m=1&status=offline").text
    assert 'href="/devices?m=1" id="filters-reset"' in filtered  # 重置 too (it led to the desktop page)
    r = client.get("/m/residents/R1")
    assert r.status_code == 200
    assert 'class="phone"' in r.text and 'class="tabs"' in r.text
    assert 'href="tel:13900000001"' in r.text and 'href="tel:13700000001"' in r.text
    assert 'id="map-link"' in r.text and 'href="geo:0,0?q=' in r.text
    reads = [e for e in backend.audit_log() if e.action == "resident.read" and e.entity_id == "R1"]
    assert reads and reads[0].actor == "W_G1"
    # Outside the worker's grid: the same 404 as a resident that does not exist, and nothing audited.
    before = len(backend.audit_log())
    other, missing = client.get("/m/residents/R2"), client.get("/m/residents/R999")
    assert other.status_code == missing.status_code == 404
    assert len(backend.audit_log()) == before


def test_desktop_resident_page_links_contacts_and_the_map(client: TestClient) -> None:
    login(client, "W_C1")
    page = client.get("/residents/R1").text
    assert 'href="tel:13700000001"' in page
    assert 'id="map-link"' in page


def _overflow(page: Page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _small_targets(page: Page) -> list[str]:
    """Visible links, buttons and form fields shorter than the 44 px touch target."""
    return page.evaluate(
        """(min) => [...document.querySelectorAll('a, button, input, select, textarea, summary')]
             .filter((el) => el.type !== 'hidden' && el.checkVisibility() && el.getClientRects().length)
             .map((el) => [el, el.getBoundingClientRect()])
             .filter(([, r]) => r.width > 0 && r.height < min)
             .map(([el, r]) => `${el.tagName.toLowerCase()}#${el.id}.${el.className} "${(el.textContent || el.name
                || '').trim().slice(0, 20)}" ${Math.round(r.height)}px`)""",
        MIN_TARGET_PX,
    )


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_phone_list_opens_the_phone_resident_page_without_sideways_scroll(
    chromium: Browser, live_server: LiveServer, backend: Backend, lang: str
) -> None:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    page.goto(f"{live_server.url}/m/residents?lang={lang}")
    page.locator(".m-card > a").first.tap()
    expect(page).to_have_url(f"{live_server.url}/m/residents/R1")
    expect(page.locator("nav.tabs")).to_be_visible()
    expect(page.locator("header.top nav")).to_have_count(0)  # not the desktop's three-line navigation
    expect(page.locator("a.tel-elder")).to_have_attribute("href", "tel:13900000001")
    expect(page.locator("a.tel-contact")).to_have_attribute("href", "tel:13700000001")
    for link in page.locator("a.tel, a.nav-link").all():
        box = link.bounding_box()
        assert box and box["height"] >= MIN_TARGET_PX
    # The elder's name and the call button are in the first screen, not half a screen down.
    call = page.locator("a.tel-elder").bounding_box()
    assert call and call["y"] + call["height"] <= PHONE["height"]
    width, inner = _overflow(page)
    assert width <= inner, f"{lang}: scrollWidth {width} > {inner}"
    _shot(page, f"phone-resident-{lang}.png")
    context.close()


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_phone_page_has_44px_touch_targets_and_no_sideways_scroll(
    chromium: Browser, live_server: LiveServer, backend: Backend, lang: str
) -> None:
    alert_id = raise_sos(backend)
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    pages = ["/m", f"/m/alerts/{alert_id}", "/m/residents", "/m/residents/R1", "/m/residents/R1/away",
             "/m/visits", "/devices?m=1"]  # fmt: skip
    problems: dict[str, Any] = {}
    for path in pages:
        sep = "&" if "?" in path else "?"
        page.goto(f"{live_server.url}{path}{sep}lang={lang}")
        for details in page.locator("details").all():  # the visit form is folded away; check it open
            details.evaluate("(el) => { el.open = true; }")
        small = _small_targets(page)
        width, inner = _overflow(page)
        if small or width > inner:
            problems[path] = {"small": small, "scrollWidth": width}
    assert problems == {}
    context.close()


@pytest.mark.integration
@pytest.mark.browser
def test_the_away_link_looks_like_a_link_on_the_phone_resident_page(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    """On the phone resident page 外出报备 was black and not underlined, like the details above it: it read as a
    label, not as something to tap (the card rule that greys the whole-card links of the list caught it)."""
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    browser_login(page, live_server.url, "W_G1")
    style = "(el) => [getComputedStyle(el).color, getComputedStyle(el).textDecorationLine]"
    page.goto(f"{live_server.url}/m/residents")
    in_list = page.locator(".m-card a.away-link").first.evaluate(style)
    page.goto(f"{live_server.url}/m/residents/R1")
    on_page = page.locator(".m-resident a.away-link").evaluate(style)
    text = page.locator(".m-details dd").first.evaluate("(el) => getComputedStyle(el).color")
    assert on_page == in_list
    assert on_page[0] != text and on_page[1] == "underline"
    page.locator(".m-resident a.away-link").tap()
    expect(page).to_have_url(f"{live_server.url}/m/residents/R1/away")
    context.close()
