"""The risk-ranked visit list puts first those whose recent data looks worse."""

from __future__ import annotations

from alerts.lifecycle import State
from alerts.views import AlertView, Place, ResidentView, VisitView
from dashboards.risk import DAY_MS, rank_for_visits
from detection.models import AlertType, Severity

P = Place("D", "S", "C", "G")
NOW = 100 * DAY_MS
MONTH_START = NOW - 10 * DAY_MS


def _r(rid: str, *, cats: tuple[str, ...] = (), level: int = 0) -> ResidentView:
    return ResidentView(rid, rid, "F", 1940, "", "", cats, level, True, f"s{rid}", "", P)


def _a(site: str, sev: Severity, days_ago: float) -> AlertView:
    t = NOW - int(days_ago * DAY_MS)
    return AlertView(1, site, P, AlertType.INACTIVITY, sev, State.RESOLVED, t, "", "")


def test_ranking_reasons_and_order() -> None:
    residents = [_r("calm"), _r("alerts"), _r("declining"), _r("visited"), _r("frail", cats=("独居",), level=4)]
    alerts = [
        _a("salerts", Severity.CRITICAL, 2),
        _a("salerts", Severity.WARNING, 5),
        _a("svisited", Severity.CRITICAL, 1),
        _a("scalm", Severity.CRITICAL, 45),  # older than 30 days: ignored
    ]
    visits = [
        VisitView(1, "visited", "W", NOW - 2 * DAY_MS, "well"),
        VisitView(2, "calm", "W", NOW - 20 * DAY_MS, "well"),
        VisitView(3, "declining", "W", NOW - 20 * DAY_MS, "well"),
        VisitView(4, "alerts", "W", NOW - 20 * DAY_MS, "well"),
        VisitView(5, "frail", "W", NOW - 20 * DAY_MS, "well"),
    ]
    ranked = rank_for_visits(
        residents,
        alerts=alerts,
        visits=visits,
        month_start_ms=MONTH_START,
        now_ms=NOW,
        activity_ratio={"sdeclining": 0.4},
    )
    assert [e.resident.id for e in ranked] == ["alerts", "declining", "frail", "calm", "visited"]
    by_id = {e.resident.id: e for e in ranked}
    assert by_id["alerts"].alerts_30d == 2 and by_id["calm"].alerts_30d == 0
    assert by_id["declining"].activity_drop_pct == 60
    assert by_id["calm"].days_since_visit == 20
    assert by_id["visited"].visited_this_month and not by_id["alerts"].visited_this_month


def test_never_visited_counts_as_long_ago() -> None:
    ranked = rank_for_visits(
        [_r("new"), _r("seen")],
        alerts=[],
        visits=[VisitView(1, "seen", "W", NOW - 15 * DAY_MS, "well")],
        month_start_ms=MONTH_START,
        now_ms=NOW,
    )
    assert [e.resident.id for e in ranked] == ["new", "seen"]
    assert ranked[0].days_since_visit is None


def test_an_unusual_day_moves_an_elder_up_with_its_reasons() -> None:
    residents = [_r("steady"), _r("odd"), _r("typical")]
    visits = [VisitView(i, rid, "W", NOW - 20 * DAY_MS, "well") for i, rid in enumerate(["steady", "odd", "typical"])]
    routine = {"sodd": (2.8, ("activity", "wake_min")), "styp": (1.1, ()), "stypical": (1.2, ("bed_min",))}
    ranked = rank_for_visits(
        residents, alerts=[], visits=visits, month_start_ms=MONTH_START, now_ms=NOW, routine=routine
    )
    assert ranked[0].resident.id == "odd"
    assert ranked[0].routine_score == 2.8 and ranked[0].routine_drivers == ("activity", "wake_min")
    typical = next(e for e in ranked if e.resident.id == "typical")
    # A typical day (score below 1.5) neither moves the elder nor shows a reason.
    assert typical.routine_score is None and typical.routine_drivers == ()
    assert typical.score == next(e for e in ranked if e.resident.id == "steady").score
