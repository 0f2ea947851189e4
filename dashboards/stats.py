"""Statistics (统计监测): counts, response-time percentiles, SLA compliance, device online rate, visit coverage.

Pure functions over read models, so the numbers are tested against a fixed fixture and the same code feeds the
page, the printable monthly report and the CSV export.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerts.escalation import PolicySet
from alerts.labels import ALERT_TYPES, OUTCOMES, label
from alerts.learning import FINE_OUTCOMES
from alerts.views import AlertView, ResidentView, VisitView
from dashboards.listing import local_time
from detection.detectors.base import BEHAVIOURAL
from detection.models import Severity

ACK_TARGET_S: dict[Severity, int] = {Severity.CRITICAL: 300, Severity.WARNING: 1800, Severity.INFO: 24 * 3600}
"""Acknowledge-within targets; the critical and warning ones equal the default first escalation step."""

WORKER_BUDGET_PER_MONTH = 20
"""Behavioural (non-life-safety) alerts one grid's worker can take in a month before the load is flagged: about
one a working day (issue 19, alarm fatigue). Life-safety alerts never count and are never affected."""

VISIT_TARGET = 1.0
"""Every resident is visited at least once a month (探访关爱 100%)."""

SLA_TARGET = 0.95
"""Share of alerts that must meet their deadline (:func:`sla_outcome`); below it the page shows the rate in red."""

ON_SITE_TARGET_S: int = PolicySet().critical.on_site_within_s or 1800
"""The default on-site deadline of a critical alert (the default critical policy), for the page's legend."""


def format_duration(seconds: float | None, t: Callable[..., str]) -> str:
    """A duration in its largest sensible unit: seconds under a minute, minutes under an hour, then hours, days.

    The one formatter of the statistics page, the printable report and the 大屏, so a 23-second median reads
    "23 s" everywhere instead of "0 min" on one page. ``t`` is the request's :class:`dashboards.i18n.Translator`.

    >>> from dashboards.i18n import Translator
    >>> [format_duration(s, Translator("en")) for s in (None, 23, 180, 5400, 2 * 86400)]
    ['-', '23 s', '3 min', '1.5 h', '2 d']
    """
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return str(t("dur.s", n=s))
    if round(s / 60) < 60:
        return str(t("dur.min", n=round(s / 60)))
    if s < 86400:
        return str(t("dur.h", n=_one_decimal(s / 3600)))
    return str(t("dur.d", n=_one_decimal(s / 86400)))


def _one_decimal(value: float) -> str:
    """``1.5``, ``2`` (not ``2.0``)."""
    return f"{value:.1f}".removesuffix(".0")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values.

    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)
    (5, 9)
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """Response times (seconds) and SLA compliance of one group of alerts."""

    group: str
    alerts: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    on_site_p50_s: float | None
    on_site_p90_s: float | None
    sla_met: int
    sla_due: int
    unacked_overdue: int = 0
    """Alerts still unacknowledged past their acknowledge target (counted as missed in ``sla_due``)."""

    @property
    def sla_rate(self) -> float | None:
        """Share of alerts with a decided SLA that met it."""
        return self.sla_met / self.sla_due if self.sla_due else None


def sla_outcome(a: AlertView, now_ms: int) -> bool | None:
    """True/False if the alert met/missed its SLA, None while still undecided.

    Every alert must be acknowledged within :data:`ACK_TARGET_S` of its severity: one still unacknowledged past
    it has missed, even before its on-site deadline. Alerts with an on-site deadline must also be on site by it.
    Cleared alerts that nobody needed to handle do not count.

    >>> from alerts.views import Place, AlertView
    >>> from alerts.lifecycle import State
    >>> from detection.models import AlertType
    >>> sos = AlertView(1, "h1", Place("D", "S", "C", "G"), AlertType.SOS, Severity.CRITICAL, State.OPEN, 0, "", "",
    ...                 on_site_due_ms=1_800_000)
    >>> sla_outcome(sos, 60_000), sla_outcome(sos, 19 * 60_000)
    (None, False)
    """
    if unacked_overdue(a, now_ms):
        return False
    if a.on_site_due_ms is not None:
        if a.on_site_ms is not None:
            return a.on_site_ms <= a.on_site_due_ms
        return False if now_ms > a.on_site_due_ms else None
    due = a.raised_ms + ACK_TARGET_S.get(a.severity, 3600) * 1000
    if a.acked_ms is not None:
        return a.acked_ms <= due
    if a.state.value == "cleared":
        return None
    return False if now_ms > due else None


