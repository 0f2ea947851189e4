"""One queue order on the phone, the console and the API; people named, not numbered; stopped clocks; relations.

Found by a reviewer on the running stack: ``/m`` put a new open SOS below older alerts already being handled,
the console sank the oldest open SOS under newer ones, pages said "负责人: W002" and "W002 接单", a resolved alert
kept a ticking 已等待 clock, and the English pages said 邻居 / 子女.
"""

from __future__ import annotations

import re
import time

from dash_helpers import Backend, alert_of, login, raise_now
from fastapi.testclient import TestClient

from alerts.lifecycle import Action, Channel, Outcome
from detection.models import Alert, AlertType, Severity


def _now() -> int:
    return int(time.time() * 1000)


def _raise(backend: Backend, site: str, kind: AlertType, severity: Severity, ago_s: int) -> int:
    alert = Alert(
        site=site,
        type=kind,
        severity=severity,
        time_ms=_now() - ago_s * 1000,
        explanation=f"{kind.value} at {site}",
        explanation_zh=f"{site} 的 {kind.value}",
        device="btn1" if kind is AlertType.SOS else None,
    )
    return backend.raise_alert(alert).id


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-alert="(\d+)"', html)]


def test_phone_console_and_api_share_one_order(client: TestClient, backend: Backend) -> None:
    # Handled alerts (acknowledged) and open ones of every kind, raised at different times.
    handled_sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=1200)
    backend.act(handled_sos, Action.ACKNOWLEDGE, actor="W_C1", channel=Channel.CONSOLE, now_ms=_now() - 1100_000)
    old_sos = _raise(backend, "h2", AlertType.SOS, Severity.CRITICAL, ago_s=660)  # open 11 minutes
    inactivity = _raise(backend, "h1", AlertType.INACTIVITY, Severity.WARNING, ago_s=900)
    offline = _raise(backend, "h2", AlertType.DEVICE_OFFLINE, Severity.INFO, ago_s=1000)
    new_fall = _raise(backend, "h1", AlertType.FALL, Severity.CRITICAL, ago_s=5)
    expected = [old_sos, new_fall, inactivity, offline, handled_sos]

    login(client, "W_C1")
    queue = client.get("/console/queue").text
    assert [i for i in _ids(queue) if i in expected] == expected
    assert [a["id"] for a in client.get("/api/alerts").json()] == expected
    # The detail pane opens the top of that queue: the SOS open longest.
    assert f'hx-get="/console/alerts/{old_sos}" hx-trigger="load"' in client.get("/console").text

    client.cookies.clear()
    login(client, "W_G1")  # the grid worker of h1 sees h1's alerts in the same order
    mine = [i for i in expected if i in (handled_sos, inactivity, new_fall)]
    assert _ids(client.get("/m").text) == mine
    assert _ids(client.get("/m/list").text) == mine


def test_workers_are_named_with_their_role_not_their_id(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=120)
    backend.act(sos, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.PHONE, now_ms=_now() - 60_000)
    backend.assign(sos, "W_G1", actor="W_C1", now_ms=_now() - 50_000)
    backend.act(sos, Action.EN_ROUTE, actor="W_S1", channel=Channel.CONSOLE, now_ms=_now() - 40_000)

    login(client, "W_C1")
    detail = client.get(f"/console/alerts/{sos}").text
    assert re.search(r'class="assignee">李网格（网格员）<', detail), detail
    history = detail[detail.index('class="history"') :]
    assert "李网格（网格员）" in history and "王值班（社区值班）" in history
    assert "东城值班（街道值班）" in history  # outside the community officer's own scope, still named
    assert "W_G1" not in history and "W_S1" not in history
    en = client.get(f"/console/alerts/{sos}?lang=en").text
    assert re.search(r'class="assignee">李网格 \(grid worker\)<', en)

    client.cookies.clear()
    login(client, "W_G1")
    phone = client.get(f"/m/alerts/{sos}").text
    phone_history = phone[phone.index('class="history"') :]
    assert "王值班（社区值班）" in phone_history and "东城值班（街道值班）" in phone_history
    assert "W_C1" not in phone_history and "W_S1" not in phone_history
    # The link page, opened by a worker without a session, names people too.
    token = backend.link_token(alert_id=sos, worker_id="W_G1", action="view", now_ms=_now())
    client.cookies.clear()
    linked = client.get(f"/m/{token}").text
    assert "王值班（社区值班）" in linked[linked.index('class="history"') :]


def test_assign_choices_name_the_worker_role_and_area_not_the_id(client: TestClient, backend: Backend) -> None:
    """The assign dropdown read "李网格 (W_G1)": an id means nothing to a duty officer; the value stays the id."""
    sos = raise_now(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=30, device="btn1")
    csrf = login(client, "W_C1")

    def choices(html: str) -> dict[str, str]:
        select = re.search(r'<select name="worker_id"[^>]*>(.*?)</select>', html, re.S)
        assert select, html
        return dict(re.findall(r'<option value="([^"]*)">([^<]*)</option>', select.group(1)))

    assert choices(client.get(f"/console/alerts/{sos}").text) == {
        "W_C1": "王值班 · 社区值班 · 幸福社区",
        "W_G1": "李网格 · 网格员 · 第一网格",
        "W_G2": "赵网格 · 网格员 · 第二网格",
    }
    # The option's value is still the worker's id: choosing one assigns that worker.
    done = client.post(f"/console/alerts/{sos}/assign", data={"csrf": csrf, "worker_id": "W_G2"}).text
    assert re.search(r'class="assignee">赵网格（网格员）<', done), done
    assert alert_of(backend, sos).assignee == "W_G2"
    assert choices(client.get(f"/console/alerts/{sos}?lang=en").text)["W_G1"] == "李网格 · grid worker · 第一网格"


