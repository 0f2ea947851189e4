"""Issue 15 in a real browser: what the duty officer needs in front of them (Debian's chromium via Playwright).

The page is instrumented before it loads: ``OscillatorNode.start`` is counted (the WebAudio cue),
``document.hidden`` is switchable (the title flash and ``Notification`` when the tab is in the background) and
``Notification`` records what it was asked to show. Time is Playwright's fake clock, so "60 s unacknowledged"
is reached by fast-forwarding, not by waiting.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from dash_harness import LiveServer, TestStoreBackend, browser_login
from dash_helpers import Backend, alert_of, raise_now
from playwright.sync_api import Browser, Page, expect

from detection.models import AlertType, Severity

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
INSTRUMENT = """
window.__osc = 0;
const __start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) { window.__osc += 1; return __start.apply(this, args); };
window.__hidden = false;
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return window.__hidden; } });
Object.defineProperty(Document.prototype, "visibilityState", { configurable: true,
  get() { return window.__hidden ? "hidden" : "visible"; } });
window.__notes = [];
window.Notification = class { constructor(title, opts) { window.__notes.push(title); }
  static get permission() { return "granted"; } static requestPermission() { return Promise.resolve("granted"); }
  close() {} };
"""


_raise = raise_now


def _shot(page: Page, name: str) -> None:
    target = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "ec-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=False)


def _hide(page: Page, hidden: bool) -> None:
    page.evaluate(
        f"window.__hidden = {'true' if hidden else 'false'}; document.dispatchEvent(new Event('visibilitychange'))"
    )


def test_new_sos_cue_title_flash_top_highlight_overdue_filters_keyboard_resolve(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    inactivity = _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    offline = _raise(backend, "h1", AlertType.DEVICE_OFFLINE, Severity.INFO, ago_s=900, device="mat1")
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    page.clock.install()
    browser_login(page, live_server.url, "W_C1")
    expect(page).to_have_url(f"{live_server.url}/console")
    expect(page.locator("#live")).to_have_class("live ok")
    expect(page).to_have_title(re.compile("告警值守"))
    # The detail pane shows the top alert instead of being empty.
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(inactivity))
    expect(page.locator("#unacked-count")).to_have_text("2")

    _hide(page, True)  # the officer is in another tab
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL)
    item = page.locator(f"#alert-{sos}")
    expect(item).to_be_visible(timeout=10_000)
    expect(page.locator(".q-item").first).to_have_attribute("data-alert", str(sos))
    expect(item).to_have_class(re.compile(r"\bis-new\b"))
    expect(page.locator("#unacked-count")).to_have_text("3")
    # The detail showed an alert that is not life-safety: it follows the new SOS, whose row is the selected one.
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos))
    expect(item).to_have_class(re.compile(r"\bselected\b"))
    page.wait_for_function("window.__osc > 0")  # the WebAudio cue played
    expect(page.locator("body")).to_have_attribute("data-cue-for", str(sos))
    page.wait_for_function("document.title.startsWith('【新告警】')")  # the title flashes while hidden
    page.wait_for_function("window.__notes.length === 1 && window.__notes[0].includes('紧急求助')")
    expect(item.locator(".clock-label").first).to_contain_text("已等待")
    expect(item.locator(".ack-flag")).to_be_hidden()
    _hide(page, False)
    page.wait_for_function("!document.title.startsWith('【新告警】')")

    page.clock.fast_forward(61_000)  # a minute passes without anyone acknowledging
    expect(item.locator(".ack-flag")).to_be_visible()
    expect(item.locator(".ack-flag")).to_have_text("超过 60 秒未接单")
    expect(page.locator("#overdue-count")).not_to_have_text("0")
    _shot(page, "console-new-sos.png")

    # Filters and search narrow the queue.
    page.select_option("#f-type", "sos")
    expect(page.locator(".q-item:visible")).to_have_count(1)
    page.select_option("#f-type", "")
    page.fill("#q-search", "刘秀兰")
    expect(page.locator(".q-item:visible")).to_have_count(1)
    expect(page.locator(".q-item:visible")).to_have_attribute("data-alert", str(inactivity))
    page.fill("#q-search", "")
    page.select_option("#f-state", "open")
    expect(page.locator(".q-item:visible")).to_have_count(3)
    page.select_option("#f-state", "")

    # Keyboard: j/k move the selection from the alert shown (the SOS) and open what they select, a acknowledges it.
    page.locator("#q-search").press("Escape")
    page.keyboard.press("j")
    expect(page.locator(f"#alert-{inactivity}")).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(inactivity))
    page.keyboard.press("j")
    expect(page.locator(f"#alert-{offline}")).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(item).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("Enter")
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos))
    page.keyboard.press("a")
    expect(page.locator("#detail #alert-state")).to_have_text("已接单")
    expect(item).to_have_attribute("data-state", "acknowledged", timeout=10_000)
    expect(page.locator("#unacked-count")).to_have_text("2")
    assert alert_of(backend, sos).acked_ms is not None
    # Only the actions valid now: no acknowledge button once acknowledged.
    detail = page.locator("#detail")
    expect(detail.locator("button.act-on_site")).to_be_visible()
    expect(detail.locator("button.act-acknowledge")).to_have_count(0)

    # Resolve needs an outcome (no default) and takes a note.
    expect(detail.locator("select[name=outcome]")).to_have_value("")
    detail.locator("button.act-resolve").click()
    expect(detail.locator("select[name=outcome]:invalid")).to_have_count(1)
    detail.locator("select[name=outcome]").select_option("assisted_at_home")
    detail.locator("textarea[name=note]").fill("老人按错了按钮，已电话确认无恙")
    detail.locator("button.act-resolve").click()
    expect(detail.locator("#alert-state")).to_have_text("已处置")
    resolved = alert_of(backend, sos)
    assert resolved.outcome == "assisted_at_home"
    assert resolved.events[-1].note == "老人按错了按钮，已电话确认无恙"
    expect(detail.locator(".history")).to_contain_text("王值班")
    expect(detail.locator(".history")).to_contain_text("系统")

    # Bulk acknowledge of device-health alerts (never the behavioural one).
    page.locator("#bulk-ack").click()
    expect(page.locator("#bulk-done")).to_have_text("已接单 1 条设备类告警")
    assert alert_of(backend, offline).acked_ms is not None
    assert alert_of(backend, inactivity).acked_ms is None

    # Muted for a minute: the next SOS is highlighted but silent.
    page.locator("#mute").click()
    expect(page.locator("body")).to_have_attribute("data-muted", "1")
    before = page.evaluate("window.__osc")
    sos2 = _raise(backend, "h2", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator(f"#alert-{sos2}")).to_have_class(re.compile(r"\bis-new\b"), timeout=10_000)
    assert page.evaluate("window.__osc") == before
    page.clock.fast_forward(61_000)
    expect(page.locator("#mute")).to_have_text("静音 1 分钟")  # back on by itself
    if isinstance(backend, TestStoreBackend):  # the store merges a second press into the open alert: cue again
        assert _raise(backend, "h2", AlertType.SOS, Severity.CRITICAL) == sos2
        expect(page.locator(f"#alert-{sos2}")).to_have_attribute("data-count", "2", timeout=10_000)
        expect(page.locator("body")).to_have_attribute("data-cue-for", str(sos2))
    context.close()


def test_handover_note_is_shown_to_the_next_officer(chromium: Browser, live_server: LiveServer) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    handover = page.locator("#handover")
    expect(handover).to_contain_text("最近 24 小时没有交班记录")
    handover.locator("textarea[name=text]").fill("张桂英家床垫离线，明早请网格员上门检查。")
    handover.locator("button[type=submit]").click()
    expect(page.locator("#handover-saved")).to_be_visible()
    expect(page.locator("#handover-notes")).to_contain_text("张桂英家床垫离线")
    context.close()

    nxt = chromium.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    page = nxt.new_page()
    browser_login(page, live_server.url, "W_S1")  # the street officer on the next shift reads the community's notes
    expect(page.locator("#handover-notes")).to_contain_text("张桂英家床垫离线，明早请网格员上门检查。")
    expect(page.locator("#handover-notes")).to_contain_text("王值班")
    _shot(page, "console-handover.png")
    nxt.close()
    page_other = chromium.new_context().new_page()
    browser_login(page_other, live_server.url, "W_G4")  # another street's worker does not see it
    page_other.goto(f"{live_server.url}/console")
    expect(page_other.locator("#handover-notes")).to_contain_text("最近 24 小时没有交班记录")
    page_other.context.close()
