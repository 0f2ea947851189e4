"""Multivariate daily-profile outlier score: how unlike the elder's own recent days was the latest one.

Each archived care day becomes a vector (wake time, bedtime, night exits, night heart and breathing rate,
activity, longest time out). scikit-learn's :class:`~sklearn.neighbors.LocalOutlierFactor` is fitted on the
elder's own unflagged days (robust-scaled, so one elder's 06:00 and another's 08:00 are both "usual") and
scores the latest day: about 1 for a typical day, higher the more unusual. It never pages anyone — single
signals already do that with tight false-alert budgets — it ranks whom a grid worker should visit first
and explains why ("activity, wake time far from usual").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import msgspec
import numpy as np

from detection.baseline import DaySummary

FEATURES: Final[dict[str, Callable[[DaySummary], float | None]]] = {
    "wake_min": lambda d: d.wake_min,
    "bed_min": lambda d: d.bed_min,
    "night_exits": lambda d: float(d.night_exits),
    "night_hr": lambda d: d.night_hr,
    "night_rr": lambda d: d.night_rr,
    "activity": lambda d: float(d.activity),
    "out_max_min": lambda d: d.out_max_min,
}
"""Daily features, in the units of :class:`DaySummary` (minutes, counts, bpm, breaths/min)."""

UNUSUAL_SCORE: Final = 1.5
"""Scores at or above this mark a day as unusual for that elder (LOF convention: 1 = like its neighbours)."""


class RoutineScore(msgspec.Struct, frozen=True, kw_only=True):
    """The latest day's outlier score and the features that made it unusual."""

    score: float
    drivers: tuple[str, ...]
    """Features at least 2 robust standard units from the elder's median, most unusual first."""
    n_days: int
    """Usable days the score was learned from."""


def _vector(day: DaySummary) -> list[float]:
    out = []
    for get in FEATURES.values():
        value = get(day)
        out.append(math.nan if value is None else float(value))
    return out


def routine_score(history: Sequence[DaySummary], *, min_days: int = 10, width: int = 28) -> RoutineScore | None:
    """Score the last day of ``history`` against the unflagged days before it; None while too few days exist.

    The last day is scored even when flagged (a day with an alert is exactly the day to look at); flagged
    days are never learned from, so an incident does not become the elder's normal.
    """
    if len(history) < 2:
        return None
    train_days = [d for d in history[:-1] if not d.flagged][-width:]
    if len(train_days) < min_days:
        return None
    train = np.array([_vector(d) for d in train_days])
    latest = np.array([_vector(history[-1])])
    usable = (np.sum(~np.isnan(train), axis=0) >= min_days) & ~np.isnan(latest[0])
    if not usable.any():
        return None
    names = [n for n, ok in zip(FEATURES, usable, strict=True) if ok]
    train, latest = train[:, usable], latest[:, usable]
    medians = np.nanmedian(train, axis=0)
    train = np.where(np.isnan(train), medians, train)
    # Imported on first use (the hourly refit, in a worker thread): scikit-learn and SciPy add ~100 MB to the
    # backend's RSS, which then need not sit on top of a restart's recovery (issue 13).
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.preprocessing import RobustScaler

    scaler = RobustScaler().fit(train)
    train_s, latest_s = scaler.transform(train), scaler.transform(latest)
    lof = LocalOutlierFactor(n_neighbors=min(10, len(train_days) - 1), novelty=True).fit(train_s)
    score = float(-lof.score_samples(latest_s)[0])
    # RobustScaler divides by the IQR; 1.349 IQR = 1 standard deviation for normal data.
    z = np.abs(latest_s[0]) * 1.349
    order = np.argsort(-z)
    drivers = tuple(names[i] for i in order if z[i] >= 2.0)
    return RoutineScore(score=round(score, 2), drivers=drivers, n_days=len(train_days))
