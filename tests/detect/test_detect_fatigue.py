"""Alarm-fatigue budget (issue 19 item 5), on the real engine with literal times."""

from __future__ import annotations

import msgspec
from detect_helpers import MIN, RULES, Home, at, rd, registry

from detection.config import DetectConfig
from detection.engine import Engine
from detection.models import AlertType
from detection.state import EngineSnapshot

BUDGET = msgspec.structs.replace(RULES, fatigue_budget_per_month=2)
"""Check-in off, a new elder's limit 45 min in every block, budget 2 pages per 30 days."""


def _day_with_spell(home: Home, d: int, quiet_min: int) -> None:
    """Up at 07:00, living-room PIR every 10 min, then nothing from 10:00 for ``quiet_min`` minutes."""
    home.send(rd("mat1", at(d, 7, 0), event="out_of_bed"))
    t = at(d, 7, 0)
    while t <= at(d, 10, 0):
        home.send(rd("pir1", t, event="motion", room="living"))
        t += 10 * MIN
    home.motion_idle(at(d, 10, 0), at(d, 10, 0) + (quiet_min - 1) * MIN, step_min=5)
    t = at(d, 10, 0) + quiet_min * MIN
    while t < at(d, 21, 0):
        home.send(rd("pir1", t, event="motion", room="living"))
        t += 10 * MIN
    home.send(rd("mat1", at(d, 21, 0), event="in_bed"))


def _pages(home: Home, d: int) -> list[int]:
    return [a.time_ms for a in home.of(AlertType.INACTIVITY) if at(d, 0) <= a.time_ms < at(d + 1, 0)]


def test_a_home_over_budget_gets_a_wider_limit_and_the_same_spell_no_longer_pages() -> None:
    home = Home(config=BUDGET)
    for d in range(3):
        _day_with_spell(home, d, 50)
        assert _pages(home, d) == [at(d, 10, 45)]
    state = home.engine.homes["h1"]
    assert state.fatigue_inactivity_steps == 1  # the third page in 30 days is over the budget of 2
    _day_with_spell(home, 3, 50)
    assert _pages(home, 3) == []  # 45 min × (1 + 1/3) = 60 min now
    _day_with_spell(home, 4, 90)
    [late] = home.of(AlertType.INACTIVITY)[3:]
    assert late.time_ms == at(4, 11, 0) and late.evidence["limit_min"] == 60.0
    assert late.evidence["adapted_from_min"] == 45.0
    assert "adapted from 45 min" in late.explanation and "budget 2" in late.explanation
    assert "自动放宽" in late.explanation_zh
    fat = home.engine.learned("h1")["fatigue"]
    assert isinstance(fat, dict)
    assert fat["budget"] == 2 and fat["pages"] == 4 and fat["over"] is True
    assert fat["adapted"][0] == {  # type: ignore[index]
        "rule": "inactivity",
        "pages": 4,
        "from_min": 45,
        "to_min": 75,  # the fourth page widened it once more: 45 × (1 + 2/3)
        "ceiling_min": 240,
    }


def test_a_home_under_budget_is_unchanged() -> None:
    home = Home(config=BUDGET)
    for d in range(5):  # two pages (days 0 and 1), then short spells: within the budget of 2
        _day_with_spell(home, d, 50 if d < 2 else 30)
    assert [len(_pages(home, d)) for d in range(5)] == [1, 1, 0, 0, 0]
    state = home.engine.homes["h1"]
    assert state.fatigue_inactivity_steps == 0 and state.fatigue_not_up_steps == 0
    _day_with_spell(home, 5, 50)  # the third page is over budget, but this one was already due at the old limit
    assert _pages(home, 5) == [at(5, 10, 45)] and "adapted" not in home.of(AlertType.INACTIVITY)[-1].explanation
    assert home.engine.learned("h1")["fatigue"] == {
        "pages": 3,
        "window_days": 30,
        "budget": 2,
        "over": True,
        "adapted": [{"rule": "inactivity", "pages": 3, "from_min": 45, "to_min": 60, "ceiling_min": 240}],
    }


def test_off_by_budget_zero() -> None:
    home = Home(config=msgspec.structs.replace(RULES, fatigue_budget_per_month=0))
    for d in range(4):
        _day_with_spell(home, d, 50)
        assert _pages(home, d) == [at(d, 10, 45)]
    assert home.engine.homes["h1"].fatigue_inactivity_steps == 0


def test_the_ceiling_is_never_exceeded() -> None:
    cfg = msgspec.structs.replace(
        RULES, fatigue_budget_per_month=1, fatigue_inactivity_step=1.0, fatigue_inactivity_ceiling_min=100.0
    )
    home = Home(config=cfg)
    for d in range(6):
        _day_with_spell(home, d, 180)
    limits = [a.evidence["limit_min"] for a in home.of(AlertType.INACTIVITY)]
    assert limits == [45.0, 45.0, 90.0, 100.0, 100.0, 100.0]
    assert all(isinstance(x, float) and x <= 100.0 for x in limits)


def test_life_safety_is_unaffected_and_not_counted() -> None:
    home = Home(config=BUDGET)
    for d in range(3):
        _day_with_spell(home, d, 50)
    before = list(home.engine.homes["h1"].fatigue_pages)
    for i in range(10):
        out = home.send(rd("band1", at(3, 9, i), event="sos"), rd("btn1", at(3, 9, i, 30), event="press"))
        assert {a.type for a in out} >= {AlertType.SOS, AlertType.CALL_BUTTON}
        ls = [a for a in out if a.type in (AlertType.SOS, AlertType.CALL_BUTTON)]
        assert [a.time_ms for a in ls] == [at(3, 9, i), at(3, 9, i, 30)]
        assert all("adapted" not in a.explanation for a in ls)
    assert home.engine.homes["h1"].fatigue_pages == before


