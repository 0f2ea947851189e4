"""Not up by the usual time: the deadline learned from the home's own mornings (issue 19, lie-ins and weekends)."""

from __future__ import annotations

import msgspec
from detect_helpers import RULES, Home, at, rd

from detection.config import DetectConfig
from detection.models import AlertType


def _weeks_sleeping_in_on_weekends(config: DetectConfig) -> Home:
    """Monday 2 March to Friday 20 March 2026: up at 07:00 on weekdays, at 09:45 on Saturdays and Sundays."""
    home = Home(config=config)
    home.send(rd("mat1", at(-1, 22, 0), event="in_bed"))
    for d in range(19):
        hh, mm = (9, 45) if d % 7 in (5, 6) else (7, 0)
        home.send(rd("mat1", at(d, hh, mm), event="out_of_bed"))
        home.send(rd("pir1", at(d, hh, mm + 5), event="motion", room="living"))
        home.send(rd("mat1", at(d, 22, 0), event="in_bed"))
    return home


def _weekend_up_at_10_40(home: Home) -> None:
    for d in (19, 20):
        home.send(rd("mat1", at(d, 10, 40), event="out_of_bed"))
        home.send(rd("pir1", at(d, 10, 45), event="motion", room="living"))
        home.send(rd("mat1", at(d, 22, 0), event="in_bed"))


def test_a_home_that_sleeps_in_at_weekends_is_not_paged_at_09_30_on_a_saturday_but_is_on_a_weekday() -> None:
    home = _weeks_sleeping_in_on_weekends(RULES)
    # Saturday 21 March: still in bed at 10:30, up at 10:40 — the weekend deadline is 09:45 + 60 min.
    home.advance(at(19, 10, 30))
    assert [a for a in home.of(AlertType.NOT_UP) if a.time_ms >= at(19, 0, 0)] == []
    base = home.engine.homes["h1"].baseline
    assert base.weekend is not None and base.weekday is not None
    assert (base.weekend.mornings, base.weekday.mornings) == (4, 15)
    assert base.weekend.deadline_min == 10 * 60 + 45
    _weekend_up_at_10_40(home)
    # Monday 23 March: still in bed. The weekdays' own 07:00, weighed 15 : 4 with all mornings (p90 09:45), + 60 min.
    home.advance(at(21, 9, 30))
    [page] = [a for a in home.of(AlertType.NOT_UP) if a.time_ms >= at(19, 0, 0)]
    assert at(21, 8, 34) <= page.time_ms < at(21, 8, 35)
    assert page.explanation.startswith("Not up by 08:34: still in bed (since 22:00)")
    assert "on weekdays usually up by" in page.explanation and "工作日" in page.explanation_zh
    assert page.evidence["weekend"] is False
    learned = home.engine.learned("h1")
    # that weekend's 10:40 mornings are learned too: the weekend deadline is now at the 11:00 clip
    assert (learned["not_up_by"], learned["not_up_weekend_by"]) == ("08:34", "11:00")

    # One deadline for every morning (the rule before): the weekend lie-ins push the weekday deadline to 10:45 too,
    # so the same Monday is not paged by 09:30.
    one = _weeks_sleeping_in_on_weekends(msgspec.structs.replace(RULES, not_up_weekend_prior_days=0.0))
    one.advance(at(19, 10, 30))
    _weekend_up_at_10_40(one)
    one.advance(at(21, 9, 30))
    assert [a for a in one.of(AlertType.NOT_UP) if a.time_ms >= at(19, 0, 0)] == []
    assert one.engine.homes["h1"].baseline.not_up_min == 10 * 60 + 45


def _up_at_07_00(home: Home, days: range) -> None:
    for d in days:
        home.send(rd("mat1", at(d, 7, 0), event="out_of_bed"), rd("pir1", at(d, 7, 5), event="motion", room="living"))
        home.send(rd("mat1", at(d, 22, 0), event="in_bed"))


def test_a_lie_in_in_the_second_week_is_not_paged_but_the_same_morning_after_two_weeks_is() -> None:
    home = Home()
    home.send(rd("mat1", at(-1, 22, 0), event="in_bed"))
    _up_at_07_00(home, range(7))
    # Monday 9 March, seven mornings at 07:00 known: the deadline is 07:00 + 60 min × (1 + (14 − 7) / 7) = 09:00, so
    # a lie-in until 08:40 is not paged (with the margin widened only below 7 mornings it was 08:00).
    home.advance(at(7, 8, 59))
    assert home.engine.homes["h1"].baseline.not_up_min == 9 * 60
    assert [a for a in home.of(AlertType.NOT_UP) if a.time_ms >= at(7, 0, 0)] == []
    home.send(rd("mat1", at(7, 8, 40), event="out_of_bed"), rd("pir1", at(7, 8, 45), event="motion", room="living"))
    home.send(rd("mat1", at(7, 22, 0), event="in_bed"))
    _up_at_07_00(home, range(8, 15))
    # Tuesday 17 March, fifteen mornings known: the margin is back to 60 min, and still in bed at 08:00 pages.
    home.advance(at(15, 8, 30))
    [page] = [a for a in home.of(AlertType.NOT_UP) if a.time_ms >= at(7, 0, 0)]
    assert page.time_ms == at(15, 8, 0) and page.explanation.startswith("Not up by 08:00: still in bed (since 22:00)")

    old = Home(config=msgspec.structs.replace(RULES, not_up_widen_days=7.0, not_up_widen_step_days=4.0))
    old.send(rd("mat1", at(-1, 22, 0), event="in_bed"))
    _up_at_07_00(old, range(7))
    old.advance(at(7, 8, 30))
    assert [a.time_ms for a in old.of(AlertType.NOT_UP) if a.time_ms >= at(7, 0, 0)] == [at(7, 8, 0)]
