"""Issue 15 on a phone: the grid worker's one-tap link page, outcome choice, live list (Debian's chromium)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import pytest
from dash_fixtures import PASSWORD, registry
from dash_harness import LiveServer, browser_login, raise_sos
from dash_helpers import Backend, alert_of, login, raise_now
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from test_dash_console_ux import _shot

from alerts.lifecycle import Action, Channel
from detection.models import AlertType, Severity

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
    # Each clock is one item of the wrapping row, label with its time: loose text and " · " separators were items
    # of their own (a wrapped line began with a lone "·", and "已等待" stood a gap away from its 02:15).
    clocks = page.locator("p.clocks")
    expect(clocks.locator(":scope > span")).to_have_count(3)  # waiting, escalates to the street, on site by
    loose = clocks.evaluate("p => [...p.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim()).length")
    assert loose == 0
    assert clocks.evaluate("p => [...p.children].every(c => c.querySelector('b'))")
    expect(page.locator("a.tel-contact")).to_have_attribute("href", "tel:13700000001")
    expect(page.locator("a.tel-contact")).to_contain_text("张明")
    expect(page.locator("#map-link")).to_have_attribute(
        "href", f"https://uri.amap.com/search?keyword={quote('示范区东城街道幸福社区 张桂英家 h1 号')}"
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
    expect(page.locator(f'a[data-alert="{alert_id}"]')).to_be_visible(timeout=10_000)
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


EXPIRED = {"zh": "这个通知链接已过期", "en": "This notification link has expired"}
OPEN_ALERT = {"zh": "打开这条告警（需登录）", "en": "Open this alert (log in)"}


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_expired_link_leads_to_the_alert_after_login_not_to_a_dead_end(
    chromium: Browser, live_server: LiveServer, backend: Backend, lang: str
) -> None:
    """A link tapped after it expired showed only "链接无效或已过期" on an empty page: nothing to tap, no way on.

    It says the link expired and offers, in the first screen and as a full touch target, the alert itself
    (through the login form when there is no session), where the call buttons are.
    """
    alert_id = raise_sos(backend)
    three_hours_ago = int(time.time() * 1000) - 3 * 3600_000  # links live 2 h
    expired = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="view", now_ms=three_hours_ago)
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{live_server.url}/m/{expired}?lang={lang}")
    expect(page.locator("#link-error")).to_contain_text(EXPIRED[lang])
    go = page.locator("a#link-next")
    expect(go).to_have_text(OPEN_ALERT[lang])
    box = go.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 300  # a thumb's target, not a text link
    assert box["y"] + box["height"] <= PHONE["height"]  # in the first screen
    go.tap()
    expect(page).to_have_url(re.compile(r"/login\?"))
    page.fill("input[name=username]", "W_G1")
    page.fill("input[name=password]", PASSWORD)
    page.locator("button[type=submit]").tap()
    expect(page).to_have_url(f"{live_server.url}/m/alerts/{alert_id}")
    expect(page.locator("a.tel-elder")).to_have_attribute("href", "tel:13900000001")
    context.close()


def test_a_bad_or_revoked_link_offers_my_alerts(client: TestClient, backend: Backend) -> None:
    """A garbled or forged link names no alert: the page still offers the worker's own alert list."""
    for token in ("not-a-token", "eyJhIjoxfQ.forged.signature"):
        r = client.get(f"/m/{token}")
        assert r.status_code == 404 and "链接无效" in r.text
        assert re.search(r'<a class="tap-link" id="link-next" href="/m">打开我的告警（需登录）</a>', r.text), r.text
    en = client.get("/m/not-a-token?lang=en").text
    assert 'href="/m">Open my alerts (log in)</a>' in en