def test_snapshot_and_restore_keep_the_adaptation() -> None:
    home = Home(config=BUDGET)
    for d in range(3):
        _day_with_spell(home, d, 50)
    data = home.engine.snapshot()
    eng, _ = Engine.restore(data, registry=registry(), now_ms=at(3, 0, 0), config=BUDGET)
    assert eng.homes["h1"].fatigue_inactivity_steps == 1
    assert len(eng.homes["h1"].fatigue_pages) == 3
    restored = Home(eng, config=BUDGET)
    _day_with_spell(restored, 3, 50)
    assert _pages(restored, 3) == []


def test_a_snapshot_from_before_the_budget_loads_with_no_adaptation() -> None:
    home = Home(config=BUDGET)
    _day_with_spell(home, 0, 50)
    snap = msgspec.msgpack.decode(home.engine.snapshot(), type=EngineSnapshot)
    raw = msgspec.to_builtins(snap)
    for h in raw["homes"]:
        for k in ("fatigue_pages", "fatigue_inactivity_steps", "fatigue_not_up_steps"):
            del h[k]
    eng, _ = Engine.restore(msgspec.msgpack.encode(raw), registry=registry(), now_ms=at(1, 0, 0), config=BUDGET)
    assert eng.homes["h1"].fatigue_pages == [] and eng.homes["h1"].fatigue_inactivity_steps == 0


def test_not_up_deadline_moves_later_but_never_past_the_latest_time() -> None:
    cfg: DetectConfig = msgspec.structs.replace(
        RULES,
        fatigue_budget_per_month=1,
        fatigue_not_up_step_min=60.0,
        fatigue_not_up_latest_min=11 * 60.0,
        not_up_default_min=10 * 60.0,
    )
    home = Home(config=cfg)
    home.send(rd("mat1", at(0, 21, 0), event="in_bed"))
    home.advance(at(6, 12, 0))  # nobody gets up for a week: a NOT_UP page every morning
    deadlines = [a.evidence["deadline"] for a in home.of(AlertType.NOT_UP)]
    assert deadlines[:2] == ["10:00", "10:00"] and deadlines[2] == "11:00" and set(deadlines[2:]) == {"11:00"}
    assert "adapted from 10:00" in home.of(AlertType.NOT_UP)[2].explanation


def test_a_wider_limit_never_pushes_an_evening_silence_into_the_night() -> None:
    home = Home(config=msgspec.structs.replace(BUDGET, inactivity_population_min=(120.0,) * 5))
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 19, 30), event="motion", room="living"))
    state = home.engine.homes["h1"]
    state.fatigue_inactivity_steps = 1  # 120 → 160 min would be due at 22:10 (night: taken for sleep); keep 120
    home.advance(at(0, 21, 40))
    [a] = home.of(AlertType.INACTIVITY)
    assert a.time_ms == at(0, 21, 30) and a.evidence["limit_min"] == 120.0 and "adapted" not in a.explanation


def test_confirmed_incidents_leave_the_budget_and_undo_the_widening() -> None:
    """A home must never get wider limits because its elder really fell: confirmed pages are no false alarms."""
    home = Home(config=BUDGET)
    for d in range(3):
        _day_with_spell(home, d, 50)
    state = home.engine.homes["h1"]
    assert state.fatigue_inactivity_steps == 1 and len(state.fatigue_pages) == 3
    assert home.engine.label_outcome("h1", at(2, 10, 45), real=True)  # the worker found the elder on the floor
    assert state.fatigue_inactivity_steps == 0 and len(state.fatigue_pages) == 2
    _day_with_spell(home, 3, 50)
    assert _pages(home, 3) == [at(3, 10, 45)]  # the unadapted 45 min again
    # That page is the third in 30 days again: over budget, one step; "elder fine" keeps it in the budget.
    assert state.fatigue_inactivity_steps == 1
    assert home.engine.label_outcome("h1", at(3, 10, 45), real=False)
    assert len(state.fatigue_pages) == 3 and state.fatigue_inactivity_steps == 1


def test_a_widened_limit_narrows_again_after_a_month_without_pages() -> None:
    home = Home(config=BUDGET)
    for d in range(4):
        _day_with_spell(home, d, 50 if d < 3 else 70)  # the fourth page comes at the widened 60 min
    state = home.engine.homes["h1"]
    assert state.fatigue_inactivity_steps == 2 and _pages(home, 3) == [at(3, 11, 0)]
    for d in range(4, 33):  # short spells: no page
        _day_with_spell(home, d, 30)
    assert state.fatigue_inactivity_steps == 2 and len(state.fatigue_pages) == 1  # day 3's page is still in the window
    _day_with_spell(home, 33, 30)  # at noon of day 33 the window holds no page: one step narrower ...
    assert state.fatigue_inactivity_steps == 1 and state.fatigue_pages == []
    _day_with_spell(home, 34, 30)  # ... and one more a day, back to the learned limit
    assert state.fatigue_inactivity_steps == 0
    fat = home.engine.learned("h1")["fatigue"]
    assert isinstance(fat, dict) and fat["adapted"] == [] and fat["over"] is False
