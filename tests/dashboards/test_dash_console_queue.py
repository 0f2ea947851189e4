"""The console's detail pane follows a new SOS and the queue always shows which alert is open (Debian's chromium).

A reviewer drove the running stack: the detail showed alert #2 while no queue row was selected, and a new SOS
went to the top while the detail (and so the 接单 button and the ``A`` key) stayed on #2. The detail's alert
is now always the selected row; a new open life-safety alert opens by itself unless the officer is working on
another open life-safety alert, in which case the detail pane says a newer one is waiting, with a link to it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from dash_harness import LiveServer, browser_login
from dash_helpers import Backend, alert_of, raise_now
from playwright.sync_api import APIResponse, Browser, Page, Route, expect

from detection.models import AlertType, Severity

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SELECTED = re.compile(r"\bselected\b")


def _raise(backend: Backend, site: str, kind: AlertType, severity: Severity, ago_s: int = 0) -> int:
    return raise_now(backend, site, kind, severity, ago_s, device="btn1" if kind is AlertType.SOS else "")


def _console(chromium: Browser, live_server: LiveServer, lang: str = "zh") -> Page:
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, live_server.url, "W_C1")
    if lang == "en":
        page.goto(f"{live_server.url}/console?lang=en")
    expect(page.locator("#live")).to_have_class(re.compile(r"\blive ok\b"))
    return page


def _until(page: Page, condition: Callable[[], bool], what: str) -> None:
    """Waits for a condition the page's own calls bring about (route handlers run inside Playwright calls)."""
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        page.wait_for_timeout(50)


def _shown(page: Page) -> str:
    return page.locator("#detail .alert-detail").get_attribute("data-alert") or ""


def test_the_open_alert_is_the_selected_row_at_load(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    top = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=30)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(top))
    expect(page.locator(f"#alert-{top}")).to_have_class(SELECTED)
    expect(page.locator(".q-item.selected")).to_have_count(1)
    page.context.close()


def test_a_new_sos_opens_when_the_detail_shows_a_handled_or_non_life_safety_alert(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    inactivity = _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(inactivity))
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos), timeout=10_000)
    expect(page.locator(f"#alert-{sos}")).to_have_class(SELECTED)
    expect(page.locator(f"#alert-{inactivity}")).not_to_have_class(SELECTED)
    # The A key acknowledges the alert shown, which is the selected row: the SOS, never the inactivity alert.
    page.keyboard.press("a")
    expect(page.locator("#detail #alert-state")).to_have_text("已接单")
    assert alert_of(backend, sos).acked_ms is not None
    assert alert_of(backend, inactivity).acked_ms is None

    # An acknowledged SOS in the detail is not "being worked on" as an unacknowledged one: the next SOS opens.
    sos2 = _raise(backend, "h2", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos2), timeout=10_000)
    expect(page.locator(f"#alert-{sos2}")).to_have_class(SELECTED)
    expect(page.locator("#newer-waiting")).to_be_hidden()
    page.context.close()


def test_a_new_sos_opens_when_it_arrives_while_the_queue_is_being_fetched(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    """CI failure: an SOS raised while the queue was being fetched for an earlier change never opened (and never
    cued). htmx queues a second request for the same target and resolves its promise at once, before the swap, so the
    console's new-alert logic ran on the old rows and never ran on the new ones. Here the earlier fetch is held, its
    answer taken before the SOS, until the stream has told the page of the SOS."""
    inactivity = _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(inactivity))
    held: list[tuple[Route, APIResponse]] = []

    def hold_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # the queue as it is now, answered later

    page.route("**/console/queue", hold_first)
    _raise(backend, "h1", AlertType.INACTIVITY, Severity.WARNING)
    _until(page, lambda: bool(held), "the queue fetched after the change")
    heard = page.locator("#queue").get_attribute("data-heard") or ""
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator("#queue")).not_to_have_attribute("data-heard", heard, timeout=10_000)  # told of the SOS
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos), timeout=10_000)
    expect(page.locator(f"#alert-{sos}")).to_have_class(SELECTED)
    assert int(page.evaluate("document.body.dataset.cues || '0'")) >= 1, "the new SOS was cued"
    page.context.close()


