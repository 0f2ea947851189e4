"""API and page scoping (every list and detail endpoint), masking, audit, alert actions, one-tap links, visits."""

from __future__ import annotations

import time

import pytest
from dash_fixtures import IDS, VISIBLE
from dash_helpers import Backend, alert_of, login
from fastapi.testclient import TestClient
from support.tamper import tampered

from alerts.scope import Scope
from detection.models import Alert, AlertType, Severity

SITE_OF = {"R1": "h1", "R2": "h2", "R3": "h3", "R4": "h4"}


def _now() -> int:
    return int(time.time() * 1000)


def _raise(backend: Backend, site: str, kind: AlertType = AlertType.SOS, sev: Severity = Severity.CRITICAL) -> int:
    alert = Alert(
        site=site,
        type=kind,
        severity=sev,
        time_ms=_now() - 30_000,
        explanation="SOS pressed",
        explanation_zh="按下紧急呼叫",
    )
    return backend.raise_alert(alert).id


@pytest.fixture
def alerts(backend: Backend) -> dict[str, int]:
    """One SOS per home: resident id → alert id."""
    return {rid: _raise(backend, site) for rid, site in SITE_OF.items()}


@pytest.mark.parametrize("worker", sorted(VISIBLE))
def test_every_list_and_detail_is_scoped(
    client: TestClient, backend: Backend, alerts: dict[str, int], worker: str
) -> None:
    login(client, worker)
    visible = VISIBLE[worker]
    assert {e["id"] for e in client.get("/api/elders").json()} == visible
    assert {a["resident_id"] for a in client.get("/api/alerts").json()} == visible
    assert {a["resident_id"] for a in client.get("/api/alerts?status=closed").json()} == set()
    assert {a["resident_id"] for a in client.get("/api/alerts?status=all").json()} == visible
    assert {d["site"] for d in client.get("/api/devices").json()} == {SITE_OF[r] for r in visible}
    for rid, alert_id in alerts.items():
        expect = 200 if rid in visible else 404
        assert client.get(f"/api/elders/{rid}").status_code == expect
        assert client.get(f"/api/elders/{rid}/alerts").status_code == expect
        assert client.get(f"/api/alerts/{alert_id}").status_code == expect
        assert client.get(f"/residents/{rid}").status_code == expect
        assert client.get(f"/console/alerts/{alert_id}").status_code == expect
        assert client.get(f"/m/alerts/{alert_id}").status_code == expect
    page = client.get("/residents").text
    for rid in alerts:
        assert (f'href="/residents/{rid}"' in page) == (rid in visible)


