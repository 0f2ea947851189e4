"""Statistics against a fixed fixture: counts, p50/p90 response times, SLA compliance, coverage, CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest
from dash_helpers import Backend, login
from fastapi.testclient import TestClient

from alerts.labels import ALERT_TYPES, label
from alerts.lifecycle import State
from alerts.views import AlertView, DeviceView, Place, ResidentView, VisitView
from dashboards.device_report import DeviceReport, build_rows
from dashboards.listing import month_window
from dashboards.stats import monthly_report, percentile, report_csv_rows, sla_outcome
from detection.config import DetectConfig
from detection.models import AlertType, Severity

MIN = 60_000
T0 = month_window("2026-03", 0)[1] + 86_400_000  # 2 March 2026, 00:00 Shanghai
P1 = Place("D01", "S01", "C01", "G01")
P2 = Place("D01", "S01", "C01", "G02")
P3 = Place("D01", "S02", "C03", "G04")


def _alert(
    i: int,
    place: Place,
    *,
    kind: AlertType = AlertType.SOS,
    sev: Severity = Severity.CRITICAL,
    ack: int | None = None,
    on_site: int | None = None,
    state: State = State.RESOLVED,
    outcome: str | None = "assisted_at_home",
) -> AlertView:
    raised = T0 + i * 3_600_000
    return AlertView(
        id=i,
        site=f"h{i}",
        place=place,
        type=kind,
        severity=sev,
        state=state,
        raised_ms=raised,
        explanation="",
        explanation_zh="",
        acked_ms=raised + ack * MIN if ack is not None else None,
        on_site_ms=raised + on_site * MIN if on_site is not None else None,
        on_site_due_ms=raised + 30 * MIN if sev is Severity.CRITICAL else None,
        outcome=outcome if state is State.RESOLVED else None,
    )


ALERTS = [
    _alert(1, P1, ack=1, on_site=10),
    _alert(2, P1, ack=2, on_site=20),
    _alert(3, P1, ack=3, on_site=40),  # on site after the 30 min deadline: SLA missed
    _alert(4, P2, ack=4, on_site=15, outcome="false_alarm"),
    _alert(5, P2, kind=AlertType.INACTIVITY, sev=Severity.WARNING, ack=20, outcome="family_contacted"),
    _alert(6, P2, kind=AlertType.INACTIVITY, sev=Severity.WARNING, ack=45, outcome="family_contacted"),  # > 30 min
    _alert(7, P3, kind=AlertType.DEVICE_OFFLINE, sev=Severity.INFO, state=State.CLEARED, outcome=None),
    _alert(8, P3, state=State.OPEN),  # open, deadline passed by report time: SLA missed
]


def _resident(rid: str, place: Place, online: list[bool]) -> ResidentView:
    devices = tuple(DeviceView(f"d{i}", "door", None, on) for i, on in enumerate(online))
    return ResidentView(rid, rid, "F", 1940, "", "", (), 1, True, f"s{rid}", "", place, devices=devices)


RESIDENTS = [
    _resident("R1", P1, [True, True]),
    _resident("R2", P1, [True, False]),
    _resident("R3", P2, [True, True]),
    _resident("R4", P3, [False, True]),
]
VISITS = [
    VisitView(1, "R1", "W", T0, "well"),
    VisitView(2, "R1", "W", T0 + 1, "well"),
    VisitView(3, "R3", "W", T0, "well"),
]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([60, 120, 180], 50) == 120
    assert percentile([60, 120, 180], 90) == 180


def test_report_numbers_against_fixture() -> None:
    now = T0 + 30 * 86_400_000
    devices = DeviceReport(  # without telemetry: the residents' alert-derived device flags, each home's once
        rows=tuple(build_rows(RESIDENTS, ALERTS, seen=None, now_ms=now, config=DetectConfig())),
        source="alerts",
        now_ms=now,
    )
    r = monthly_report(
        month="2026-03", alerts=ALERTS, residents=RESIDENTS, visits=VISITS, now_ms=now,
        devices=devices.online_rate(), device_source=devices.source,
    )  # fmt: skip
    assert r.alerts == 8
    assert r.by_type == {"sos": 5, "inactivity": 2, "device_offline": 1}
    # Outcomes of resolved alerts only; the open and the cleared ones are counted apart.
    assert r.by_outcome == {"assisted_at_home": 3, "family_contacted": 2, "false_alarm": 1}
    assert (r.still_open, r.cleared) == (1, 1)
    assert r.by_community == {"C01": 6, "C03": 2}
    c01, c03 = r.response_by_community
    assert (c01.group, c01.alerts) == ("C01", 6)
    # ack minutes 1, 2, 3, 4, 20, 45 → p50 = 3 min, p90 = 45 min (nearest rank)
    assert (c01.ack_p50_s, c01.ack_p90_s) == (180, 2700)
    # on-site minutes 10, 20, 40, 15 → p50 = 15 min, p90 = 40 min
    assert (c01.on_site_p50_s, c01.on_site_p90_s) == (900, 2400)
    # SLA: on-site by 30 min for SOS (3 of 4 met), ack within 30 min for warnings (1 of 2 met)
    assert (c01.sla_met, c01.sla_due) == (4, 6)
    # C03: the cleared device alert is not counted, the open SOS is past its deadline
    assert (c03.alerts, c03.sla_met, c03.sla_due, c03.ack_p50_s) == (2, 0, 1, None)
    grids = {row.group: row for row in r.response_by_grid}
    assert (grids["G01"].sla_met, grids["G01"].sla_due) == (2, 3)
    assert (grids["G02"].sla_met, grids["G02"].sla_due) == (2, 3)
    assert (r.devices_online, r.devices_total) == (6, 8)
    assert [(c.group, c.visited, c.residents) for c in r.coverage_by_grid] == [
        ("G01", 1, 2),
        ("G02", 1, 1),
        ("G04", 0, 1),
    ]
    assert r.coverage_total.rate == 0.5
    rows = report_csv_rows(r)
    assert ["response_community", "C01", "sla_rate", "0.6667"] in rows
    assert ["coverage_grid", "G02", "visit_coverage", "1"] in rows
    # Alert types carry the catalogue's name beside the code, in the asked language.
    by_type = [row for row in rows if row[0] == "by_type"]
    assert by_type and all(row[4] == label(ALERT_TYPES, row[1], "zh") != row[1] for row in by_type)
    en = [row for row in report_csv_rows(r, "en") if row[0] == "by_type"]
    assert [row[4] for row in en] == [label(ALERT_TYPES, row[1], "en") for row in by_type]


def test_undecided_sla_is_not_counted() -> None:
    a = _alert(9, P1, state=State.OPEN)
    assert sla_outcome(a, a.raised_ms + 4 * MIN) is None  # within the 5-minute acknowledge target
    assert sla_outcome(a, a.raised_ms + 31 * MIN) is False


def test_unacknowledged_overdue_alerts_count_against_sla_and_never_reported_devices_are_separate() -> None:
    """Issue 15: "SLA 100 %" was shown while alerts sat unacknowledged for 19 minutes; the online rate counted
    devices that never reported."""
    waiting = [replace(_alert(20, P1, state=State.OPEN), id=20 + i, raised_ms=T0 + i * MIN) for i in range(3)]
    waiting = [replace(a, on_site_due_ms=a.raised_ms + 30 * MIN) for a in waiting]
    now = T0 + 19 * MIN  # all three unacknowledged for 17-19 min, on-site deadline (30 min) not yet reached
    assert all(sla_outcome(a, now) is False for a in waiting)
    r = monthly_report(
        month="2026-03", alerts=waiting, residents=RESIDENTS, visits=VISITS, now_ms=now, devices=(6, 10),
        device_source="telemetry", devices_unseen=2, devices_offline=2,
    )  # fmt: skip
    (row,) = r.response_by_community
    assert (row.sla_met, row.sla_due, row.unacked_overdue) == (0, 3, 3)
    assert r.sla_unacked_overdue == 3
    # The 2 never-reported devices are not "offline", but not online either: they stay in the denominator.
    assert r.device_online_rate == 6 / 10
    rows = report_csv_rows(r)
    assert ["devices", "*", "never_reported", "2"] in rows and ["devices", "*", "offline", "2"] in rows
    assert ["summary", "*", "unacknowledged_overdue", "3"] in rows


def test_stats_endpoint_and_csv_are_scoped(client: TestClient, backend: Backend) -> None:
    from alerts.scope import Scope

    now = int(__import__("time").time() * 1000)
    backend.record_visit(resident_id="R1", worker_id="W_G1", time_ms=now, outcome="well", note="")
    login(client, "W_C1")
    data = client.get("/api/stats/monthly").json()
    assert [c["group"] for c in data["coverage_by_grid"]] == ["G01", "G02"]
    assert data["visit_coverage"] == 0.5
    assert data["devices_total"] == 6
    r = client.get("/api/stats/monthly.csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0] == ["section", "group", "metric", "value", "name"]
    assert ["coverage_grid", "G01", "visit_coverage", "1"] in rows
    # Alert types carry the catalogue's name beside the code, in the caller's language.
    assert any(e.action == "stats.exported" for e in backend.audit_log())
    page = client.get("/stats/report")
    assert page.status_code == 200 and "50.0%" in page.text
    assert backend.list_visits(Scope("all"), since_ms=0, until_ms=2**62)


def test_worker_load_flags_a_grid_over_budget_with_the_busiest_home(
    client: TestClient, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19 item 5, per worker: behavioural alerts per grid against a budget; life-safety alerts never count."""
    import time

    from detection.models import Alert

    monkeypatch.setattr("dashboards.stats.WORKER_BUDGET_PER_MONTH", 2)
    now = int(time.time() * 1000)
    for kind in (AlertType.INACTIVITY, AlertType.NOT_UP, AlertType.NIGHT_DOOR, AlertType.SOS):
        severity = Severity.CRITICAL if kind is AlertType.SOS else Severity.WARNING
        backend.raise_alert(
            Alert(site="h1", type=kind, severity=severity, time_ms=now - 60_000, explanation="x", explanation_zh="x")
        )
    login(client, "W_C1")
    data = client.get("/api/stats/monthly").json()
    [g1] = [r for r in data["load_by_grid"] if r["group"] == "G01"]
    assert g1["behavioural"] == 3 and g1["budget"] == 2 and g1["over"] is True  # the SOS is not counted
    assert g1["top_resident_id"] == "R1" and g1["top_alerts"] == 3
    page = client.get("/stats")
    assert page.status_code == 200
    assert 'class="load-row over" data-grid="G01"' in page.text
    assert "超出预算：张桂英 家本月 3 次" in page.text and 'href="/residents/R1"' in page.text
    rows = list(csv.reader(io.StringIO(client.get("/api/stats/monthly.csv").text.lstrip("\ufeff"))))
    assert ["worker_load", "G01", "behavioural_alerts", "3"] in rows and ["worker_load", "G01", "budget", "2"] in rows