def test_resident_visit_history_names_the_worker_and_role_not_the_id(client: TestClient, backend: Backend) -> None:
    """The resident page's visits read "W_G1 · 良好": the history elsewhere names the person and their role."""
    now = _now()
    backend.record_visit(resident_id="R1", worker_id="W_G1", time_ms=now - 86_400_000, outcome="well", note="")
    backend.record_visit(resident_id="R1", worker_id="W_C1", time_ms=now - 3_600_000, outcome="well", note="")
    backend.set_worker_active("W_G1", False, actor="admin")  # someone who left still made the visit

    def visits(html: str) -> str:
        section = re.search(r'<section class="card" id="visits">.*?<ul class="history">(.*?)</ul>', html, re.S)
        assert section, html
        return section.group(1)

    login(client, "W_C1")
    zh = visits(client.get("/residents/R1").text)
    assert "李网格（网格员）" in zh and "王值班（社区值班）" in zh
    assert "W_G1" not in zh and "W_C1" not in zh
    en = visits(client.get("/residents/R1?lang=en").text)
    assert "李网格 (grid worker)" in en and "王值班 (community duty)" in en


def test_an_unknown_actor_falls_back_to_the_id(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=120)
    backend.act(sos, Action.NOTE, actor="ext-arc-7", channel=Channel.CONSOLE, now_ms=_now(), note="ARC called back")
    login(client, "W_C1")
    detail = client.get(f"/console/alerts/{sos}").text
    assert "ext-arc-7" in detail[detail.index('class="history"') :]


def test_a_handled_alert_shows_how_long_it_waited_not_a_ticking_clock(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=42)
    login(client, "W_C1")
    assert 'class="clock" data-since=' in client.get(f"/console/alerts/{sos}").text  # open: it ticks
    backend.act(sos, Action.ACKNOWLEDGE, actor="W_C1", channel=Channel.CONSOLE, now_ms=_now())
    stored = alert_of(backend, sos)
    assert stored.acked_ms is not None
    s = (stored.acked_ms - stored.raised_ms) // 1000
    waited = f"{s // 60:02d}:{s % 60:02d}"
    acked = client.get(f"/console/alerts/{sos}").text
    assert "data-since" not in acked
    assert f'等待时长 <b class="waited">{waited}</b>' in acked
    queue = client.get("/console/queue").text
    row = queue[queue.index(f'id="alert-{sos}"') :]
    row = row[: row.index("</li>")]
    assert "data-since" not in row and f'等待时长 <span class="waited">{waited}</span>' in row
    time.sleep(1.1)  # resolving later does not change how long it waited
    backend.act(
        sos, Action.RESOLVE, actor="W_C1", channel=Channel.CONSOLE, now_ms=_now(), outcome=Outcome.ASSISTED_AT_HOME
    )
    resolved = client.get(f"/console/alerts/{sos}?lang=en").text
    assert "data-since" not in resolved and f'Waited <b class="waited">{waited}</b>' in resolved
    client.cookies.clear()
    login(client, "W_G1")
    phone = client.get(f"/m/alerts/{sos}").text
    assert "data-since" not in phone and f'<b class="waited">{waited}</b>' in phone


def test_relations_are_translated_in_english(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=10)
    login(client, "W_C1")
    zh = client.get(f"/console/alerts/{sos}").text
    assert "张明（子女）" in zh
    en = client.get(f"/console/alerts/{sos}?lang=en").text
    assert "张明 (child)" in en and "子女" not in en
    assert "张明 (child)" in client.get("/residents/R1?lang=en").text
    client.cookies.clear()
    login(client, "W_G1")
    assert "张明 (child)" in client.get(f"/m/alerts/{sos}?lang=en").text


def test_an_open_alert_says_who_is_told_next_and_when_unless_someone_takes_it(
    client: TestClient, backend: Backend
) -> None:
    """The cost of waiting, where the worker decides: "unless taken, street duty told in 4:18".

    Before, the pages showed how long an alert had waited and the on-site deadline, but not that the street would be
    told: a grid worker learnt it from the street's phone call. The time and roles are the alert's own (its policy
    as snapshotted at the raise: the default critical policy tells the street after 5 min); gone once taken.
    """
    sos = _raise(backend, "h1", AlertType.SOS, Severity.CRITICAL, ago_s=42)
    stored = alert_of(backend, sos)
    assert stored.escalate_to == ("street",) and stored.escalate_due_ms is not None
    assert 0 < stored.escalate_due_ms - _now() <= 300_000  # 5 min from when the service took the alert
    mark = f'data-due="{stored.escalate_due_ms}"'
    login(client, "W_C1")
    queue = client.get("/console/queue").text
    row = queue[queue.index(f'id="alert-{sos}"') :]
    row = row[: row.index("</li>")]
    detail = client.get(f"/console/alerts/{sos}").text
    for page in (row, detail):
        assert "未接单将上报街道值班" in page and mark in page and 'data-overdue="已上报"' in page
    assert "Unless taken, street duty told in" in client.get(f"/console/alerts/{sos}?lang=en").text
    (listed,) = [a for a in client.get("/api/alerts").json() if a["id"] == sos]
    assert (listed["escalate_due_ms"], listed["escalate_to"]) == (stored.escalate_due_ms, ["street"])

    client.cookies.clear()
    login(client, "W_G1")
    assert mark in client.get(f"/m/alerts/{sos}").text
    backend.act(sos, Action.ACKNOWLEDGE, actor="W_G1", channel=Channel.CONSOLE, now_ms=_now())
    taken = client.get(f"/m/alerts/{sos}").text
    assert alert_of(backend, sos).escalate_due_ms is None
    assert mark not in taken and "未接单将上报" not in taken