def test_the_a_key_acknowledges_at_once_while_the_detail_is_reloading(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    """The A key's acknowledgement was queued behind a detail load in flight, where htmx keeps only the last request:
    a refresh queued after it replaced it and the acknowledgement was lost. It is sent at once now."""
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos))
    held: list[Route] = []
    page.route(f"**/console/alerts/{sos}", lambda route: held.append(route))  # detail loads wait (acting: other path)
    page.keyboard.press("Enter")  # opens the selected alert again: the detail reloads
    _until(page, lambda: bool(held), "the detail reloaded")
    page.keyboard.press("a")
    _until(page, lambda: alert_of(backend, sos).acked_ms is not None, "acknowledged while the detail load waits")
    held[0].continue_()
    expect(page.locator("#detail #alert-state")).to_have_text("已接单")
    page.context.close()


def test_a_new_sos_while_working_on_an_open_sos_waits_with_a_link(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    first = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=20)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(first))
    expect(page.locator("#newer-waiting")).to_be_hidden()
    newer = _raise(backend, "h2", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator(f"#alert-{newer}")).to_be_visible(timeout=10_000)
    banner = page.locator("#newer-waiting")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("新的生命安全告警")
    expect(banner).to_contain_text("刘秀兰")
    # Not yanked away: the officer keeps the alert they are working on, and it stays the selected row.
    assert _shown(page) == str(first)
    expect(page.locator(f"#alert-{first}")).to_have_class(SELECTED)
    expect(page.locator(f"#alert-{newer}")).not_to_have_class(SELECTED)
    page.keyboard.press("a")  # acts on the alert shown, the first SOS
    expect(page.locator("#detail #alert-state")).to_have_text("已接单")
    assert alert_of(backend, first).acked_ms is not None
    assert alert_of(backend, newer).acked_ms is None
    # One click opens the waiting alert; the notice goes away.
    banner.locator("a").click()
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(newer))
    expect(page.locator(f"#alert-{newer}")).to_have_class(SELECTED)
    expect(banner).to_be_hidden()
    page.context.close()


def test_a_new_sos_does_not_throw_away_a_resolution_being_written(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    """The re-review picked an outcome and typed a note on an acknowledged alert; the next SOS replaced the detail
    and the note was gone. An officer writing in the detail is working on it: the new SOS waits with the notice."""
    handled = _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(handled))
    page.locator("#detail textarea[name=note]").fill("已电话联系，老人在午睡")
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL)
    expect(page.locator(f"#alert-{sos}")).to_be_visible(timeout=10_000)
    expect(page.locator("#newer-waiting")).to_be_visible()
    assert _shown(page) == str(handled)
    expect(page.locator("#detail textarea[name=note]")).to_have_value("已电话联系，老人在午睡")
    page.context.close()


def test_the_waiting_notice_in_english(chromium: Browser, live_server: LiveServer, backend: Backend) -> None:
    first = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=20)
    page = _console(chromium, live_server, lang="en")
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(first))
    _raise(backend, "h2", AlertType.FALL, Severity.CRITICAL)
    banner = page.locator("#newer-waiting")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("newer life-safety alert")
    page.context.close()


def test_keyboard_moves_open_the_alert_so_a_acts_on_what_is_shown(
    chromium: Browser, live_server: LiveServer, backend: Backend
) -> None:
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=60)
    inactivity = _raise(backend, "h2", AlertType.INACTIVITY, Severity.WARNING, ago_s=600)
    page = _console(chromium, live_server)
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(sos))
    page.keyboard.press("j")
    expect(page.locator("#detail .alert-detail")).to_have_attribute("data-alert", str(inactivity))
    expect(page.locator(f"#alert-{inactivity}")).to_have_class(SELECTED)
    expect(page.locator(".q-item.selected")).to_have_count(1)
    page.keyboard.press("a")
    expect(page.locator("#detail #alert-state")).to_have_text("已接单")
    assert alert_of(backend, inactivity).acked_ms is not None
    assert alert_of(backend, sos).acked_ms is None
    page.context.close()


def test_english_community_filter_is_not_cut(chromium: Browser, live_server: LiveServer) -> None:
    page = _console(chromium, live_server, lang="en")
    select = page.locator("#f-community")
    expect(select.locator("option").first).to_have_text("All communities")
    # The select must be wide enough for its shown text (padding and the drop-down arrow included).
    fits = page.evaluate(
        """() => {
          const el = document.getElementById('f-community');
          const ctx = document.createElement('canvas').getContext('2d');
          const cs = getComputedStyle(el);
          ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
          const text = ctx.measureText(el.options[el.selectedIndex].text).width;
          const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 20;
          return [text, room];
        }"""
    )
    assert fits[0] <= fits[1], fits
    page.context.close()