def test_an_action_link_someone_else_got_to_first_offers_the_next_steps(client: TestClient, backend: Backend) -> None:
    """The 一键接单 link, opened after the duty officer took the alert, showed the alert with no button at all, and
    接单 tapped on a page opened before answered a bare 当前状态不允许此操作: both dead ends for the worker on the
    way. The page says what happened and offers the next steps (the same worker's fresh one-tap buttons, which the
    notification's page link gives them anyway)."""
    alert_id = raise_sos(backend)
    now = int(time.time() * 1000)
    ack = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="acknowledge", now_ms=now)
    before = client.get(f"/m/{ack}").text  # opened while the alert is open: just its own button
    assert "act-acknowledge" in before and "act-en_route" not in before
    backend.act(alert_id, Action.ACKNOWLEDGE, actor="W_C1", channel=Channel.CONSOLE, now_ms=now)

    def buttons(html: str) -> dict[str, str]:
        return {act: tok for tok, act in re.findall(r'action="/m/([^"]+)"[^>]*><button class="tap act-(\w+)"', html)}

    opened = client.get(f"/m/{ack}")
    assert opened.status_code == 200
    taken = "「接单」已由 王值班（社区值班） 完成"
    assert re.search(rf'id="link-moved-on"[^>]*>{taken}，这条告警当前为「已接单」', opened.text), opened.text
    assert set(buttons(opened.text)) == {"en_route", "on_site"}
    assert 'class="tap act-resolve"' in opened.text
    # 接单 tapped on the page opened before: not a bare refusal either.
    tapped = client.post(f"/m/{ack}", data={})
    assert taken in tapped.text and set(buttons(tapped.text)) == {"en_route", "on_site"}
    # The offered buttons work, as the worker.
    done = client.post(f"/m/{buttons(tapped.text)['en_route']}", data={}, follow_redirects=True)
    assert done.status_code == 200 and alert_of(backend, alert_id).state == "en_route"
    assert alert_of(backend, alert_id).events[-1].actor == "W_G1"
    en = client.get(f"/m/{ack}?lang=en").text
    assert "“Acknowledge” was already done by 王值班 (community duty); this alert is now en route" in en

    # A step skipped rather than taken (on site straight away): said so, without naming anyone.
    other = raise_now(backend, "h2", AlertType.SOS, Severity.CRITICAL)
    backend.act(other, Action.ON_SITE, actor="W_C1", channel=Channel.CONSOLE, now_ms=now)
    skipped = backend.link_token(alert_id=other, worker_id="W_G2", action="en_route", now_ms=now)
    assert "「我已出发」已不需要：这条告警当前为「已到场」" in client.get(f"/m/{skipped}?lang=zh").text

    # The worker's own 一键接单, opened again later to get back to the alert: the next steps, and no news.
    mine = raise_now(backend, "h4", AlertType.SOS, Severity.CRITICAL)
    own = backend.link_token(alert_id=mine, worker_id="W_G4", action="acknowledge", now_ms=now)
    assert client.post(f"/m/{own}", data={}, follow_redirects=False).status_code == 303
    again = client.get(f"/m/{own}?lang=zh").text
    assert set(buttons(again)) == {"en_route", "on_site"} and 'id="link-moved-on"' not in again


def test_an_english_workers_notification_links_open_the_page_in_english(client: TestClient, backend: Backend) -> None:
    """A worker registered with ``lang: en`` got the notification in English, but its links opened the Chinese page
    (a phone's fresh browser has no language cookie): the links carry the worker's language."""
    doc = registry()
    for w in doc["workers"]:
        if w["id"] == "W_G1":
            w.update(lang="en", channels=["json://127.0.0.1:9/inbox"])
    backend.store.import_registry(doc, now_ms=int(time.time() * 1000))
    raise_sos(backend)
    sent = [m for url, m in backend.service.notifier.sent if url == "json://127.0.0.1:9/inbox"]  # type: ignore[attr-defined]
    assert sent and sent[0].title.startswith("[CRITICAL]")
    links = re.findall(r"http://127\.0\.0\.1:8000(/m/\S+)", sent[0].body)
    assert len(links) == 2  # Acknowledge, Open
    for path in links:
        client.cookies.clear()
        page = client.get(path)
        assert page.status_code == 200 and '<html lang="en">' in page.text, path
        assert "Call the resident" in page.text and "拨打" not in page.text
