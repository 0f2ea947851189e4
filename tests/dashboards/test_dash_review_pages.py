"""Review of the grid worker's phone pages and the duty console: device names in explanations, English headings in
sentence case, the outcome in the history line, navigation to the full address, the 大屏's device tile."""

from __future__ import annotations

import copy
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from dash_fixtures import PASSWORD, registry
from dash_harness import LiveServer, NullNotifier, browser_login, raise_sos, store_backend
from dash_helpers import Backend, login, raise_now
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from alerts.lifecycle import Action, Channel, Outcome
from dashboards.app import create_app
from dashboards.security import hash_password
from detection.models import Alert, AlertType, Severity
from eldercare.settings import Settings

_HEADING = re.compile(r"<(h[1-4])\b[^>]*>(.*?)</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
FULL_ADDRESS = "示范区东城街道幸福社区 张桂英家 h1 号"
OFFLINE_ZH = "智能床垫（卧室）自 08:10 起已 45分钟 无消息（标称上报间隔 1分钟），该户其他设备在线。"
_CARD_TITLE = re.compile(r'<a class="m-card[^>]*>\s*<span[^>]*>[^<]*</span>\s*<b>(.*?)</b>')


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment)).strip()


def _one(pattern: str, page: str) -> str:
    m = re.search(pattern, page, re.S)
    assert m, page[:3000]
    return m.group(1)


def _raise(backend: Backend, alert_type: AlertType, device: str, en: str, zh: str) -> int:
    """An alert worded as the detector words it (the device id inside the sentence)."""
    alert = Alert(
        site="h1", type=alert_type, severity=Severity.WARNING, time_ms=int(time.time() * 1000),
        explanation=en, explanation_zh=zh, device=device,
    )  # fmt: skip
    return backend.raise_alert(alert).id


# -- 1. the device in words, its id for technicians ---------------------------------------------------------------


def test_explanations_name_the_device_by_room_and_kind_and_keep_its_id(client: TestClient, backend: Backend) -> None:
    offline = _raise(
        backend, AlertType.DEVICE_OFFLINE, "mat1",
        "mattress mat1 silent for 45 min since 08:10 (declared cadence 1 min); the rest of the home is online.",
        "设备 mat1（mattress）自 08:10 起已 45分钟 无消息（标称上报间隔 1分钟），该户其他设备在线。",
    )  # fmt: skip
    button = _raise(
        backend, AlertType.CALL_BUTTON, "btn1",
        "Emergency call button btn1 in the bedroom pressed.", "卧室的一键呼叫按钮 btn1 被按下。",
    )  # fmt: skip
    login(client, "W_G1")
    for path in (f"/console/alerts/{offline}", f"/m/alerts/{offline}"):
        zh = client.get(path, params={"lang": "zh"}).text  # (?lang= is remembered in a cookie)
        explained = _one(r'<p class="explanation">(.*?)</p>', zh)
        assert _text(explained) == OFFLINE_ZH
        assert 'title="mat1"' in explained  # the id stays at hand for a technician
        assert _text(_one(r'<p class="device-line[^"]*"[^>]*>(.*?)</p>', zh)) == "设备：卧室 · 智能床垫（编号 mat1）"
        en = client.get(path, params={"lang": "en"}).text
        assert _text(_one(r'<p class="explanation">(.*?)</p>', en)).startswith("Mattress (bedroom) silent for 45 min")
        assert _text(_one(r'<p class="device-line[^"]*"[^>]*>(.*?)</p>', en)) == "Device: mattress · bedroom (id mat1)"
    # The sentence names the room already: the id goes, the room is not said twice.
    page = client.get(f"/m/alerts/{button}", params={"lang": "zh"}).text
    assert _text(_one(r'<p class="explanation">(.*?)</p>', page)) == "卧室的一键呼叫按钮被按下。"
    page = client.get(f"/console/alerts/{button}?lang=en").text
    assert _text(_one(r'<p class="explanation">(.*?)</p>', page)) == "Emergency call button in the bedroom pressed."


def test_an_unregistered_device_keeps_its_id(client: TestClient, backend: Backend) -> None:
    alert_id = _raise(backend, AlertType.LOW_BATTERY, "x9", "Battery of wristband x9 at 9 %.", "智能手环 x9 电量 9%。")
    login(client, "W_G1")
    page = client.get(f"/m/alerts/{alert_id}").text
    assert _text(_one(r'<p class="explanation">(.*?)</p>', page)) == "智能手环 x9 电量 9%。"
    assert _text(_one(r'<p class="device-line[^"]*"[^>]*>(.*?)</p>', page)) == "设备编号：x9"


# -- 2. English headings in sentence case ------------------------------------------------------------------------