def test_other_grids_resident_is_404_not_403(client: TestClient, alerts: dict[str, int]) -> None:
    csrf = login(client, "W_G1")
    r = client.get("/api/elders/R2")
    assert r.status_code == 404
    assert client.get("/api/elders/NOPE").status_code == 404
    assert client.get("/api/elders/NOPE").json() == r.json()  # indistinguishable from "does not exist"
    r = client.post(
        f"/api/alerts/{alerts['R2']}/actions", json={"action": "acknowledge"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 404
    r = client.post("/api/visits", json={"resident_id": "R2", "outcome": "well"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 404


def test_lists_mask_personal_data_and_reads_are_audited(client: TestClient, backend: Backend) -> None:
    login(client, "W_C1")
    listed = client.get("/api/elders").json()
    r1 = next(e for e in listed if e["id"] == "R1")
    assert r1["id_number"] == "1101**********0024" and r1["phone"] == "139****0001"
    page = client.get("/residents").text
    assert IDS["R1"] not in page and "13900000001" not in page and "1101**********0024" in page
    detail = client.get("/api/elders/R1").json()
    assert detail["id_number"] == "1101**********0024"
    assert detail["contacts"][0]["phone"] == "13700000001"
    client.get("/residents/R1")
    reads = [e for e in backend.audit_log() if e.action == "resident.read" and e.entity_id == "R1"]
    assert len(reads) == 2 and all(e.actor == "W_C1" for e in reads)
    # The rest of a resident's data is personal too: the alert history, the away notices (reasons such as a
    # hospital stay), and the phone page of them; each read is audited, saying what was read (it was not).
    assert client.get("/api/elders/R1/alerts").status_code == 200
    assert client.get("/api/elders/h1/away").status_code == 200
    assert client.get("/m/residents/R1/away").status_code == 200
    reads = [e for e in backend.audit_log() if e.action == "resident.read" and e.entity_id == "R1"]
    assert sorted(e.detail.get("what", "") for e in reads) == ["", "", "alerts", "away", "away"], reads


def test_alert_lifecycle_through_api_and_queue_order(client: TestClient, backend: Backend) -> None:
    warn = _raise(backend, "h1", AlertType.INACTIVITY, Severity.WARNING)
    sos = _raise(backend, "h2")
    csrf = login(client, "W_C1")
    assert [a["id"] for a in client.get("/api/alerts").json()] == [sos, warn]
    h = {"X-CSRF-Token": csrf}
    assert client.post(f"/api/alerts/{sos}/actions", json={"action": "acknowledge"}, headers=h).json()["state"] == (
        "acknowledged"
    )
    assert client.post(f"/api/alerts/{sos}/assign", json={"worker_id": "W_G2"}, headers=h).json()["assignee"] == "W_G2"
    assert client.post(f"/api/alerts/{sos}/assign", json={"worker_id": "W_G4"}, headers=h).status_code == 404
    assert client.post(f"/api/alerts/{sos}/actions", json={"action": "en_route"}, headers=h).status_code == 200
    assert client.post(f"/api/alerts/{sos}/actions", json={"action": "acknowledge"}, headers=h).status_code == 409
    assert client.post(f"/api/alerts/{sos}/actions", json={"action": "resolve"}, headers=h).status_code == 409
    done = client.post(
        f"/api/alerts/{sos}/actions", json={"action": "resolve", "outcome": "assisted_at_home"}, headers=h
    ).json()
    assert done["state"] == "resolved" and done["outcome"] == "assisted_at_home" and done["resolved_ms"] is not None
    assert [a["id"] for a in client.get("/api/alerts").json()] == [warn]
    closed = client.post(f"/api/alerts/{sos}/assign", json={"worker_id": "W_G1"}, headers=h)
    assert closed.status_code == 409 and alert_of(backend, sos).assignee == "W_G2"
    form = client.post(f"/console/alerts/{sos}/assign", data={"csrf": csrf, "worker_id": "W_G1"})
    assert form.status_code == 200 and "当前状态不允许此操作" in form.text
    transitions = [e for e in backend.audit_log() if e.action == "alert.transition" and e.entity_id == str(sos)]
    assert {"acknowledge", "en_route", "resolve"} <= {e.detail.get("action") for e in transitions}
    assert {e.actor for e in transitions} == {"W_C1"}


def test_console_actions_via_form(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1")
    csrf = login(client, "W_C1")
    assert f'data-alert="{sos}"' in client.get("/console").text
    r = client.post(f"/console/alerts/{sos}/act", data={"csrf": csrf, "action": "acknowledge"})
    assert r.status_code == 200 and 'data-state="acknowledged"' in r.text
    r = client.post(f"/console/alerts/{sos}/act", data={"csrf": csrf, "action": "acknowledge"})
    assert "当前状态不允许此操作" in r.text
    assert client.post(f"/console/alerts/{sos}/act", data={"csrf": "x", "action": "on_site"}).status_code == 403


def test_one_tap_link_flow(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1")
    view = backend.link_token(alert_id=sos, worker_id="W_G1", action="view", now_ms=_now())
    page = client.get(f"/m/{view}")  # no login needed: the signed token is the capability
    assert page.status_code == 200 and "已到场" in page.text
    import re

    on_site = re.search(r'action="/m/([^"]+)"><button class="tap act-on_site"', page.text)
    assert on_site
    r = client.post(f"/m/{on_site.group(1)}", follow_redirects=True)
    assert r.status_code == 200 and 'data-state="on_site"' in r.text
    assert client.post(f"/m/{on_site.group(1)}", follow_redirects=True).status_code == 200  # second use: no-op
    resolve = re.search(r'action="/m/([^"]+)" class="resolve"', r.text)
    assert resolve
    r = client.post(f"/m/{resolve.group(1)}", data={"outcome": "false_alarm"}, follow_redirects=True)
    assert 'data-state="resolved"' in r.text
    alert = alert_of(backend, sos)
    assert alert.outcome == "false_alarm" and alert.assignee == "W_G1"
    assert [e.actor for e in alert.events[1:]] == ["W_G1", "W_G1"]
    assert client.get("/m/forged.token").status_code == 404
    assert client.get(f"/m/{tampered(view)}").status_code == 404


def test_phone_actions_and_visits(client: TestClient, backend: Backend) -> None:
    sos = _raise(backend, "h1")
    csrf = login(client, "W_G1")
    assert f'href="/m/alerts/{sos}"' in client.get("/m").text
    r = client.post(f"/m/alerts/{sos}/act", data={"csrf": csrf, "action": "on_site"}, follow_redirects=True)
    assert 'data-state="on_site"' in r.text
    page = client.get("/m/visits").text
    assert 'id="coverage">0/1<' in page
    r = client.post(
        "/m/visits",
        data={"csrf": csrf, "resident_id": "R1", "outcome": "well", "time": "", "note": "身体不错"},
        follow_redirects=True,
    )
    assert "探访已记录" in r.text and 'id="coverage">1/1<' in r.text
    visit = backend.list_visits(Scope("all"), since_ms=0, until_ms=2**62)[-1]
    assert visit.note == "身体不错" and visit.worker_id == "W_G1"
    r = client.post("/m/visits", data={"csrf": csrf, "resident_id": "R2", "outcome": "well"})
    assert r.status_code == 404
    # A slip of the year on the date picker: refused with the reason, not filed where it never counts.
    before = len(backend.list_visits(Scope("all"), since_ms=0, until_ms=2**62))
    r = client.post(
        "/m/visits", data={"csrf": csrf, "resident_id": "R1", "outcome": "well", "time": "2030-01-01T10:00"}
    )
    assert r.status_code == 422 and "探访时间不能晚于现在" in r.text
    assert len(backend.list_visits(Scope("all"), since_ms=0, until_ms=2**62)) == before


def test_live_stream_sends_queue(client: TestClient, backend: Backend) -> None:
    """The SSE feed's first event carries the caller's scoped queue."""
    _raise(backend, "h1")
    _raise(backend, "h4")
    login(client, "W_G1")
    import json

    with client.stream("GET", "/api/alerts/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                assert [a["site"] for a in data["alerts"]] == ["h1"]
                break


def test_openapi_lists_resources(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/alerts", "/api/elders/{resident_id}", "/api/devices", "/api/visits", "/api/stats/monthly"):
        assert p in paths
