"""Resting vitals trend: three nights beyond the elder's own band, decided at the care-day boundary (noon)."""

from __future__ import annotations

from detect_helpers import Home, at, rd

from detection.baseline import DaySummary
from detection.models import AlertType


def _night(day: int, hr: float) -> DaySummary:
    return DaySummary(day=day, hr_sum=hr * 100, hr_n=100, rr_sum=1500.0, rr_n=100)


def _home_with_history(last_two: tuple[float, float]) -> Home:
    home = Home()
    home.send(rd("mat1", at(0, 22, 0), event="in_bed"))
    state = home.engine.homes["h1"]
    state.history = [_night(d, 55.0 + (d % 2) * 0.5) for d in range(10)] + [
        _night(10, last_two[0]),
        _night(11, last_two[1]),
    ]
    for k in range(30):  # tonight: 30 samples at 64 bpm in bed
        home.send(rd("mat1", at(0, 23, 0) + k * 20_000, occupied=True, hr=64.0, rr=15.0))
    return home


def test_three_high_nights_raise_one_trend_alert_at_noon() -> None:
    home = _home_with_history((62.0, 63.0))
    home.advance(at(1, 11, 59))
    assert home.of(AlertType.VITALS_TREND) == []
    home.advance(at(1, 12, 0))
    [alert] = home.of(AlertType.VITALS_TREND)
    assert alert.time_ms == at(1, 12, 0)
    assert "3 nights in a row (62.0, 63.0, 64.0 bpm)" in alert.explanation
    assert "usual median 55.2 bpm over 10 nights" in alert.explanation and alert.evidence["band"] == 5.0


def test_one_high_night_is_not_a_trend() -> None:
    home = _home_with_history((55.0, 55.5))
    home.advance(at(1, 12, 0))
    assert home.of(AlertType.VITALS_TREND) == []