def test_english_headings_and_titles_are_in_sentence_case(client: TestClient, backend: Backend) -> None:
    """The catalogue's names are lower case to sit in a sentence; heading a page or a card they start with a capital."""
    ids = [raise_now(backend, "h1", k, Severity.WARNING) for k in (AlertType.FALL, AlertType.INACTIVITY)]
    login(client, "W_C1")
    pages = ["/console", "/console/queue", "/residents", "/residents/R1", "/devices", "/stats", "/stats/report",
             "/registry", "/workers", "/bigscreen", "/m", "/m/residents", "/m/residents/R1", "/m/residents/R1/away",
             "/m/visits", "/devices?m=1", *(f"/console/alerts/{i}" for i in ids),
             *(f"/m/alerts/{i}" for i in ids)]  # fmt: skip
    lower: dict[str, list[str]] = {}
    for path in pages:
        r = client.get(path, params={"lang": "en"})
        assert r.status_code == 200, (path, r.status_code)
        heads = [_text(inner) for _, inner in _HEADING.findall(r.text)]
        heads += [_text(t) for t in re.findall(r"<title>(.*?)</title>", r.text, re.S)]
        heads += [_text(t) for t in re.findall(r'<strong class="q-type">(.*?)</strong>', r.text, re.S)]  # a card's
        heads += [_text(t) for t in _CARD_TITLE.findall(r.text)]
        if found := [h for h in heads if h[:1].isalpha() and h[:1].islower()]:
            lower[path] = found
    assert lower == {}
    page = client.get(f"/m/alerts/{ids[0]}", params={"lang": "en"}).text
    assert "<h1>Fall (suspected)</h1>" in page


# -- 3. the outcome in the history line --------------------------------------------------------------------------


def test_history_line_shows_the_outcome_and_note_of_a_resolve(client: TestClient, backend: Backend) -> None:
    alert_id = raise_sos(backend)
    now = int(time.time() * 1000)
    backend.act(alert_id, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.PHONE, now_ms=now)
    backend.act(
        alert_id, Action.RESOLVE, actor="W_G1", channel=Channel.PHONE, now_ms=now,
        outcome=Outcome.ELDER_FINE, note="老人按错了按钮",
    )  # fmt: skip
    login(client, "W_G1")
    for path in (f"/console/alerts/{alert_id}", f"/m/alerts/{alert_id}"):
        page = client.get(path, params={"lang": "zh"}).text
        line = _text(_one(r"<li>((?:(?!<li>).)*?处置完成.*?)</li>", page))
        assert "李网格（网格员） 处置完成 → 已处置 · 处置结果：经核实老人安好 · 老人按错了按钮" in line, line
        page = client.get(path, params={"lang": "en"}).text
        line = _text(_one(r"<li>((?:(?!<li>).)*?resolved →.*?)</li>", page))
        assert "resolved → resolved · outcome: elder fine (checked) · 老人按错了按钮" in line, line


# -- 4. navigation to the full address ---------------------------------------------------------------------------


def test_navigation_searches_the_full_address(client: TestClient, backend: Backend) -> None:
    """The registry has no coordinates: the map search gets district, street and community before the address."""
    alert_id = raise_sos(backend)
    token = backend.link_token(alert_id=alert_id, worker_id="W_G1", action="view", now_ms=int(time.time() * 1000))
    link_page = client.get(f"/m/{token}").text
    login(client, "W_G1")
    for page in (link_page, client.get(f"/m/alerts/{alert_id}").text, client.get("/m/residents/R1").text):
        assert f'href="https://uri.amap.com/search?keyword={quote(FULL_ADDRESS)}"' in page
        assert f'href="geo:0,0?q={quote(FULL_ADDRESS)}"' in page
        assert f"<small>{FULL_ADDRESS}</small>" in page
    desktop = client.get("/residents/R1").text
    assert f'id="map-link" href="https://uri.amap.com/search?keyword={quote(FULL_ADDRESS)}"' in desktop


# -- 6. the 大屏's device tile -----------------------------------------------------------------------------------


@pytest.fixture
def no_devices_server(tmp_path: Path, settings: Settings) -> Iterator[LiveServer]:
    """A district whose homes came without devices (as a CSV import brings them: the CSV has no device column)."""
    doc = copy.deepcopy(registry())
    for site in doc["sites"]:
        site["devices"] = []
    b = store_backend(f"sqlite:///{tmp_path / 'bare.db'}", notifier=NullNotifier(), doc=doc)
    b.set_password_hash("W_S1", hash_password(PASSWORD), actor="system")
    server = LiveServer(create_app(settings, backend=b, poll_interval_s=0.05))
    server.start()
    yield server
    server.stop()
    b.store.close()


NONE_HANDLED_EN = ("None yet today", "None yet today")  # the tile's label says what


@pytest.mark.integration
@pytest.mark.browser
def test_bigscreen_empty_tiles_say_why_instead_of_a_dash(chromium: Browser, no_devices_server: LiveServer) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    page = context.new_page()
    browser_login(page, no_devices_server.url, "W_S1")
    for lang, words in (("zh", "尚无登记设备"), ("en", "No devices registered")):
        page.goto(f"{no_devices_server.url}/bigscreen?lang={lang}")
        expect(page.locator("#big")).to_have_attribute("data-state", "ready")
        expect(page.locator("#big-online")).to_have_text(words)
        expect(page.locator("#big-online-of")).to_have_text("")  # no "0 / 0"
        # Nothing handled yet today: the medians say so (a dash read as "no data" on the wall screen).
        none_acked, none_on_site = ("今日尚无接单", "今日尚无到场") if lang == "zh" else NONE_HANDLED_EN
        expect(page.locator("#big-ack")).to_have_text(none_acked)
        expect(page.locator("#big-onsite")).to_have_text(none_on_site)
        for tile_id in ("big-online", "big-ack", "big-onsite"):
            fits = page.locator(f"#{tile_id}").evaluate("(el) => el.scrollWidth <= el.parentElement.clientWidth")
            assert fits, f"{lang}: the words of #{tile_id} overflow their tile"
    context.close()
