"""Away notices (外出报备, detection/notice.py) on the real engine with literal times."""

from __future__ import annotations

from detect_helpers import MIN, Home, at, rd

from detection.engine import Engine
from detection.models import AlertType

NOTICE = (7, at(0, 11, 0), at(5, 18, 0))
"""Notice 7: registered at 11:00 on day 0, the elder staying with her daughter until day 5, 18:00."""


def _alive(home: Home, start: int, end: int) -> None:
    """Gateway status every 5 min in ``[start, end)``: the engine's clock moves and the home stays online."""
    t = start
    while t < end:
        home.send(rd("gw-h1", t, online=True))
        t += 5 * MIN


def _morning_then_out(home: Home) -> None:
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"), rd("pir1", at(0, 9, 50), event="motion"))
    home.send(rd("door1", at(0, 10, 0), event="open"), rd("door1", at(0, 10, 0, 10), event="close"))


def test_an_away_notice_holds_behavioural_pages_while_the_home_is_empty_never_life_safety() -> None:
    home = Home()
    _morning_then_out(home)
    _alive(home, at(0, 10, 0), at(0, 11, 0))
    home.engine.set_away_notices({"h1": NOTICE})
    _alive(home, at(0, 11, 0), at(2, 12, 0))
    h = home.engine.homes["h1"]
    # Out since 10:00: the out-not-back rule fired at 14:00 and was held (the notice), nothing was paged for it.
    assert h.away and h.notice_empty and h.notice_held == 1
    assert home.of(AlertType.OUT_NOT_BACK) == []
    # The days away are not learned from (a stay away is not the routine).
    assert [d.flagged for d in h.history[-2:]] == [True, True]
    # A smoke alarm in the empty home still pages at once.
    out = home.send(rd("smoke1", at(2, 12, 0), event="alarm", level=40))
    assert [a.time_ms for a in out if a.type is AlertType.SMOKE] == [at(2, 12, 0)]
    assert home.engine.ended_notices() == []


def test_a_visit_does_not_end_a_notice_the_elder_back_for_good_does() -> None:
    home = Home()
    _morning_then_out(home)
    home.engine.set_away_notices({"h1": NOTICE})
    _alive(home, at(0, 10, 0), at(2, 14, 0))
    # Day 2: a neighbour waters the plants for 20 min: a visit, the notice holds.
    home.send(rd("door1", at(2, 14, 0), event="open"), rd("door1", at(2, 14, 0, 10), event="close"))
    for m in range(1, 20, 4):
        home.send(rd("pir1", at(2, 14, m), event="motion"))
    home.send(rd("door1", at(2, 14, 20), event="open"), rd("door1", at(2, 14, 20, 10), event="close"))
    _alive(home, at(2, 14, 25), at(3, 15, 0))
    assert home.engine.homes["h1"].away and home.engine.ended_notices() == []
    # Day 3, 15:00: the elder is back two days early and stays: 60 min inside end the notice for detection.
    home.send(rd("door1", at(3, 15, 0), event="open"), rd("door1", at(3, 15, 0, 10), event="close"))
    for m in range(1, 62, 5):
        home.send(rd("pir1", at(3, 15, m), event="motion"))
    assert home.engine.ended_notices() == [("h1", 7, at(3, 16, 1))]
    # From then on she is watched as usual: a quiet spell past the 45-min limit pages.
    _alive(home, at(3, 16, 5), at(3, 17, 0))
    [quiet] = home.of(AlertType.INACTIVITY)
    assert quiet.time_ms == at(3, 16, 46)
    # The backend ends the notice in the store; the next set no longer has it, and the home's notice is cleared.
    home.engine.set_away_notices({})
    assert home.engine.homes["h1"].notice_id == 0 and home.engine.ended_notices() == []


def test_a_notice_registered_while_the_elder_is_still_at_home_starts_holding_once_she_has_left() -> None:
    home = Home()
    home.send(rd("mat1", at(0, 7, 0), event="out_of_bed"))
    home.engine.set_away_notices({"h1": (8, at(0, 8, 0), at(3, 12, 0))})
    for m in range(0, 120, 10):  # packing for two hours: inside, never seen empty, the notice is not ended
        home.send(rd("pir1", at(0, 8, m), event="motion"))
    assert home.engine.ended_notices() == [] and not home.engine.homes["h1"].notice_empty
    home.send(rd("door1", at(0, 10, 0), event="open"), rd("door1", at(0, 10, 0, 10), event="close"))
    _alive(home, at(0, 10, 0), at(0, 15, 0))
    h = home.engine.homes["h1"]
    assert h.notice_empty and h.notice_held == 1 and home.of(AlertType.OUT_NOT_BACK) == []


def test_a_home_first_seen_after_the_notices_were_handed_in_gets_its_notice_at_once() -> None:
    """Found on a partition worker: the home appeared with its first reading between two syncs of the store, and
    its night-door alert fired before the next sync handed the notice in (paged instead of held)."""
    home = Home()
    home.engine.set_away_notices({"h1": NOTICE})
    assert "h1" not in home.engine.homes
    home.send(rd("pir1", at(0, 11, 5), event="motion"))
    assert home.engine.homes["h1"].notice_id == 7


def test_a_notice_restored_from_a_snapshot_is_cleared_when_the_store_no_longer_has_it() -> None:
    home = Home()
    _morning_then_out(home)
    home.engine.set_away_notices({"h1": NOTICE})
    restored, _ = Engine.restore(home.engine.snapshot(), registry=home.engine.registry, config=home.engine.config)
    assert restored.homes["h1"].notice_id == 7 and restored.held_by_notices() == [("h1", 7, 0)]
    restored.set_away_notices({})  # ended on the console while the backend was down
    assert restored.homes["h1"].notice_id == 0 and restored.held_by_notices() == []
