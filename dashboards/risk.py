"""Risk-ranked visit list: whom a grid worker should see first this month, and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.views import AlertView, ResidentView, VisitView
from detection.day_profile import UNUSUAL_SCORE
from detection.models import Severity

DAY_MS = 86_400_000
_ALERT_WEIGHT = {Severity.CRITICAL: 3.0, Severity.WARNING: 1.5, Severity.INFO: 0.5}


@dataclass(frozen=True, slots=True)
class RiskEntry:
    """One resident with a score and the reasons behind it (higher = visit sooner)."""

    resident: ResidentView
    score: float
    alerts_30d: int
    days_since_visit: int | None
    activity_drop_pct: int
    visited_this_month: bool
    routine_score: float | None = None
    """How unusual the elder's latest day was against their own days (≈ 1 typical; see detection.day_profile)."""
    routine_drivers: tuple[str, ...] = ()


def rank_for_visits(
    residents: Iterable[ResidentView],
    *,
    alerts: Iterable[AlertView],
    visits: Iterable[VisitView],
    month_start_ms: int,
    now_ms: int,
    activity_ratio: Mapping[str, float] | None = None,
    routine: Mapping[str, tuple[float, tuple[str, ...]]] | None = None,
) -> list[RiskEntry]:
    """Rank residents by recent alerts, declining activity, time since the last visit and frailty.

    ``activity_ratio`` maps a site to its last-7-days activity divided by its 28-day baseline (from telemetry);
    a ratio below 1 is a decline. ``routine`` maps a site to its daily-profile outlier score and the features
    behind it (the detection engine's nightly refit); only an unusual day (score ≥ 1.5) adds to the rank.
    Residents already visited this month sink to the bottom but stay listed.
    """
    by_site: dict[str, list[AlertView]] = {}
    for a in alerts:
        if a.raised_ms >= now_ms - 30 * DAY_MS:
            by_site.setdefault(a.site, []).append(a)
    last_visit: dict[str, int] = {}
    for v in visits:
        last_visit[v.resident_id] = max(last_visit.get(v.resident_id, 0), v.time_ms)
    ratios = activity_ratio or {}
    out = []
    for r in residents:
        site_alerts = by_site.get(r.site, [])
        alert_score = sum(_ALERT_WEIGHT.get(a.severity, 1.0) for a in site_alerts)
        last = last_visit.get(r.id)
        days = (now_ms - last) // DAY_MS if last else None
        drop = max(0.0, 1.0 - ratios.get(r.site, 1.0))
        visited = last is not None and last >= month_start_ms
        score = alert_score + 6.0 * drop + min(days if days is not None else 45, 90) / 15 + 0.5 * r.ability_level
        score += 1.0 if "独居" in r.categories else 0.0
        routine_score, drivers = (routine or {}).get(r.site, (None, ()))
        unusual = routine_score is not None and routine_score >= UNUSUAL_SCORE
        if unusual:
            score += 2.0 * min(routine_score - 1.0, 2.0)  # type: ignore[operator]
        out.append(
            RiskEntry(
                r,
                round(score, 2),
                len(site_alerts),
                days,
                int(round(drop * 100)),
                visited,
                routine_score if unusual else None,
                drivers if unusual else (),
            )
        )
    return sorted(out, key=lambda e: (e.visited_this_month, -e.score, e.resident.id))