def unacked_overdue(a: AlertView, now_ms: int) -> bool:
    """True if nobody acknowledged the alert within its severity's target (and it still needed someone)."""
    if a.acked_ms is not None or a.state.value == "cleared":
        return False
    end = a.resolved_ms if a.resolved_ms is not None else now_ms
    return end > a.raised_ms + ACK_TARGET_S.get(a.severity, 3600) * 1000


def response_rows(alerts: Iterable[AlertView], key: Callable[[AlertView], str], now_ms: int) -> list[ResponseRow]:
    """One :class:`ResponseRow` per group (sorted by group id)."""
    groups: dict[str, list[AlertView]] = defaultdict(list)
    for a in alerts:
        groups[key(a)].append(a)
    rows = []
    for group, items in sorted(groups.items()):
        ack = [(a.acked_ms - a.raised_ms) / 1000 for a in items if a.acked_ms is not None]
        on_site = [(a.on_site_ms - a.raised_ms) / 1000 for a in items if a.on_site_ms is not None]
        decided = [o for o in (sla_outcome(a, now_ms) for a in items) if o is not None]
        rows.append(
            ResponseRow(
                group=group,
                alerts=len(items),
                ack_p50_s=percentile(ack, 50),
                ack_p90_s=percentile(ack, 90),
                on_site_p50_s=percentile(on_site, 50),
                on_site_p90_s=percentile(on_site, 90),
                sla_met=sum(decided),
                sla_due=len(decided),
                unacked_overdue=sum(unacked_overdue(a, now_ms) for a in items),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """Monthly visit coverage of one group of residents."""

    group: str
    residents: int
    visited: int

    @property
    def rate(self) -> float:
        """Share of residents visited at least once (target 100%)."""
        return self.visited / self.residents if self.residents else 1.0


def visit_coverage(
    residents: Iterable[ResidentView], visits: Iterable[VisitView], key: Callable[[ResidentView], str]
) -> list[CoverageRow]:
    """Residents visited at least once among ``visits`` (already restricted to the month), per group."""
    visited = {v.resident_id for v in visits}
    totals: Counter[str] = Counter()
    done: Counter[str] = Counter()
    for r in residents:
        totals[key(r)] += 1
        done[key(r)] += r.id in visited
    return [CoverageRow(g, totals[g], done[g]) for g in sorted(totals)]


def count_by(alerts: Iterable[AlertView], key: Callable[[AlertView], str | None]) -> dict[str, int]:
    """Alerts per key value, most frequent first."""
    counter = Counter(key(a) or "-" for a in alerts)
    return dict(counter.most_common())


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One grid's behavioural alert load of the month, and the home that contributed most (a tuning suggestion)."""

    group: str
    behavioural: int
    false_alarms: int
    budget: int
    top_resident_id: str
    top_name: str
    top_alerts: int
    top_false: int

    @property
    def over(self) -> bool:
        """More behavioural alerts than the worker's monthly budget."""
        return self.behavioural > self.budget


def _elder_was_fine(a: AlertView) -> bool:
    """The alert's outcome says the elder was fine (:data:`alerts.learning.FINE_OUTCOMES`): a needless alert."""
    return a.outcome is not None and a.outcome in FINE_OUTCOMES


def worker_load(alerts: Iterable[AlertView], budget: int = WORKER_BUDGET_PER_MONTH) -> list[LoadRow]:
    """Behavioural alerts per grid (its worker's load), busiest first, with the home behind most of them.

    The engine already widens a home's behavioural limits when the home itself pages too often
    (``detection.fatigue``); a worker over budget across many homes is a staffing or device question, so this only
    reports it with the numbers: thresholds are never widened because of a worker's caseload.

    >>> from alerts.views import Place
    >>> from alerts.lifecycle import State
    >>> from detection.models import AlertType
    >>> def a(site, t, outcome=None):
    ...     return AlertView(1, site, Place("D", "S", "C", "G1"), t, Severity.WARNING, State.RESOLVED, 0, "", "",
    ...                      resident_id="R-" + site, resident_name="N" + site, outcome=outcome)
    >>> rows = worker_load([a("h1", AlertType.INACTIVITY, "false_alarm"), a("h1", AlertType.NOT_UP),
    ...                     a("h2", AlertType.INACTIVITY), a("h2", AlertType.SOS)], budget=2)
    >>> (rows[0].group, rows[0].behavioural, rows[0].over, rows[0].top_name, rows[0].top_alerts, rows[0].top_false)
    ('G1', 3, True, 'Nh1', 2, 1)
    """
    per_grid: dict[str, list[AlertView]] = defaultdict(list)
    for a in alerts:
        if a.type in BEHAVIOURAL:
            per_grid[a.place.grid].append(a)
    rows = []
    for grid, items in per_grid.items():
        by_home = Counter(a.resident_id or a.site for a in items)
        top, n = by_home.most_common(1)[0]
        top_items = [a for a in items if (a.resident_id or a.site) == top]
        rows.append(
            LoadRow(
                group=grid,
                behavioural=len(items),
                false_alarms=sum(1 for a in items if _elder_was_fine(a)),
                budget=budget,
                top_resident_id=top_items[0].resident_id,
                top_name=top_items[0].resident_name or top,
                top_alerts=n,
                top_false=sum(1 for a in top_items if _elder_was_fine(a)),
            )
        )
    return sorted(rows, key=lambda r: (-r.behavioural, r.group))


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """Everything on the statistics page for one month."""

    month: str
    alerts: int
    by_type: dict[str, int]
    by_outcome: dict[str, int]
    """Outcomes of the month's resolved alerts (an outcome is what a worker found; open alerts have none yet)."""
    by_community: dict[str, int]
    response_by_community: list[ResponseRow]
    response_by_grid: list[ResponseRow]
    devices_online: int
    devices_total: int
    coverage_by_community: list[CoverageRow]
    coverage_by_grid: list[CoverageRow]
    device_source: str
    """Where the online count came from: ``telemetry`` (last-seen times) or ``alerts`` (open offline alerts)."""
    devices_unseen: int = 0
    """Registered devices that never reported (not installed yet?): their own category, not in the online rate."""
    devices_offline: int = 0
    devices_as_of_ms: int | None = None
    """When the device counts were judged: always now, whatever the month (no device status history is kept)."""
    checkin_prompts: int = 0
    """Check-ins sent to elders before a behavioural page (issue 19)."""
    checkin_answered: int = 0
    """Of them answered by the elder ("elder fine"): closed without a page."""
    checkin_paged: int = 0
    """Of them paged: no answer within the window, or the elder asked for help."""
    load_by_grid: tuple[LoadRow, ...] = ()
    """Behavioural alert load per grid worker against :data:`WORKER_BUDGET_PER_MONTH` (issue 19)."""
    load_budget: int = WORKER_BUDGET_PER_MONTH
    still_open: int = 0
    """Alerts of the month not closed yet (open, acknowledged, en route, on site): shown apart from outcomes."""
    cleared: int = 0
    """Alerts closed by the system when their condition ended (e.g. a device back online), without an outcome."""

    @property
    def checkin_answer_rate(self) -> float | None:
        """Share of decided check-ins the elder answered."""
        decided = self.checkin_answered + self.checkin_paged
        return self.checkin_answered / decided if decided else None

    @property
    def device_online_rate(self) -> float | None:
        """Online (or late) share of all registered devices.

        A device that never reported is not online: it is not watching anyone, whether it was never installed or
        is broken, so it counts in the denominator (and the page names how many there are next to the rate).
        """
        return self.devices_online / self.devices_total if self.devices_total > 0 else None

    @property
    def sla_rate(self) -> float | None:
        """Share of the month's alerts with a decided SLA that met it (all communities)."""
        met = sum(r.sla_met for r in self.response_by_community)
        due = sum(r.sla_due for r in self.response_by_community)
        return met / due if due else None

    @property
    def sla_unacked_overdue(self) -> int:
        """Alerts of the month left unacknowledged past their target (each counted as a missed SLA)."""
        return sum(r.unacked_overdue for r in self.response_by_community)

    @property
    def coverage_total(self) -> CoverageRow:
        """Coverage over every resident in scope."""
        rows = self.coverage_by_community
        return CoverageRow("*", sum(r.residents for r in rows), sum(r.visited for r in rows))


def monthly_report(
    *,
    month: str,
    alerts: Sequence[AlertView],
    residents: Sequence[ResidentView],
    visits: Sequence[VisitView],
    now_ms: int,
    devices: tuple[int, int],
    device_source: str,
    devices_unseen: int = 0,
    devices_offline: int = 0,
    devices_as_of_ms: int | None = None,
    checkins: Mapping[str, int] | None = None,
) -> MonthlyReport:
    """Build the report from the month's alerts and visits and the residents in scope.

    ``devices`` is ``(online, total)`` from :meth:`dashboards.device_report.DeviceReport.online_rate` and
    ``device_source`` where that report's status came from (``telemetry`` or ``alerts``), judged at
    ``devices_as_of_ms`` (now, whatever the month: the store keeps no history of device status); ``checkins`` counts the
    month's check-in steps (``prompt``, ``answered``, ``paged``: :meth:`alerts.store.checkins.CheckInStore.counts`).
    """
    online, total = devices
    steps = checkins or {}
    return MonthlyReport(
        month=month,
        alerts=len(alerts),
        by_type=count_by(alerts, lambda a: a.type.value),
        by_outcome=count_by([a for a in alerts if a.outcome and not a.active], lambda a: a.outcome),
        by_community=count_by(alerts, lambda a: a.place.community),
        response_by_community=response_rows(alerts, lambda a: a.place.community, now_ms),
        response_by_grid=response_rows(alerts, lambda a: a.place.grid, now_ms),
        devices_online=online,
        devices_total=total,
        coverage_by_community=visit_coverage(residents, visits, lambda r: r.place.community),
        coverage_by_grid=visit_coverage(residents, visits, lambda r: r.place.grid),
        device_source=device_source,
        devices_unseen=devices_unseen,
        devices_offline=devices_offline,
        devices_as_of_ms=devices_as_of_ms,
        checkin_prompts=steps.get("prompt", 0),
        checkin_answered=steps.get("answered", 0),
        checkin_paged=steps.get("paged", 0),
        load_by_grid=tuple(worker_load(alerts, WORKER_BUDGET_PER_MONTH)),
        load_budget=WORKER_BUDGET_PER_MONTH,
        still_open=sum(a.active for a in alerts),
        cleared=sum(1 for a in alerts if not a.active and not a.outcome),
    )


def report_csv_rows(report: MonthlyReport, lang: str = "zh") -> list[list[str]]:
    """The report as CSV rows: ``section, group, metric, value, name``.

    ``group`` stays the machine code (alert type, outcome, area id) for spreadsheets and scripts; ``name`` is its
    label in ``lang`` from the one catalogue (:mod:`alerts.labels`), the same words as console and phone.
    """

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4g}"

    rows = [["section", "group", "metric", "value", "name"], ["summary", "*", "alerts", str(report.alerts)]]
    rows += [["by_type", k, "alerts", str(v), label(ALERT_TYPES, k, lang)] for k, v in report.by_type.items()]
    rows += [["by_outcome", k, "alerts", str(v), label(OUTCOMES, k, lang)] for k, v in report.by_outcome.items()]
    rows += [["by_community", k, "alerts", str(v)] for k, v in report.by_community.items()]
    for section, resp in (
        ("response_community", report.response_by_community),
        ("response_grid", report.response_by_grid),
    ):
        for r in resp:
            rows += [
                [section, r.group, "ack_p50_s", fmt(r.ack_p50_s)],
                [section, r.group, "ack_p90_s", fmt(r.ack_p90_s)],
                [section, r.group, "on_site_p50_s", fmt(r.on_site_p50_s)],
                [section, r.group, "on_site_p90_s", fmt(r.on_site_p90_s)],
                [section, r.group, "sla_rate", fmt(r.sla_rate)],
            ]
    rows.append(["devices", "*", "online_rate", fmt(report.device_online_rate)])
    rows.append(["devices", "*", "online_source", report.device_source])
    if report.devices_as_of_ms is not None:  # the rate is of that moment, not of the report's month
        rows.append(["devices", "*", "online_as_of", local_time(report.devices_as_of_ms, "%Y-%m-%d %H:%M")])
    rows.append(["devices", "*", "offline", str(report.devices_offline)])
    rows.append(["devices", "*", "never_reported", str(report.devices_unseen)])
    rows.append(["summary", "*", "unacknowledged_overdue", str(report.sla_unacked_overdue)])
    rows.append(["summary", "*", "still_open", str(report.still_open)])
    rows.append(["summary", "*", "cleared", str(report.cleared)])
    rows.append(["summary", "*", "sla_rate", fmt(report.sla_rate)])
    rows.append(["summary", "*", "sla_target", fmt(SLA_TARGET)])
    rows.append(["checkins", "*", "prompts", str(report.checkin_prompts)])
    rows.append(["checkins", "*", "answered", str(report.checkin_answered)])
    rows.append(["checkins", "*", "paged", str(report.checkin_paged)])
    rows.append(["checkins", "*", "answer_rate", fmt(report.checkin_answer_rate)])
    for ld in report.load_by_grid:
        rows += [
            ["worker_load", ld.group, "behavioural_alerts", str(ld.behavioural)],
            ["worker_load", ld.group, "false_alarms", str(ld.false_alarms)],
            ["worker_load", ld.group, "budget", str(ld.budget)],
        ]
    for section, cov in (
        ("coverage_community", report.coverage_by_community),
        ("coverage_grid", report.coverage_by_grid),
    ):
        rows += [[section, c.group, "visit_coverage", fmt(c.rate)] for c in cov]
    return rows
