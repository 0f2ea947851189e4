"""Alarm-fatigue budget: a home that keeps paging for behavioural reasons gets wider limits, within fixed ceilings.

Every *page* of an adaptable behavioural alert (inactivity, not up; after the check-in, so an answered prompt does
not count) is recorded per home in event time. When a home has paged more than ``fatigue_budget_per_month`` times
in the last ``fatigue_window_days``, the rule that just paged widens one step:

- inactivity: limit × (1 + ``fatigue_inactivity_step`` × steps), never past ``fatigue_inactivity_ceiling_min``
  nor the backstop ``inactivity_backstop_min`` (both 4 h) and never below the unadapted limit;
- not up: deadline + ``fatigue_not_up_step_min`` × steps, never past ``fatigue_not_up_latest_min``.

A page a worker confirms as a real incident (``Engine.label_outcome(real=True)``) leaves the budget and undoes the
widening it caused; after a whole window without any page the widened rules narrow again, one step a day.

Life-safety alerts (SOS, call button, fall, smoke, gas, critical vitals) are never counted, muted, delayed or
changed: only :data:`ADAPTABLE` types are touched. The state (page times and steps) lives in
:class:`~detection.state.HomeState`, so replay, evaluation and a restored engine behave the same. New fields have
defaults, so snapshots taken before this module load unchanged (no adaptation yet).
"""

from __future__ import annotations

from typing import Final

from detection.config import DetectConfig
from detection.models import Alert, AlertType
from detection.state import HomeState

ADAPTABLE: Final = frozenset({AlertType.INACTIVITY, AlertType.NOT_UP})
DAY_MS: Final = 86_400_000


def record_page(config: DetectConfig, home: HomeState, alert: Alert) -> None:
    """Count one page of this home; widen the rule that paged when the home is over its budget."""
    if config.fatigue_budget_per_month <= 0 or alert.type not in ADAPTABLE or alert.clears:
        return
    t = alert.time_ms
    horizon = t - config.fatigue_window_days * DAY_MS
    home.fatigue_pages = [p for p in home.fatigue_pages if p[0] > horizon]
    home.fatigue_pages.append((t, alert.type.value))
    if len(home.fatigue_pages) <= config.fatigue_budget_per_month:
        return
    if alert.type is AlertType.INACTIVITY:
        if 1 + config.fatigue_inactivity_step * home.fatigue_inactivity_steps < config.fatigue_max_factor:
            home.fatigue_inactivity_steps += 1
    elif home.baseline.not_up_min + config.fatigue_not_up_step_min * home.fatigue_not_up_steps < (
        config.fatigue_not_up_latest_min
    ):
        home.fatigue_not_up_steps += 1


def forget_confirmed(config: DetectConfig, home: HomeState, start_ms: int, end_ms: int) -> int:
    """A confirmed incident was no false alarm: its pages (``start_ms`` ≤ t < ``end_ms``) leave the budget.

    The widening they caused is undone: each rule keeps at most as many steps as the home is still over its budget.
    Returns the number of pages removed. A home must never get wider limits because its elder really fell.
    """
    keep = [p for p in home.fatigue_pages if not start_ms <= p[0] < end_ms]
    removed = len(home.fatigue_pages) - len(keep)
    if removed:
        home.fatigue_pages = keep
        over = max(0, len(keep) - config.fatigue_budget_per_month)
        home.fatigue_inactivity_steps = min(home.fatigue_inactivity_steps, over)
        home.fatigue_not_up_steps = min(home.fatigue_not_up_steps, over)
    return removed


def relax(config: DetectConfig, home: HomeState, t: int) -> None:
    """After a whole window without a page, narrow each widened rule by one step a day (back to the learned limit)."""
    horizon = t - config.fatigue_window_days * DAY_MS
    home.fatigue_pages = [p for p in home.fatigue_pages if p[0] > horizon]
    if home.fatigue_pages:
        return
    if home.fatigue_inactivity_steps > 0:
        home.fatigue_inactivity_steps -= 1
    if home.fatigue_not_up_steps > 0:
        home.fatigue_not_up_steps -= 1


def inactivity_limit(config: DetectConfig, home: HomeState, limit: float) -> float:
    """The inactivity limit after adaptation: wider, never past the hard ceiling, never below ``limit``."""
    n = home.fatigue_inactivity_steps
    if n <= 0 or config.fatigue_budget_per_month <= 0:
        return limit
    return max(limit, min(limit * (1 + config.fatigue_inactivity_step * n), ceiling_min(config, home)))


def backstop_min(config: DetectConfig, home: HomeState | None = None) -> float:
    """The home's inactivity backstop: the close-watch one for a resident tagged 重点关注 (0: off)."""
    b = config.inactivity_backstop_min
    if home is not None and home.close_watch and b > 0:
        return min(b, config.inactivity_close_watch_backstop_min)
    return b


def ceiling_min(config: DetectConfig, home: HomeState | None = None) -> float:
    """Hard ceiling of an adapted inactivity limit: the fatigue ceiling, and never past the home's backstop."""
    c = config.fatigue_inactivity_ceiling_min
    b = backstop_min(config, home)
    return min(c, b) if b > 0 else c


def not_up_min(config: DetectConfig, home: HomeState, *, weekend: bool = False) -> float:
    """The not-up deadline (local minute) of a weekday or weekend morning after adaptation, never past the latest."""
    base = home.baseline.not_up_for(weekend=weekend)
    n = home.fatigue_not_up_steps
    if n <= 0 or config.fatigue_budget_per_month <= 0:
        return base
    return max(base, min(base + config.fatigue_not_up_step_min * n, config.fatigue_not_up_latest_min))


def pages_in_window(home: HomeState, kind: str | None = None) -> int:
    """Counted pages in the home's current window (of one alert type, or all)."""
    return sum(1 for _, k in home.fatigue_pages if kind is None or k == kind)
