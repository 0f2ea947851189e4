"""The daily-profile outlier score: typical days score ~1, a collapsed routine scores high with its reasons."""

from __future__ import annotations

import numpy as np

from detection.baseline import DaySummary
from detection.day_profile import UNUSUAL_SCORE, routine_score


def _day(rng: np.random.Generator, i: int, **over: float) -> DaySummary:
    values = {
        "wake_min": rng.normal(420, 12),
        "bed_min": rng.normal(600, 15),
        "night_exits": int(rng.integers(0, 3)),
        "activity": rng.normal(320, 30),
        "out_max_min": rng.normal(70, 20),
    }
    values.update(over)
    day = DaySummary(
        day=i,
        wake_min=values["wake_min"],
        bed_min=values["bed_min"],
        night_exits=int(values["night_exits"]),
        activity=int(values["activity"]),
        out_max_min=values["out_max_min"],
    )
    day.hr_sum, day.hr_n = 58.0 * 100 + rng.normal(0, 100), 100
    day.rr_sum, day.rr_n = 14.0 * 100 + rng.normal(0, 60), 100
    return day


def _history(seed: int, n: int = 21) -> list[DaySummary]:
    rng = np.random.default_rng(seed)
    return [_day(rng, i) for i in range(n)]


def test_typical_days_score_near_one() -> None:
    scores = []
    for seed in range(10):
        hist = _history(seed)
        result = routine_score(hist)
        assert result is not None and result.n_days == 20
        scores.append(result.score)
    assert max(scores) < UNUSUAL_SCORE, scores


def test_a_collapsed_routine_scores_high_and_says_why() -> None:
    hist = _history(1)
    rng = np.random.default_rng(99)
    hist.append(_day(rng, 21, wake_min=640, activity=45, night_exits=6, out_max_min=0))
    result = routine_score(hist)
    assert result is not None
    assert result.score >= 2 * UNUSUAL_SCORE
    assert {"wake_min", "activity", "night_exits"} <= set(result.drivers)
    assert result.drivers[0] in {"wake_min", "activity", "night_exits", "out_max_min"}


def test_flagged_days_are_not_learned_and_few_days_give_no_score() -> None:
    assert routine_score(_history(2, n=8)) is None  # fewer than 10 usable days: no opinion yet
    hist = _history(3)
    rng = np.random.default_rng(5)
    # Ten identical "bad" days that raised alerts must not teach the model that bad is normal.
    for i in range(10):
        bad = _day(rng, 100 + i, wake_min=650, activity=40)
        bad.flagged = True
        hist.insert(-1, bad)
    hist.append(_day(rng, 200, wake_min=650, activity=40))
    result = routine_score(hist)
    assert result is not None and result.score >= UNUSUAL_SCORE and result.n_days == 21  # the 21 typical days only


def test_nightly_refit_puts_the_score_on_the_baseline() -> None:
    from detection.config import DetectConfig
    from eldercare.backend import _fit_with_routine

    rng = np.random.default_rng(42)
    odd = [*_history(4), _day(rng, 21, wake_min=640, activity=45, night_exits=6)]
    fitted = _fit_with_routine({"odd": odd, "new": _history(5, n=3), "usual": _history(6)}, DetectConfig())
    assert fitted["odd"].routine_score is not None and fitted["odd"].routine_score >= 2 * UNUSUAL_SCORE
    assert "activity" in fitted["odd"].routine_drivers
    assert fitted["new"].routine_score is None  # grace period: no opinion on three days
    assert fitted["usual"].routine_score is not None and fitted["usual"].routine_score < UNUSUAL_SCORE
