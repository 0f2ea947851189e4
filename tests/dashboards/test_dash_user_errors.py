"""User-facing defects found by driving the stack: a tap lost to an expired session, raw JSON and English error
pages, nav links a role may not open, and a language switch that dropped the rest of the URL."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from dash_fixtures import PASSWORD
from dash_helpers import Backend, alert_of, login
from fastapi.testclient import TestClient

from alerts.lifecycle import State
from detection.models import Alert, AlertType, Severity


def _sos(backend: Backend, site: str = "h1") -> int:
    alert = Alert(
        site=site, type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=int(time.time() * 1000) - 30_000,
        explanation="SOS pressed", explanation_zh="按下紧急呼叫",
    )  # fmt: skip
    return backend.raise_alert(alert).id


def _next_of(location: str) -> str:
    """The ``next=`` of a redirect to the login form."""
    parts = urlsplit(location)
    assert parts.path == "/login" and not parts.netloc, location
    (target,) = parse_qs(parts.query)["next"]
    return target


# -- 1: a tap after the session expired ----------------------------------------------------------------------


def test_expired_session_tap_comes_back_to_the_alert_page_with_a_notice(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    csrf = login(client, "W_G1")
    assert client.get(f"/m/alerts/{sos}").status_code == 200
    client.cookies.clear()  # the session is gone (expired, or cookies cleared on the phone)
    r = client.post(f"/m/alerts/{sos}/act", data={"csrf": csrf, "action": "acknowledge"}, follow_redirects=False)
    assert r.status_code == 303
    target = _next_of(r.headers["location"])
    assert urlsplit(target).path == f"/m/alerts/{sos}"  # a page that can be opened, not the POST's URL
    assert parse_qs(urlsplit(target).query)["notice"] == ["relogin"]
    r = client.post("/login", data={"username": "W_G1", "password": PASSWORD, "next": target}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == target
    page = client.get(target)
    assert page.status_code == 200, page.text[:300]
    assert 'class="flash warn" id="relogin-notice"' in page.text  # a warning, not the green of success
    assert "操作没有执行" in page.text and "请再点一次" in page.text
    assert "act-acknowledge" in page.text  # the button is there to tap again
    assert alert_of(backend, sos).state is State.OPEN  # nothing happened behind the worker's back
    en = client.get(target + "&lang=en").text
    assert "not carried out" in en and "tap it again" in en


def test_login_form_says_the_session_expired(client: TestClient) -> None:
    r = client.post("/m/alerts/1/act", data={"csrf": "x", "action": "acknowledge"}, follow_redirects=False)
    page = client.get(r.headers["location"]).text
    assert 'id="login-expired"' in page and "登录已过期" in page
    assert 'id="login-expired"' not in client.get("/login").text


@pytest.mark.parametrize(
    ("post", "page"),
    [
        ("/m/visits", "/m/visits"),  # the form's own page
        ("/workers/W_G1/password", "/workers"),
        ("/residents/R1/away", "/residents/R1/away"),
        ("/logout", "/"),
    ],
)
def test_expired_session_on_any_form_returns_to_a_page_that_opens(client: TestClient, post: str, page: str) -> None:
    r = client.post(post, data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303
    target = _next_of(r.headers["location"])
    assert urlsplit(target).path == page
    login(client, "W_C1")
    assert client.get(target).status_code == 200, target


def test_expired_session_uses_a_same_origin_referer(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    form = {"csrf": "x", "action": "acknowledge"}

    def next_for(referer: str) -> str:
        r = client.post(f"/m/alerts/{sos}/act", data=form, headers={"Referer": referer}, follow_redirects=False)
        return _next_of(r.headers["location"])

    came_from = urlsplit(next_for(f"http://testserver/m/alerts/{sos}?lang=en"))
    assert came_from.path == f"/m/alerts/{sos}"
    assert parse_qs(came_from.query) == {"lang": ["en"], "notice": ["relogin"]}
    assert urlsplit(next_for("http://testserver/m?x=1")).path == "/m"
    # Another origin, or a path a browser would read as another host, is never followed.
    for referer in (
        "https://evil.example/m",
        "http://testserver.evil.example/m",
        "http://testserver//evil.example/x",
        "http://testserver/\\evil.example/x",
        "javascript:alert(1)",
    ):
        assert urlsplit(next_for(referer)).path == f"/m/alerts/{sos}", referer


def test_expired_session_htmx_request_comes_back_to_the_current_page(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    r = client.post(
        f"/console/alerts/{sos}/act",
        data={"csrf": "x", "action": "acknowledge"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/console?lang=en"},
        follow_redirects=False,
    )
    assert r.status_code == 401
    target = urlsplit(_next_of(r.headers["hx-redirect"]))
    assert target.path == "/console" and parse_qs(target.query) == {"lang": ["en"], "notice": ["relogin"]}


@pytest.mark.parametrize("evil", ["/\\evil.example", "/\\/evil.example", "http://evil.example/", "/ok\r\nX: y"])
def test_login_next_is_a_local_path_only(client: TestClient, evil: str) -> None:
    r = client.post("/login", data={"username": "W_C1", "password": PASSWORD, "next": evil}, follow_redirects=False)
    assert r.headers["location"] == "/console"


# -- 2: error pages -------------------------------------------------------------------------------------------


def _assert_friendly(text: str) -> None:
    for raw in ('{"detail"', "int_parsing", "Input should be", "Traceback", "Not Found", "Method Not Allowed"):
        assert raw not in text, raw


def test_a_bad_alert_id_on_the_phone_is_a_404_page_in_the_phone_layout(client: TestClient) -> None:
    login(client, "W_G1")
    r = client.get("/m/alerts/abc")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    _assert_friendly(r.text)
    assert "页面不存在" in r.text and 'class="tabs"' in r.text and 'href="/m/residents"' in r.text  # phone tabs
    huge = client.get(f"/m/alerts/{2**63}")
    assert huge.status_code == 404 and "页面不存在" in huge.text


def test_unknown_page_is_translated_with_the_nav_when_logged_in(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and "页面不存在" in r.text and 'href="/residents"' not in r.text
    _assert_friendly(r.text)
    login(client, "W_C1")
    r = client.get("/nope")
    assert r.status_code == 404 and "页面不存在" in r.text and 'href="/residents"' in r.text
    assert "<title>页面不存在" in r.text
    en = client.get("/nope?lang=en")
    assert en.status_code == 404 and "Page not found" in en.text and "页面" not in en.text


def test_a_grid_workers_wrong_address_keeps_the_phone_layout(client: TestClient) -> None:
    """The re-review: /nope on a grid worker's phone showed the desktop header (three wrapped lines of links to
    desktop pages that scroll sideways)."""
    login(client, "W_G1")
    r = client.get("/nope")
    assert r.status_code == 404 and "页面不存在" in r.text
    assert 'class="tabs"' in r.text and 'href="/m/residents"' in r.text and 'href="/console"' not in r.text


def test_forbidden_page_keeps_the_nav(client: TestClient) -> None:
    login(client, "W_G1")
    r = client.get("/stats")
    assert r.status_code == 403 and "无权访问" in r.text and "此页面仅限值班人员使用" in r.text
    assert 'class="tabs"' in r.text and 'href="/m/residents"' in r.text  # a grid worker's nav: the phone tabs


def test_bad_form_values_are_422_pages(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    csrf = login(client, "W_G1")
    r = client.post(f"/m/alerts/{sos}/act", data={"csrf": csrf, "action": "explode"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    _assert_friendly(r.text)
    assert "填写的内容有误" in r.text and 'class="tabs"' in r.text
    r = client.post("/m/visits", data={"csrf": csrf, "resident_id": "R1", "outcome": "well", "time": "yesterday"})
    assert r.status_code == 422 and "时间格式不正确" in r.text
    _assert_friendly(r.text)
    assert alert_of(backend, sos).state is State.OPEN


def test_opening_a_form_address_is_a_page_not_json(client: TestClient, backend: Backend) -> None:
    sos = _sos(backend)
    login(client, "W_G1")
    r = client.get(f"/m/alerts/{sos}/act")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    _assert_friendly(r.text)
    assert "allow" in r.headers


def test_the_api_keeps_json_errors(client: TestClient) -> None:
    login(client, "W_C1")
    r = client.get("/api/alerts/abc")
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "int_parsing"
    r = client.get("/api/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    assert client.get(f"/api/alerts/{2**63}").status_code == 422


# -- 3: the nav shows only what the role may open --------------------------------------------------------------

NAV = re.compile(r"<nav[^>]*>(.*?)</nav>", re.S)


@pytest.mark.parametrize("user", ["W_G1", "W_C1", "admin"])
def test_every_nav_link_opens_for_the_role(client: TestClient, user: str) -> None:
    login(client, user)
    for page in ("/residents", "/m"):
        text = client.get(page).text
        links = {h for nav in NAV.findall(text) for h in re.findall(r'href="([^"]+)"', nav)}
        assert links, page
        for href in links:
            assert client.get(html.unescape(href)).status_code == 200, (user, page, href)
    desk = client.get("/residents").text
    for officers_only in ("/stats", "/registry", "/workers", "/bigscreen"):
        assert (f'href="{officers_only}"' in desk) is (user != "W_G1"), officers_only


# -- 4: the language switch keeps the rest of the URL ----------------------------------------------------------


def _switch(text: str) -> tuple[str, dict[str, list[str]]]:
    m = re.search(r'id="lang-switch" href="([^"]*)"', text)
    assert m, text[:300]
    parts = urlsplit(html.unescape(m.group(1)))
    return parts.path, parse_qs(parts.query)


def test_language_switch_keeps_the_path_and_other_parameters(client: TestClient) -> None:
    login(client, "W_C1")
    path, query = _switch(client.get("/devices?m=1&status=offline").text)
    assert path == "/devices" and query == {"m": ["1"], "status": ["offline"], "lang": ["en"]}
    path, query = _switch(client.get("/stats?month=2026-02&lang=en").text)
    assert path == "/stats" and query == {"month": ["2026-02"], "lang": ["zh"]}
    path, query = _switch(client.get("/m/visits?msg=saved&lang=zh").text)
    assert path == "/m/visits" and query == {"msg": ["saved"], "lang": ["en"]}
    client.cookies.clear()
    path, query = _switch(client.get("/login?next=/m/alerts/1").text)
    assert path == "/login" and query == {"next": ["/m/alerts/1"], "lang": ["en"]}
